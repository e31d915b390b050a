"""Per-call overhead of net.fit(epochs=1): everything outside the timed batch loop."""
import sys, time, statistics
import numpy as np
sys.path.insert(0, "/work/main/bench")
import epoch_vs_torch as b
from gpunet.core.checks import check_features, check_targets
X, y = b.make_data()
net = b.make_gpunet()
cost = net.cost_function("log_likelihood")
def med(fn, reps=15):
    fn(); ts = []
    for _ in range(reps):
        s = time.perf_counter(); fn(); ts.append(time.perf_counter() - s)
    return statistics.median(ts) * 1e3
print(f"check_features(X) [isfinite(X).all(), 47M-elem bool temp]  {med(lambda: check_features(X, 784, np.float32)):7.2f} ms")
print(f"   alt: np.isfinite(X.sum())                             {med(lambda: np.isfinite(X.sum())):7.2f} ms")
print(f"   alt: isfinite in 8192-row chunks                      {med(lambda: all(np.isfinite(X[i:i+8192]).all() for i in range(0, 60000, 8192))):7.2f} ms")
print(f"check_targets(y) [eye(10)[labels] float64 + checks]      {med(lambda: check_targets(y, 60000, 10, cost, 'softmax')):7.2f} ms")
t, l = check_targets(y, 60000, 10, cost, 'softmax')
print(f"   targets dtype from check_targets: {t.dtype} {t.shape}")
print(f"asarray(targets float64 -> float32)                      {med(lambda: np.asarray(t, np.float32)):7.2f} ms")
print(f"net.checked_inputs(X, y) total                                  {med(lambda: net.checked_inputs(X, y, cost)):7.2f} ms")
rng = np.random.default_rng(0)
print(f"rng.permutation(60000)                                   {med(lambda: rng.permutation(60000)):7.2f} ms")
for B in (64, 1024):
    walls, loops = [], []
    for k in range(7):
        s = time.perf_counter()
        h = net.fit(X, y, epochs=1, batch_size=B, lr=0.1, cost="log_likelihood", progress=False, seed=k)
        walls.append(time.perf_counter() - s); loops.append(h["seconds"][0])
    d = [ (w - l) * 1e3 for w, l in zip(walls, loops)]
    print(f"B={B}: fit wall - in-loop seconds: median {statistics.median(d):.1f} ms (min {min(d):.1f}, max {max(d):.1f})")
