"""Micro-benchmarks of alternatives for gpunet's per-step NumPy calls (min of repeats, us/call)."""
import sys, time
import numpy as np, scipy.linalg.blas as blas
sys.path.insert(0, "/work/main/bench")
import epoch_vs_torch as b
X, y = b.make_data()
rng = np.random.default_rng(1)

def t(fn, n=200, reps=7):
    fn()
    best = 1e9
    for _ in range(reps):
        s = time.perf_counter()
        for _ in range(n): fn()
        best = min(best, (time.perf_counter() - s) / n)
    return best * 1e6

for B in (64, 1024):
    n = 200 if B == 64 else 40
    print(f"\n=== B={B}")
    idx = rng.permutation(60000)[:B]
    out = np.empty((B, 784), np.float32)
    print(f"take X mode=raise out=   {t(lambda: np.take(X, idx, axis=0, out=out), n):8.1f} us")
    print(f"take X mode=clip  out=   {t(lambda: np.take(X, idx, axis=0, out=out, mode='clip'), n):8.1f} us")
    print(f"take X mode=wrap  out=   {t(lambda: np.take(X, idx, axis=0, out=out, mode='wrap'), n):8.1f} us")
    print(f"X[idx] (new array)       {t(lambda: X[idx], n):8.1f} us")
    print(f"np.take(X, idx, axis=0)  {t(lambda: np.take(X, idx, axis=0), n):8.1f} us")
    # GEMMs in gpunet's layout and alternatives
    W1 = rng.standard_normal((256, 784), dtype=np.float32); Z = np.empty((256, B), np.float32)
    Zr = np.empty((B, 256), np.float32)
    print(f"fwd W1@X.T out=(256,B)   {t(lambda: np.matmul(W1, out.T, out=Z), n):8.1f} us   [gpunet]")
    print(f"fwd X@W1.T out=(B,256)   {t(lambda: np.matmul(out, W1.T, out=Zr), n):8.1f} us   [torch layout]")
    d = rng.standard_normal((256, B), dtype=np.float32); G = np.empty((256, 784), np.float32)
    print(f"BP4 d@X out=(256,784)    {t(lambda: np.matmul(d, out, out=G), n):8.1f} us   [gpunet]")
    dr = np.ascontiguousarray(d.T)
    print(f"BP4 dr.T@X (rows layout) {t(lambda: np.matmul(dr.T, out, out=G), n):8.1f} us   [torch layout]")
    W2 = rng.standard_normal((256, 256), dtype=np.float32); A1 = np.maximum(d, 0); Z2 = np.empty((256, B), np.float32)
    print(f"fwd W2@A1                {t(lambda: np.matmul(W2, A1, out=Z2), n):8.1f} us")
    print(f"BP2 W2.T@d               {t(lambda: np.matmul(W2.T, d, out=Z2), n):8.1f} us")
    G2 = np.empty((256, 256), np.float32)
    print(f"BP4 d@A1.T               {t(lambda: np.matmul(d, A1.T, out=G2), n):8.1f} us")
    # relu backward variants
    a = np.maximum(rng.standard_normal((256, B), dtype=np.float32), 0); g = rng.standard_normal((256, B), dtype=np.float32)
    mask = np.empty((256, B), bool)
    print(f"relu' multiply(g, a>0)   {t(lambda: np.multiply(g, a > 0.0, out=g)):8.1f} us   [gpunet]")
    def v2():
        np.greater(a, 0.0, out=mask); np.multiply(g, mask, out=g)
    print(f"relu' prealloc mask      {t(v2):8.1f} us")
    def v3():
        np.less_equal(a, 0.0, out=mask); np.copyto(g, 0.0, where=mask)
    print(f"relu' copyto where       {t(v3):8.1f} us")
    fm = np.empty((256, B), np.float32)
    def v4():
        np.sign(a, out=fm); np.multiply(g, fm, out=g)
    print(f"relu' sign*mult (f32)    {t(v4):8.1f} us")
    # bias add / bias grad
    bias = rng.standard_normal(256, dtype=np.float32)
    print(f"bias add z += b[:,None]  {t(lambda: np.add(Z, bias[:, None], out=Z)):8.1f} us")
    gb = np.empty(256, np.float32); ones = np.ones(B, np.float32)
    print(f"bias grad sum(axis=1)    {t(lambda: np.sum(d, axis=1, out=gb)):8.1f} us   [gpunet]")
    print(f"bias grad d@ones (gemv)  {t(lambda: np.matmul(d, ones, out=gb)):8.1f} us")
    print(f"relu fwd maximum(z,0)    {t(lambda: np.maximum(Z, 0.0, out=Z)):8.1f} us")

# optimizer step over the flat buffer (268,800 params)
p = rng.standard_normal(268800, dtype=np.float32); gr = rng.standard_normal(268800, dtype=np.float32) * 1e-6
def cur():
    gr2 = gr  # grads *= lr ; params -= grads
    np.multiply(gr2, 0.1, out=gr2); np.subtract(p, gr2, out=p)
print(f"\nSGD grads*=lr; p-=grads  {t(cur, 500):8.1f} us   [gpunet]")
saxpy = blas.saxpy
print(f"SGD scipy saxpy (in place){t(lambda: saxpy(gr, p, a=-0.1), 500):8.1f} us")
print(f"  saxpy returns same buffer: {saxpy(gr, p, a=-0.1) is p}")
