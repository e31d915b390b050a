"""The step's GEMMs: gpunet's column layout (OpenBLAS) vs row layout (OpenBLAS) vs torch (MKL)."""
import sys, time, statistics
import numpy as np, torch
torch.set_num_threads(2)
rng = np.random.default_rng(0)
f = lambda *s: rng.standard_normal(s, dtype=np.float32)

def med(fn, n, reps=9):
    fn(); ts = []
    for _ in range(reps):
        s = time.perf_counter()
        for _ in range(n): fn()
        ts.append((time.perf_counter() - s) / n * 1e6)
    return statistics.median(ts)

for B in (64, 1024):
    n = 100 if B == 64 else 15
    X = f(B, 784); W1, W2, W3 = f(256, 784), f(256, 256), f(10, 256)
    # gpunet layout: activations (n, m)
    A1, A2, D3, D2, D1 = f(256, B), f(256, B), f(10, B), f(256, B), f(256, B)
    Z1, Z2, Z3 = np.empty((256, B), np.float32), np.empty((256, B), np.float32), np.empty((10, B), np.float32)
    G1, G2, G3 = np.empty((256, 784), np.float32), np.empty((256, 256), np.float32), np.empty((10, 256), np.float32)
    col = {
        "fwd1": lambda: np.matmul(W1, X.T, out=Z1), "fwd2": lambda: np.matmul(W2, A1, out=Z2),
        "fwd3": lambda: np.matmul(W3, A2, out=Z3),
        "dW3": lambda: np.matmul(D3, A2.T, out=G3), "bp2_3": lambda: np.matmul(W3.T, D3, out=D2),
        "dW2": lambda: np.matmul(D2, A1.T, out=G2), "bp2_2": lambda: np.matmul(W2.T, D2, out=D1),
        "dW1": lambda: np.matmul(D1, X, out=G1),
    }
    # row layout (examples as rows, like torch): A (m, n)
    a1, a2, d3, d2, d1 = (np.ascontiguousarray(v.T) for v in (A1, A2, D3, D2, D1))
    z1, z2, z3 = np.empty((B, 256), np.float32), np.empty((B, 256), np.float32), np.empty((B, 10), np.float32)
    row = {
        "fwd1": lambda: np.matmul(X, W1.T, out=z1), "fwd2": lambda: np.matmul(a1, W2.T, out=z2),
        "fwd3": lambda: np.matmul(a2, W3.T, out=z3),
        "dW3": lambda: np.matmul(d3.T, a2, out=G3), "bp2_3": lambda: np.matmul(d3, W3, out=d2),
        "dW2": lambda: np.matmul(d2.T, a1, out=G2), "bp2_2": lambda: np.matmul(d2, W2, out=d1),
        "dW1": lambda: np.matmul(d1.T, X, out=G1),
    }
    T = lambda a: torch.from_numpy(a)
    tX, tW1, tW2, tW3 = T(X), T(W1), T(W2), T(W3)
    ta1, ta2, td3, td2, td1 = map(T, (a1, a2, d3, d2, d1))
    tz1, tz2, tz3 = T(z1), T(z2), T(z3); tG1, tG2, tG3 = T(G1), T(G2), T(G3)
    tb1, tb2, tb3 = torch.zeros(256), torch.zeros(256), torch.zeros(10)
    tt = {
        "fwd1": lambda: torch.addmm(tb1, tX, tW1.t(), out=tz1), "fwd2": lambda: torch.addmm(tb2, ta1, tW2.t(), out=tz2),
        "fwd3": lambda: torch.addmm(tb3, ta2, tW3.t(), out=tz3),
        "dW3": lambda: torch.mm(td3.t(), ta2, out=tG3), "bp2_3": lambda: torch.mm(td3, tW3, out=td2),
        "dW2": lambda: torch.mm(td2.t(), ta1, out=tG2), "bp2_2": lambda: torch.mm(td2, tW2, out=td1),
        "dW1": lambda: torch.mm(td1.t(), tX, out=tG1),
    }
    print(f"\n=== B={B} (median us/call)      gpunet-col  numpy-row   torch(MKL)")
    tot = [0, 0, 0]
    for k in col:
        r = [med(col[k], n), med(row[k], n), med(tt[k], n)]
        tot = [a + b for a, b in zip(tot, r)]
        print(f"  {k:8s}                   {r[0]:9.1f}  {r[1]:9.1f}  {r[2]:9.1f}")
    steps = -(-60000 // B)
    print(f"  step total                 {tot[0]:9.1f}  {tot[1]:9.1f}  {tot[2]:9.1f}")
    print(f"  x {steps} steps (ms/epoch)   {tot[0]*steps/1e3:9.1f}  {tot[1]*steps/1e3:9.1f}  {tot[2]*steps/1e3:9.1f}")
