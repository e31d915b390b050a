"""gpunet (NumPy backend) against PyTorch on the CPU, side by side in one process: training
epochs through `fit` and through the bare step, and inference (`forward`, `predict`).

The issue's targets (ratio gpunet/PyTorch of the median times): training through `fit`,
float32, plain SGD (lr 0.1) and Adam (lr 1e-3), shapes mnist-mlp [784, 256, 256, 10],
nielsen [784, 30, 10] and narrow-deep, <= 0.9 at every batch size from 1 to 4096;
inference <= 0.9 at batch 1 to 8192.

Fairness, in both directions:
- the same data path: both shuffle and gather each batch's rows by index (with --no-shuffle
  both take slices instead), from the very same memory (torch.from_numpy);
- the same thread count (the CPU count) and identical initial weights;
- every timed run starts after a pause (--pause, default 0.15 s), so that no thread pool
  of the run before is still spinning (OpenBLAS's idle workers spin for about 0.1 s and
  would slow whatever runs next on the same cores);
- the runs of a cell alternate (the order rotates every repeat), so that load changes on a
  shared machine fall on all alike; medians, and the median of per-repeat paired ratios;
- the CPU model, its load, and every thread pool with its BLAS kernel (threadpoolctl) are
  recorded.

What is timed:
  fit     net.fit(X, y, epochs=1, ...) as a user calls it, input checks included
  step    the same epoch as fit's loop takes it, through gpunet.train.train_step on
          already-checked arrays: fit's cost, accuracy and checks left out
  gemm    the epoch's GEMMs alone (forward, BP2, BP4) through gpunet's backend: the
          ceiling on the same BLAS, against which the gap is read
  torch   randperm, then per batch: gather, zero_grad, forward, loss, backward, step, and
          the loss summed on the tensor (one host read per epoch)
  infer   net.forward(X) and net.predict(X) against softmax/sigmoid(model(X)) and
          model(X).argmax(1) under torch.inference_mode

    PYTHONPATH=. python bench/epoch_vs_torch.py --json bench/results/epoch_vs_torch_cpu.json
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

import gpunet
from bench import record
from bench.torch_peer import (
    ADAM_LR,
    LR,
    MNIST,
    N_EXAMPLES,
    SHAPES,
    Shape,
    TorchTrainer,
    machine,
    make_data,
    make_gpunet,
    make_torch,
    now,
    torch_loss,
    torch_outputs,
    use_cpu_clock,
)
from gpunet.train.loop import train_step

__all__ = ["LR", "N_EXAMPLES", "TorchTrainer", "gpunet_epoch", "make_data", "make_gpunet"]
__all__ += ["make_torch"]
TARGET = 0.9
TRAIN_BATCHES = "1,4,16,64,256,1024,4096"
INFER_BATCHES = "1,4,16,64,256,1024,4096,8192"


def optimizer_for(name: str) -> gpunet.Optimizer:
    return gpunet.SGD(LR) if name == "sgd" else gpunet.Adam(ADAM_LR)


def gpunet_epoch(
    net, X, y, batch_size: int, seed: int, optimizer=None, cost="log_likelihood", shuffle=True
) -> tuple[float, float, float]:
    """(wall seconds of the fit call, fit's in-loop seconds, mean train cost)."""
    options = {"lr": LR} if optimizer is None else {"optimizer": optimizer}
    started = now()
    history = net.fit(
        X, y, epochs=1, batch_size=batch_size, cost=cost, progress=False, shuffle=shuffle,
        seed=seed, **options,
    )  # fmt: skip
    wall = now() - started
    return wall, history["seconds"][0], history["cost"][0]


def step_epoch(net, checked, batch_size: int, rng, cost, optimizer, shuffle: bool) -> float:
    """Seconds of one epoch of bare train_step calls on checked (X, targets)."""
    X, targets = checked
    n = X.shape[0]
    started = now()
    order = rng.permutation(n) if shuffle else None
    for start in range(0, n, batch_size):
        batch = (
            slice(start, start + batch_size) if order is None else order[start : start + batch_size]
        )
        train_step(net, X, targets, batch, cost, optimizer)
    return now() - started


def gemm_epoch(net, n: int, batch_size: int) -> float:
    """Seconds of the epoch's GEMMs alone (forward, BP2, BP4) on the same BLAS: the ceiling."""
    matmul, weights, grads = net.backend.matmul, net.weights, net.grads_w
    rng = np.random.default_rng(0)
    for m in {batch_size, n % batch_size} - {0}:  # finite operands of a step's magnitude
        ws = net.workspace(m)
        for buffer in (ws.x, *ws.weighted_input, *ws.delta):
            buffer[...] = rng.random(buffer.shape, dtype=np.float32) * 0.01
    started = now()
    for start in range(0, n, batch_size):
        ws = net.workspace(min(batch_size, n - start))
        activation = ws.x.T
        for w, z in zip(weights, ws.weighted_input):
            activation = matmul(w, activation, out=z)
        for i in reversed(range(len(weights))):
            previous = ws.x.T if i == 0 else ws.weighted_input[i - 1]
            matmul(ws.delta[i], previous.T, out=grads[i])
            if i:
                matmul(weights[i].T, ws.delta[i], out=ws.delta[i - 1])
    return now() - started


def interleaved(runs: dict[str, Callable[[], float]], repeats: int, pause: float) -> dict:
    """Each run's seconds over `repeats` rounds, the order rotating, a pause before each."""
    names = list(runs)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            gc.collect()
            time.sleep(pause)
            seconds[name].append(runs[name]())
    return seconds


def summary(times: list[float]) -> dict:
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "all": times}


def ratios(seconds: dict[str, list[float]], ours: str, theirs: str) -> dict:
    paired = [a / b for a, b in zip(seconds[ours], seconds[theirs])]
    return {
        "ratio": statistics.median(seconds[ours]) / statistics.median(seconds[theirs]),
        "paired_ratio_median": statistics.median(paired),
    }


def train_cell(shape_name: str, optimizer: str, B: int, repeats: int, pause: float, shuffle):
    shape = SHAPES[shape_name]
    n = min(N_EXAMPLES, 256 * B)  # 256 steps up to B = 64, fewer above
    X, y = make_data(n, shape=shape)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    net = make_gpunet(shape=shape)
    trainer = TorchTrainer(make_torch(net, shape), shape, optimizer)
    fit_net, step_net, gemm_net = net, make_gpunet(shape=shape), make_gpunet(shape=shape)
    fit_opt, step_opt = optimizer_for(optimizer), optimizer_for(optimizer)
    cost = step_net.cost_function(shape.cost)
    checked = step_net.checked_inputs(X, y, cost)[:2]
    seeds, rng = iter(range(1, 1_000_000)), np.random.default_rng(0)
    runs = {
        "fit": lambda: gpunet_epoch(fit_net, X, y, B, next(seeds), fit_opt, shape.cost, shuffle)[0],
        "step": lambda: step_epoch(step_net, checked, B, rng, cost, step_opt, shuffle),
        "torch": lambda: trainer.epoch(Xt, yt, B, shuffle)[0],
        "gemm": lambda: gemm_epoch(gemm_net, n, B),
    }
    for run in runs.values():  # warm-up: workspaces, BLAS buffers, torch's allocator
        run()
    seconds = interleaved(runs, repeats, pause)
    fit, step = ratios(seconds, "fit", "torch"), ratios(seconds, "step", "torch")
    ceiling = ratios(seconds, "gemm", "torch")
    result = {
        "shape": shape_name, "optimizer": optimizer, "batch_size": B, "examples": n,
        "seconds": {name: summary(times) for name, times in seconds.items()},
        "ratio_fit": fit["ratio"], "paired_ratio_fit": fit["paired_ratio_median"],
        "ratio_step": step["ratio"], "paired_ratio_step": step["paired_ratio_median"],
        "ratio_gemm": ceiling["ratio"], "paired_ratio_gemm": ceiling["paired_ratio_median"],
        "meets_target": fit["ratio"] <= TARGET,
    }  # fmt: skip
    print(
        f"train {shape_name:11s} {optimizer:4s} B={B:5d}: fit/torch {fit['ratio']:.2f} "
        f"(paired {fit['paired_ratio_median']:.2f}), step/torch {step['ratio']:.2f}, "
        f"GEMMs/torch {ceiling['ratio']:.2f}  "
        f"[torch {statistics.median(seconds['torch']) * 1e3:.1f} ms/epoch]",
        flush=True,
    )
    return result


def infer_cell(shape_name: str, B: int, repeats: int, pause: float) -> dict:
    shape = SHAPES[shape_name]
    X, _ = make_data(B, seed=B, shape=shape)
    Xt = torch.from_numpy(X)
    net = make_gpunet(shape=shape)
    model = make_torch(net, shape)
    calls = max(1, 2048 // B)

    def timed(call: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            started = now()
            for _ in range(calls):
                call()
            return (now() - started) / calls

        return run

    def torch_forward():
        with torch.inference_mode():
            return torch_outputs(shape, model(Xt))

    def torch_predict():
        with torch.inference_mode():
            return model(Xt).argmax(dim=1)

    runs = {
        "forward": timed(lambda: net.forward(X)),
        "torch_forward": timed(torch_forward),
        "predict": timed(lambda: net.predict(X)),
        "torch_predict": timed(torch_predict),
    }
    for run in runs.values():
        run()
    seconds = interleaved(runs, repeats, pause)
    forward, predict = (
        ratios(seconds, "forward", "torch_forward"),
        ratios(seconds, "predict", "torch_predict"),
    )
    print(
        f"infer {shape_name:11s} B={B:5d}: forward/torch {forward['ratio']:.2f}, "
        f"predict/torch {predict['ratio']:.2f}  "
        f"[torch {statistics.median(seconds['torch_forward']) * 1e6:.1f} us/call]",
        flush=True,
    )
    return {
        "shape": shape_name, "batch_size": B, "calls_per_sample": calls,
        "seconds": {name: summary(times) for name, times in seconds.items()},
        "ratio_forward": forward["ratio"], "paired_ratio_forward": forward["paired_ratio_median"],
        "ratio_predict": predict["ratio"], "paired_ratio_predict": predict["paired_ratio_median"],
        "meets_target": max(forward["ratio"], predict["ratio"]) <= TARGET,
    }  # fmt: skip


def gradient_check(m: int = 256, rtol: float = 1e-4, shape: Shape = MNIST) -> dict:
    """From identical weights, one gradient on the same batch: gpunet vs torch autograd."""
    X, y = make_data(m, shape=shape)
    net = make_gpunet(shape=shape)
    model = make_torch(net, shape)
    grads_w, grads_b = net.gradients(X, y, cost=shape.cost)
    model.zero_grad(set_to_none=True)
    torch_loss(shape)(model(torch.from_numpy(X)), torch.from_numpy(y)).backward()
    linears = [mod for mod in model if isinstance(mod, nn.Linear)]
    worst = 0.0
    for i, linear in enumerate(linears):
        for ours, theirs in ((grads_w[i], linear.weight.grad), (grads_b[i], linear.bias.grad)):
            theirs = theirs.numpy()
            scale = max(float(np.abs(theirs).max()), 1e-30)
            worst = max(worst, float(np.abs(ours.astype(np.float64) - theirs).max()) / scale)
    return {"batch": m, "rtol": rtol, "worst_rel_error": worst, "ok": worst <= rtol,
            "definition": "max|g_gpunet - g_torch| / max|g_torch| per tensor"}  # fmt: skip


def table(results: list[dict], kind: str) -> str:
    if kind == "train":
        lines = [
            "| shape | optimizer | batch | torch ms/epoch | fit/torch | step/torch "
            "| GEMMs/torch | <= 0.9 |",
            "|---|---|---:|---:|---:|---:|---:|:---:|",
        ]
        for r in results:
            lines.append(
                f"| {r['shape']} | {r['optimizer']} | {r['batch_size']} "
                f"| {r['seconds']['torch']['median'] * 1e3:.1f} | {r['ratio_fit']:.2f} "
                f"| {r['ratio_step']:.2f} | {r['ratio_gemm']:.2f} "
                f"| {'yes' if r['meets_target'] else 'no'} |"
            )
    else:
        lines = ["| shape | batch | torch forward us | forward/torch | predict/torch | <= 0.9 |",
                 "|---|---:|---:|---:|---:|:---:|"]  # fmt: skip
        for r in results:
            lines.append(
                f"| {r['shape']} | {r['batch_size']} "
                f"| {r['seconds']['torch_forward']['median'] * 1e6:.1f} "
                f"| {r['ratio_forward']:.2f} | {r['ratio_predict']:.2f} "
                f"| {'yes' if r['meets_target'] else 'no'} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--optimizers", default="sgd,adam")
    parser.add_argument("--batch-sizes", default=TRAIN_BATCHES, help="training")
    parser.add_argument("--infer-batch-sizes", default=INFER_BATCHES, help="'' for none")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each, per cell")
    parser.add_argument("--pause", type=float, default=0.15, help="seconds before each run")
    parser.add_argument("--no-shuffle", action="store_true", help="slices on both sides")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="cpu: both on one thread, timed by the thread's CPU time (a shared machine)",
    )
    parser.add_argument("--examples", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)
    if args.examples is not None:  # a quick check that it runs: few rows, no pauses, and
        global N_EXAMPLES  # inference at the training batch sizes only
        N_EXAMPLES, args.pause = args.examples, 0.0
        if args.infer_batch_sizes == INFER_BATCHES:
            args.infer_batch_sizes = args.batch_sizes
    numbers = lambda text: [int(b) for b in text.split(",") if b.strip()]  # noqa: E731
    shapes, optimizers = args.shapes.split(","), args.optimizers.split(",")
    threads = os.cpu_count() or 1
    if args.clock == "cpu":
        use_cpu_clock()
        threads, args.pause = 1, 0.0
        threadpool_limits(1, user_api="blas")
    torch.set_num_threads(threads)
    before = machine()
    pools = ", ".join(
        f"{p['internal_api']} {p.get('version') or ''} {p.get('architecture') or ''} "
        f"({p['num_threads']} threads)" for p in before["threadpools"]
    )  # fmt: skip
    print(f"CPU: {before['cpu']} ({before['cpu_count']} cores), load {before['load_average']}")
    print(f"thread pools: {pools}")
    train = [
        train_cell(s, o, B, args.repeats, args.pause, not args.no_shuffle)
        for s in shapes for o in optimizers for B in numbers(args.batch_sizes)
    ]  # fmt: skip
    infer = [
        infer_cell(s, B, args.repeats, args.pause)
        for s in shapes for B in numbers(args.infer_batch_sizes)
    ]  # fmt: skip
    check = gradient_check()
    print(f"gradient check: worst relative error {check['worst_rel_error']:.1e}: "
          f"{'OK' if check['ok'] else 'MISMATCH'}")  # fmt: skip
    tables = {"train": table(train, "train"), "infer": table(infer, "infer")}
    print("\n" + tables["train"] + "\n\n" + tables["infer"])
    record.write(args.json, {
        **record.header("epoch_vs_torch", sys.argv[1:] if argv is None else argv),
        "argv": sys.argv,
        "cwd": ".",
        "machine": before,
        "load_average_after": list(os.getloadavg()),
        "settings": {"clock": args.clock, "threads": threads,
                     "repeats": args.repeats, "pause_seconds": args.pause,
                     "shuffle": not args.no_shuffle, "target_ratio": TARGET,
                     "lr": {"sgd": LR, "adam": ADAM_LR}, "dtype": "float32",
                     "init": "he, seed 0, copied into torch"},
        "results": train,
        "inference": infer,
        "gradient_check": check,
        "tables_markdown": tables,
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
