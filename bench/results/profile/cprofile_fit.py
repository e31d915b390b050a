import sys, cProfile, pstats, io, numpy as np
sys.path.insert(0, "/work/main/bench")
import epoch_vs_torch as b
X, y = b.make_data()
for B in (64, 1024):
    net = b.make_gpunet()
    b.gpunet_epoch(net, X, y, B, 0)
    pr = cProfile.Profile(); pr.enable()
    b.gpunet_epoch(net, X, y, B, 1)
    pr.disable()
    s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(25)
    print(f"===== B={B}"); print(s.getvalue()[:6000])
