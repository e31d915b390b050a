"""Weak and strong scaling of data-parallel training over 1, 2, 4 MPI ranks on this CPU,
and the ring all-reduce model of docs/distributed.md applied to the bench shapes.

    PYTHONPATH=. python bench/distributed_scaling.py --json bench/results/distributed_cpu.json

launches `mpiexec -n K` of itself (--worker) for each rank count, one BLAS thread per
rank. Each worker runs the training step of `gpunet.training.fit` (gather its shard,
BP1–BP4, all-reduce, SGD step) on synthetic data and times compute and all-reduce apart.
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

import numpy as np

SHAPES = {
    "nielsen": ([784, 30, 10], "sigmoid"),
    "mnist-mlp": ([784, 256, 256, 10], ["relu", "relu", "softmax"]),
    "wide": ([1024, 4096, 4096, 1024], ["relu", "relu", "softmax"]),
    # 784 inputs and 10 outputs assumed around the 8 hidden layers of 64
    "narrow-deep": ([784, *[64] * 8, 10], ["relu"] * 8 + ["softmax"]),
}
MEASURED = ("nielsen", "mnist-mlp")
# (bandwidth bytes/s, per-step latency s) of each link, as in docs/distributed.md
LINKS = {
    "NVLink (450 GB/s)": (450e9, 5e-6),
    "InfiniBand NDR (50 GB/s)": (50e9, 5e-6),
    "100 GbE (12.5 GB/s)": (12.5e9, 20e-6),
    "10 GbE (1.25 GB/s)": (1.25e9, 50e-6),
}
GPU_FLOPS = 30e12  # assumed achieved float32 rate of one GPU rank (not measured here)


def n_parameters(sizes: list[int]) -> int:
    return sum(n * k + n for n, k in zip(sizes[1:], sizes[:-1]))


def ring_allreduce_seconds(size_bytes: float, ranks: int, bandwidth: float, latency: float):
    """2(K−1)/K · bytes/bandwidth + 2(K−1) · latency."""
    return 2 * (ranks - 1) / ranks * size_bytes / bandwidth + 2 * (ranks - 1) * latency


def model(ranks: int = 8) -> dict:
    """All-reduce time per step and the per-rank batch above which weak scaling is ≥ 90%
    efficient, t_c(b) = 6·P·b / F ≥ 9·t_allreduce, for float32 buffers."""
    table = {}
    for name, (sizes, _) in SHAPES.items():
        P = n_parameters(sizes)
        row = {"parameters": P, "bytes": 4 * P, "links": {}}
        for link, (bandwidth, latency) in LINKS.items():
            seconds = ring_allreduce_seconds(4 * P, ranks, bandwidth, latency)
            row["links"][link] = {
                "allreduce_ms": seconds * 1e3,
                "batch_per_rank_for_90pct": 9 * seconds * GPU_FLOPS / (6 * P),
            }
        table[name] = row
    return {"ranks": ranks, "gpu_flops": GPU_FLOPS, "shapes": table}


def worker(args: argparse.Namespace) -> None:
    import gpunet
    from gpunet.distributed import Distributed

    ctx = Distributed.from_mpi()
    sizes, activations = SHAPES[args.shape]
    net = gpunet.Network(sizes, activations, backend="numpy", seed=0)
    global_batch = args.batch * ctx.size if args.mode == "weak" else args.batch
    rng = np.random.default_rng(0)
    X = rng.random((global_batch * 4, sizes[0]), dtype=np.float32)
    targets = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], len(X))]
    cost, optimizer = net._cost(None), gpunet.SGD(0.01)
    part = ctx.shard(global_batch)
    ws = net._workspace(part.stop - part.start)
    compute, allreduce = [], []
    for step in range(args.warmup + args.steps):
        batch = np.arange(step % 4 * global_batch, (step % 4 + 1) * global_batch)[part]
        ctx.comm.Barrier()  # steps start together, so a slow rank shows as all-reduce wait
        started = time.perf_counter()
        net.backend.gather_rows(X, batch, out=ws.x)
        net.backend.gather_rows(targets, batch, out=ws.y)
        net._backpropagate(ws.x, ws.y, ws, cost)
        computed = time.perf_counter()
        ctx.allreduce_gradients(net._grads, len(batch) / global_batch)
        reduced = time.perf_counter()
        optimizer.step(net.backend, net._params, net._grads, net.n_weights)
        compute.append(computed - started + time.perf_counter() - reduced)
        allreduce.append(reduced - computed)
    # a step lasts as long as its slowest rank: the maxima over ranks, then the median step
    times = np.array([compute[args.warmup :], allreduce[args.warmup :]])
    ctx.comm.Allreduce(ctx._mpi.IN_PLACE, times, op=ctx._mpi.MAX)
    if ctx.is_root:
        compute_s, allreduce_s = np.median(times, axis=1)
        step_s = float(np.median(times.sum(axis=0)))
        print(
            json.dumps(
                {
                    "shape": args.shape,
                    "mode": args.mode,
                    "ranks": ctx.size,
                    "batch_per_rank": part.stop - part.start,
                    "global_batch": global_batch,
                    "step_ms": step_s * 1e3,
                    "compute_ms": float(compute_s) * 1e3,
                    "allreduce_ms": float(allreduce_s) * 1e3,
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
                print(
                    f"{shape:10} {mode:6} K={ranks}  batch/rank {run['batch_per_rank']:4}  "
                    f"step {run['step_ms']:7.3f} ms = compute {run['compute_ms']:7.3f} + "
                    f"all-reduce {run['allreduce_ms']:6.3f}  {run['samples_per_second']:9.0f} "
                    f"samples/s  efficiency {run['efficiency']:.2f}",
                    flush=True,
                )
    record = {
        "command": " ".join(["PYTHONPATH=. python", *sys.argv]),
        "machine": {"cpu_cores": os.cpu_count(), "platform": platform.platform()},
        "threads_per_rank": 1,
        "runs": runs,
        "model": model(),
    }
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
