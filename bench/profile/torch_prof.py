"""torch.profiler of one PyTorch epoch, the benchmark's loop, per batch size.

Run from the checkout (the output kept in bench/results/profile):

    PYTHONPATH=. python bench/profile/torch_prof.py > bench/results/profile/torch_prof.txt
"""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile

from bench.epoch_vs_torch import TorchTrainer, make_data, make_gpunet, make_torch
from bench.profile.common import parser
from gpunet.tools.bench import blas_threads


def main() -> None:
    args = parser(__doc__).parse_args()
    torch.set_num_threads(blas_threads())  # as in the benchmark: NumPy's BLAS threads
    X, y = make_data(args.examples)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for batch_size in args.batch_sizes:
        trainer = TorchTrainer(make_torch(make_gpunet()))
        trainer.epoch(Xt, yt, batch_size)
        print(f"=== B={batch_size} unprofiled epoch {trainer.epoch(Xt, yt, batch_size)[0]:.3f}s")
        with profile(activities=[ProfilerActivity.CPU]) as profiled:
            trainer.epoch(Xt, yt, batch_size)
        table = profiled.key_averages().table(
            sort_by="self_cpu_time_total", row_limit=22, max_name_column_width=40
        )
        print(table)


if __name__ == "__main__":
    main()
