import sys, torch
sys.path.insert(0, "/work/main/bench")
import epoch_vs_torch as b
from torch.profiler import profile, ProfilerActivity
torch.set_num_threads(2)
X, y = b.make_data(); Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
for B in [int(s) for s in sys.argv[1:]] or [64, 1024]:
    tr = b.TorchTrainer(b.make_torch(b.make_gpunet()))
    tr.epoch(Xt, yt, B)
    print(f"=== B={B} unprofiled epoch {tr.epoch(Xt, yt, B)[0]:.3f}s")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        tr.epoch(Xt, yt, B)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=22, max_name_column_width=40))
