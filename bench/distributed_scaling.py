"""Weak and strong scaling of data-parallel training over 1, 2, 4 MPI ranks on this CPU,
and the ring all-reduce model of docs/distributed.md applied to the bench shapes.

    PYTHONPATH=. python bench/distributed_scaling.py --json bench/results/distributed_cpu.json

launches `mpiexec -n K` of itself (--worker) for each rank count, one BLAS thread per
rank. Each worker runs `gpunet.train.train_step`, the step of `fit` (gather its shard,
BP1–BP4, all-reduce, SGD step), on synthetic data, timing the step and the all-reduce
within it. The shapes are the throughput benchmark's (gpunet.tools.bench.SHAPES).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from gpunet.tools.bench import SHAPES, portable

MEASURED = ("nielsen", "mnist-mlp")
# (bandwidth bytes/s, per-step latency s) of each link, as in docs/distributed.md
LINKS = {
    "NVLink (450 GB/s)": (450e9, 5e-6),
    "InfiniBand NDR (50 GB/s)": (50e9, 5e-6),
    "100 GbE (12.5 GB/s)": (12.5e9, 20e-6),
    "10 GbE (1.25 GB/s)": (1.25e9, 50e-6),
}
GPU_FLOPS = 30e12  # assumed achieved float32 rate of one GPU rank (not measured here)


def ring_allreduce_seconds(size_bytes: float, ranks: int, bandwidth: float, latency: float):
    """2(K−1)/K · bytes/bandwidth + 2(K−1) · latency."""
    return 2 * (ranks - 1) / ranks * size_bytes / bandwidth + 2 * (ranks - 1) * latency


def model(ranks: int = 8) -> dict:
    """All-reduce time per step and the per-rank batch above which weak scaling is ≥ 90%
    efficient, t_c(b) = 6·P·b / F ≥ 9·t_allreduce, for float32 buffers."""
    from gpunet import Network

    table = {}
    for name, shape in SHAPES.items():
        P = Network(shape.sizes, shape.activations, backend="numpy").n_parameters
        row = {"parameters": P, "bytes": 4 * P, "links": {}}
        for link, (bandwidth, latency) in LINKS.items():
            seconds = ring_allreduce_seconds(4 * P, ranks, bandwidth, latency)
            row["links"][link] = {
                "allreduce_ms": seconds * 1e3,
                "batch_per_rank_for_90pct": 9 * seconds * GPU_FLOPS / (6 * P),
            }
        table[name] = row
    return {"ranks": ranks, "gpu_flops": GPU_FLOPS, "shapes": table}


class TimedAllreduce:
    """A Distributed context whose all-reduce is timed, for train_step: the seconds of the
    last one, wait for the slowest rank included."""

    def __init__(self, ctx: Any) -> None:
        self.ctx, self.seconds = ctx, 0.0

    def allreduce_gradients(self, grads: Any, weight: float) -> None:
        started = time.perf_counter()
        self.ctx.allreduce_gradients(grads, weight)
        self.seconds = time.perf_counter() - started


def worker(args: argparse.Namespace) -> None:
    import gpunet
    from gpunet.train.distributed import Distributed
    from gpunet.train.loop import train_step

    ctx = Distributed.from_mpi()
    shape = SHAPES[args.shape]
    net = gpunet.Network(shape.sizes, shape.activations, backend="numpy", seed=0)
    global_batch = args.batch * ctx.size if args.mode == "weak" else args.batch
    rng = np.random.default_rng(0)
    X = rng.random((global_batch * 4, shape.sizes[0]), dtype=np.float32)
    outputs = shape.sizes[-1]
    targets = np.eye(outputs, dtype=np.float32)[rng.integers(0, outputs, len(X))]
    cost, optimizer = net.cost_function(None), gpunet.SGD(0.01)
    part, timed = ctx.shard(global_batch), TimedAllreduce(ctx)
    steps, allreduce = [], []
    for step in range(args.warmup + args.steps):
        batch = np.arange(step % 4 * global_batch, (step % 4 + 1) * global_batch)[part]
        ctx.comm.Barrier()  # steps start together, so a slow rank shows as all-reduce wait
        started = time.perf_counter()
        train_step(net, X, targets, batch, cost, optimizer, ctx=timed, m=global_batch)
        steps.append(time.perf_counter() - started)
        allreduce.append(timed.seconds)
    # a step lasts as long as its slowest rank's own compute + all-reduce: the maxima over
    # ranks of each (compute, all-reduce and their sum apart), then the median step
    steps_s, allreduce_s = np.array(steps[args.warmup :]), np.array(allreduce[args.warmup :])
    times = np.array([steps_s - allreduce_s, allreduce_s, steps_s])
    ctx.comm.Allreduce(ctx._mpi.IN_PLACE, times, op=ctx._mpi.MAX)
    if ctx.is_root:
        compute_s, allreduce_s, step_s = np.median(times, axis=1)
        print(
            json.dumps(
                {
                    "shape": args.shape,
                    "mode": args.mode,
                    "ranks": ctx.size,
                    "batch_per_rank": part.stop - part.start,
                    "global_batch": global_batch,
                    "step_ms": step_s * 1e3,
                    "compute_ms": compute_s * 1e3,
                    "allreduce_ms": allreduce_s * 1e3,
                    "samples_per_second": global_batch / step_s,
                }
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch", type=int, default=256, help="per rank (weak), global (strong)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shape", choices=list(SHAPES), help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["weak", "strong"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    mpiexec = Path(sys.executable).parent / "mpiexec"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    runs = []
    for shape in MEASURED:
        for mode in ("weak", "strong"):
            for ranks in args.ranks:
                command = [
                    str(mpiexec if mpiexec.exists() else "mpiexec"),
                    *("-n", str(ranks), sys.executable, __file__, "--worker"),
                    *("--shape", shape, "--mode", mode, "--batch", str(args.batch)),
                    *("--steps", str(args.steps), "--warmup", str(args.warmup)),
                ]
                done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
                one = next(r for r in runs if r["shape"] == shape and r["mode"] == mode)
                run = runs[-1]
                # weak: time per step should stay; strong: it should fall as 1/K
                ideal = one["step_ms"] if mode == "weak" else one["step_ms"] / ranks
                run["efficiency"] = ideal / run["step_ms"]
                # the model: one rank's compute scaled to the shard, plus this all-reduce
                scaled = one["compute_ms"] * run["batch_per_rank"] / one["batch_per_rank"]
                run["model_step_ms"] = scaled + run["allreduce_ms"]
                run["model_efficiency"] = ideal / run["model_step_ms"]
                print(
                    f"{shape:10} {mode:6} K={ranks}  batch/rank {run['batch_per_rank']:4}  "
                    f"step {run['step_ms']:7.3f} ms = compute {run['compute_ms']:7.3f} + "
                    f"all-reduce {run['allreduce_ms']:6.3f}  {run['samples_per_second']:9.0f} "
                    f"samples/s  efficiency {run['efficiency']:.2f} "
                    f"(model {run['model_efficiency']:.2f})",
                    flush=True,
                )
    record = {
        "command": portable(" ".join(["PYTHONPATH=. python", *sys.argv])),
        "machine": {"cpu_cores": os.cpu_count(), "platform": platform.platform()},
        "threads_per_rank": 1,
        "runs": runs,
        "model": model(),
    }
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
