"""End-to-end what-ifs: gpunet with process-local monkeypatches (no file edited) vs baseline vs torch.

Patches (each applied on the instance only):
  take   np.take(..., out=, mode='clip') instead of the default mode='raise' (which buffers out)
  sgd    plain SGD as one BLAS saxpy over the flat buffer (scipy.linalg.blas.saxpy)
  bgrad  BP3 as a GEMV with a ones vector instead of np.sum(axis=1)
  rows   workspaces stored examples-as-rows (m, n) and exposed as (n, m) views; matmul into an
         F-ordered out computes out.T = b.T @ a.T (torch's orientation for the big GEMMs)
"""
import sys, time, statistics, types, gc
import numpy as np, torch, scipy.linalg.blas as sblas
sys.path.insert(0, "/work/main/bench")
import epoch_vs_torch as b
import gpunet.core.network as gn

torch.set_num_threads(2)
X, y = b.make_data(); Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

import ctypes, glob, os
_sc = ctypes.CDLL(glob.glob(os.path.dirname(__import__("scipy").__file__) + "/../scipy.libs/*openblas*")[0])
_np = ctypes.CDLL(glob.glob(os.path.dirname(np.__file__) + "/../numpy.libs/*openblas*")[0])
_np_saxpy = _np.scipy_cblas_saxpy64_
_np_saxpy.argtypes = [ctypes.c_int64, ctypes.c_float, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64]
_np_saxpy.restype = None
if "--scipy-blas-1" in sys.argv:
    _sc.scipy_openblas_set_num_threads(1)
print("scipy BLAS threads:", _sc.scipy_openblas_get_num_threads(), " numpy BLAS threads:", _np.scipy_openblas_get_num_threads64_())

class Shim(types.SimpleNamespace):
    def __getattr__(self, name):
        return getattr(np, name)
    @staticmethod
    def take(a, idx, axis=None, out=None, mode="raise"):
        return np.take(a, idx, axis=axis, out=out, mode="clip")

def patch(net, which):
    ops = type(net.backend)()  # a fresh backend object per net
    net.backend = ops
    if "take" in which:
        ops.xp = Shim()
    if "sgd" in which:
        base = ops.sgd_update
        def sgd_update(params, grads, velocity, lr, momentum, nesterov, weight_decay, n_decayed):
            if velocity is None and not weight_decay and params.dtype == np.float32:
                if "npblas" in which:  # numpy's own OpenBLAS (its thread pool), via ctypes
                    _np_saxpy(params.size, -lr, grads.ctypes.data, 1, params.ctypes.data, 1)
                else:
                    sblas.saxpy(grads, params, a=-lr)
            else:
                base(params, grads, velocity, lr, momentum, nesterov, weight_decay, n_decayed)
        ops.sgd_update = sgd_update
    if "bgrad" in which:
        ones = {}
        def bias_gradient(delta, out):
            m = delta.shape[1]
            v = ones.get(m)
            if v is None:
                v = ones[m] = np.ones(m, delta.dtype)
            return np.matmul(delta, v, out=out)
        ops.bias_gradient = bias_gradient
    if "rows" in which:
        def matmul(a, b_, out):
            if not out.flags.c_contiguous and out.T.flags.c_contiguous:
                np.matmul(b_.T, a.T, out=out.T)
                return out
            return np.matmul(a, b_, out=out)
        ops.matmul = matmul
        class RowWorkspace:
            def __init__(self, net, m):
                dt, last = net.dtype, len(net.activations) - 1
                self.x = np.empty((m, net.sizes[0]), dt); self.y = np.empty((m, net.sizes[-1]), dt)
                self.weighted_input, self.activation, self.delta = [], [], []
                for i, (n, g) in enumerate(zip(net.sizes[1:], net.activations)):
                    z = np.empty((m, n), dt).T
                    self.weighted_input.append(z)
                    shares = g.derivative_from_output and i != last
                    self.activation.append(z if shares else np.empty((m, n), dt).T)
                    self.delta.append(np.empty((m, n), dt).T)
        def workspace(m, net=net):
            ws = net._workspaces.get(m)
            if ws is None:
                ws = net._workspaces[m] = RowWorkspace(net, m)
            return ws
        net.workspace = _workspace
    return net

VARIANTS = {
    "baseline": (),
    "+take": ("take",),
    "+sgd(npblas)": ("sgd", "npblas"),
    "+bgrad": ("bgrad",),
    "+rows": ("rows",),
    "all": ("take", "sgd", "npblas", "bgrad"),
    "all+rows": ("take", "sgd", "npblas", "bgrad", "rows"),
}

def check_equal():
    # each patched net computes the same gradients as the baseline
    Xb, yb = X[:256], y[:256]
    ref = b.make_gpunet().gradients(Xb, yb, cost="log_likelihood")
    for name, which in VARIANTS.items():
        g = patch(b.make_gpunet(), which).gradients(Xb, yb, cost="log_likelihood")
        err = max(float(np.abs(p - q).max() / np.abs(q).max()) for p, q in zip(g[0] + g[1], ref[0] + ref[1]))
        print(f"  grads {name:13s} max rel diff vs baseline {err:.1e}")

def run(B, reps):
    nets = {name: patch(b.make_gpunet(), which) for name, which in VARIANTS.items()}
    tr = b.TorchTrainer(b.make_torch(b.make_gpunet()))
    loop = {k: [] for k in nets}; wall = {k: [] for k in nets}; tt = []
    for name, net in nets.items():
        b.gpunet_epoch(net, X, y, B, 0)
    tr.epoch(Xt, yt, B)
    for r in range(reps):
        names = list(nets) if r % 2 == 0 else list(reversed(nets))
        for name in names:
            gc.collect()
            w, l, _ = b.gpunet_epoch(nets[name], X, y, B, r + 1)
            wall[name].append(w); loop[name].append(l)
        gc.collect()
        tt.append(tr.epoch(Xt, yt, B)[0])
    tm = statistics.median(tt)
    base = statistics.median(loop["baseline"])
    print(f"\n=== B={B}, {reps} interleaved rounds; torch median {tm:.3f} s (min {min(tt):.3f})")
    print(f"  {'variant':13s} {'loop med':>9s} {'loop min':>9s} {'wall med':>9s} {'vs base':>8s} {'ratio(wall)':>11s} {'ratio(loop)':>11s}")
    for name in nets:
        lm, wm = statistics.median(loop[name]), statistics.median(wall[name])
        print(f"  {name:13s} {lm:9.3f} {min(loop[name]):9.3f} {wm:9.3f} {100*(lm/base-1):+7.1f}% {wm/tm:11.2f} {lm/tm:11.2f}")

check_equal()
for B, reps in ((1024, 7), (64, 5)):
    run(B, reps)
