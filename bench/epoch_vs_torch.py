"""One training epoch of gpunet (NumPy backend) against PyTorch on the CPU, side by side.

The issue's target: [784, 256, 256, 10] relu/relu/softmax, log-likelihood cost (torch's
nn.CrossEntropyLoss on logits, mean reduction), plain SGD (lr 0.1, no momentum), float32.
An epoch at batch 1024 must take no longer than PyTorch's (ratio gpunet/torch <= 1.0),
and at batch 64 no more than 1.5x.

Both run in this one process on the same synthetic data (60,000 x 784 rows in [0, 1),
labels 0..9), with the same thread count (NumPy's BLAS threads), from identical initial
weights. After a warm-up epoch each, gpunet and torch epochs alternate (the order flips
every repeat) so that clock or thermal drift falls on both alike.

    PYTHONPATH=. python bench/epoch_vs_torch.py --json bench/results/epoch_vs_torch_cpu.json

What is timed:
  gpunet  the whole call net.fit(X, y, epochs=1, ...), input checks included (what a user
          waits for); the fit's own in-loop time (History['seconds']) is recorded too.
  torch   randperm, then per batch: gather X[idx], y[idx], zero_grad(set_to_none=True),
          forward, loss, backward, step, and the running loss summed on the tensor
          (one host read at the end of the epoch, as gpunet does).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import itertools
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy
import torch
from torch import nn

import gpunet
from gpunet.core.backends import Backend
from gpunet.core.backends.numpy_backend import cpu_model
from gpunet.tools.bench import blas_info, gpunet_source, portable

SIZES = [784, 256, 256, 10]
ACTIVATIONS = ["relu", "relu", "softmax"]
N_EXAMPLES = 60_000
LR = 0.1
DATA_SEED = 20240601
TARGETS = {1024: 1.0, 64: 1.5}  # the bounds on the ratio gpunet/torch


# --- the two implementations -----------------------------------------------------------


def make_data(n: int = N_EXAMPLES, seed: int = DATA_SEED) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], size=n, dtype=np.int64)
    return X, y


def make_gpunet(backend: str | Backend = "numpy") -> gpunet.Network:
    return gpunet.Network(SIZES, ACTIVATIONS, backend=backend, dtype="float32", init="he", seed=0)


def make_torch(net: gpunet.Network) -> nn.Sequential:
    """The same network in torch, with gpunet's initial weights copied in."""
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(SIZES):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])  # softmax lives in CrossEntropyLoss
    weights, biases = net.get_params()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for linear, w, b in zip(linears, weights, biases):
            assert linear.weight.shape == w.shape  # (out, in), like gpunet's W
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
    return model.float()


def gpunet_epoch(net, X, y, batch_size: int, seed: int) -> tuple[float, float, float]:
    """(wall seconds of the fit call, fit's in-loop seconds, mean train cost)."""
    started = time.perf_counter()
    history = net.fit(
        X,
        y,
        epochs=1,
        batch_size=batch_size,
        lr=LR,
        cost="log_likelihood",
        progress=False,
        shuffle=True,
        seed=seed,
    )
    wall = time.perf_counter() - started
    return wall, history["seconds"][0], history["cost"][0]


class TorchTrainer:
    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.loss_fn = nn.CrossEntropyLoss()  # mean reduction
        self.optimizer = torch.optim.SGD(model.parameters(), lr=LR)  # momentum 0
        self.generator = torch.Generator().manual_seed(0)

    def epoch(self, X: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
        """(wall seconds, mean train cost) for one epoch over a shuffled permutation."""
        model, loss_fn, optimizer = self.model, self.loss_fn, self.optimizer
        started = time.perf_counter()
        n = X.shape[0]
        order = torch.randperm(n, generator=self.generator)
        total = torch.zeros((), dtype=torch.float32)
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            xb, yb = X[batch], y[batch]  # gathered by index, as gpunet does
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.detach() * batch.shape[0]  # Σ_x C_x, as gpunet accumulates
        cost = float(total) / n
        return time.perf_counter() - started, cost


# --- gradient sanity -------------------------------------------------------------------


def gradient_check(X: np.ndarray, y: np.ndarray, m: int = 256, rtol: float = 1e-4) -> dict:
    """From identical weights, one gradient on the same batch: gpunet vs torch autograd."""
    net = make_gpunet()
    model = make_torch(net)
    Xb, yb = X[:m], y[:m]
    grads_w, grads_b = net.gradients(Xb, yb, cost="log_likelihood")
    cost_gpunet = net.cost(Xb, yb, cost="log_likelihood")
    model.zero_grad(set_to_none=True)
    loss = nn.CrossEntropyLoss()(model(torch.from_numpy(Xb)), torch.from_numpy(yb))
    loss.backward()
    loss_torch = float(loss.detach())
    linears = [mod for mod in model if isinstance(mod, nn.Linear)]
    tensors = []
    worst = 0.0
    for i, linear in enumerate(linears):
        for kind, ours, theirs in (
            ("W", grads_w[i], linear.weight.grad.numpy()),
            ("b", grads_b[i], linear.bias.grad.numpy()),
        ):
            ours = np.asarray(ours)
            scale = float(np.abs(theirs).max())
            error = float(np.abs(ours.astype(np.float64) - theirs).max()) / max(scale, 1e-30)
            worst = max(worst, error)
            tensors.append(
                {
                    "name": f"{kind}{i + 1}",
                    "shape": list(ours.shape),
                    "dtype": str(ours.dtype),
                    "max_abs_torch": scale,
                    "max_rel_error": error,
                }
            )
    return {
        "batch": m,
        "rtol": rtol,
        "definition": "max|g_gpunet - g_torch| / max|g_torch| per tensor",
        "tensors": tensors,
        "worst_rel_error": worst,
        "cost_gpunet": float(cost_gpunet),
        "cost_torch": loss_torch,
        "cost_rel_error": abs(float(cost_gpunet) - loss_torch) / abs(loss_torch),
        "ok": worst <= rtol and abs(float(cost_gpunet) - loss_torch) <= rtol * abs(loss_torch),
    }


# --- driver ----------------------------------------------------------------------------


def summary(times: list[float]) -> dict:
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "all": times}


def measure(B: int, repeats: int, X, y, Xt, yt) -> dict:
    net = make_gpunet()
    trainer = TorchTrainer(make_torch(net))
    seed = iter(range(1_000_000))
    # warm-up: first-touch of the workspaces, BLAS buffers, torch's allocator
    g_warm = gpunet_epoch(net, X, y, B, next(seed))
    t_warm = trainer.epoch(Xt, yt, B)
    print(f"  B={B} warm-up: gpunet {g_warm[0]:.3f}s  torch {t_warm[0]:.3f}s", flush=True)
    g_wall, g_loop, g_cost, t_wall, t_cost, order = [], [], [], [], [], []
    for r in range(repeats):
        first = ("gpunet", "torch") if r % 2 == 0 else ("torch", "gpunet")
        order.append(list(first))
        for which in first:
            gc.collect()
            if which == "gpunet":
                wall, loop, cost = gpunet_epoch(net, X, y, B, next(seed))
                g_wall.append(wall)
                g_loop.append(loop)
                g_cost.append(cost)
            else:
                wall, cost = trainer.epoch(Xt, yt, B)
                t_wall.append(wall)
                t_cost.append(cost)
        print(
            f"  B={B} repeat {r + 1}/{repeats}: gpunet {g_wall[-1]:.3f}s "
            f"(loop {g_loop[-1]:.3f}s)  torch {t_wall[-1]:.3f}s",
            flush=True,
        )
    g, g_in, t = summary(g_wall), summary(g_loop), summary(t_wall)
    ratio = g["median"] / t["median"]
    paired = [a / b for a, b in zip(g_wall, t_wall)]  # same repeat: same machine state
    target = TARGETS.get(B)
    return {
        "batch_size": B,
        "steps_per_epoch": -(-N_EXAMPLES // B),
        "repeats": repeats,
        "order": order,
        "warmup_seconds": {"gpunet": g_warm[0], "torch": t_warm[0]},
        "gpunet_seconds": g,
        "gpunet_fit_loop_seconds": g_in,
        "torch_seconds": t,
        "ratio": ratio,
        "ratio_fit_loop": g_in["median"] / t["median"],
        "paired_ratios": paired,
        "paired_ratio_median": statistics.median(paired),
        "gpunet_fit_overhead_seconds": [a - b for a, b in zip(g_wall, g_loop)],
        "target_ratio": target,
        "meets_target": None if target is None else ratio <= target,
        "train_cost": {"gpunet": g_cost, "torch": t_cost},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batch-sizes", default="64,1024", help="comma-separated batch sizes (default 64,1024)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed epochs per implementation and batch size (default 5 at B >= 256, 3 below)",
    )
    parser.add_argument("--examples", type=int, default=N_EXAMPLES, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]

    blas = blas_info()
    threads = int(blas["threads"])
    torch.set_num_threads(threads)
    X, y = make_data(args.examples)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)  # the very same memory
    print(f"CPU: {cpu_model()}; threads: numpy BLAS {threads}, torch {torch.get_num_threads()}")
    print(
        f"numpy {np.__version__} ({blas['build'].get('name')} {blas['build'].get('version')}, "
        f"core {blas.get('corename')}), torch {torch.__version__}, scipy {scipy.__version__}, "
        f"gpunet {gpunet.__version__}"
    )

    results = []
    for B in batch_sizes:
        repeats = args.repeats or (5 if B >= 256 else 3)
        results.append(measure(B, repeats, X, y, Xt, yt))

    check = gradient_check(X, y)
    print(
        f"gradient sanity (batch {check['batch']}): worst relative error "
        f"{check['worst_rel_error']:.2e} (tolerance {check['rtol']:.0e}), cost "
        f"{check['cost_gpunet']:.6f} vs {check['cost_torch']:.6f}: "
        f"{'OK' if check['ok'] else 'MISMATCH'}"
    )

    lines = [
        "| batch | gpunet s/epoch (min-max) | torch s/epoch (min-max) | ratio | target | met |",
        "|---:|---:|---:|---:|---:|:---:|",
    ]
    for res in results:
        g, t = res["gpunet_seconds"], res["torch_seconds"]
        target = res["target_ratio"]
        met = "-" if target is None else ("yes" if res["meets_target"] else "no")
        lines.append(
            f"| {res['batch_size']} | {g['median']:.3f} ({g['min']:.3f}-{g['max']:.3f}) "
            f"| {t['median']:.3f} ({t['min']:.3f}-{t['max']:.3f}) | {res['ratio']:.2f} "
            f"| {'-' if target is None else f'<= {target}'} | {met} |"
        )
    table = "\n".join(lines)
    print()
    print(table)
    print(
        "(gpunet: wall time of net.fit(epochs=1); in-loop ratios: "
        + ", ".join(f"B={r['batch_size']} {r['ratio_fit_loop']:.2f}" for r in results)
        + "; median of per-repeat paired ratios: "
        + ", ".join(f"B={r['batch_size']} {r['paired_ratio_median']:.2f}" for r in results)
        + ")"
    )

    if args.json is not None:
        record = {
            "benchmark": "epoch_vs_torch",
            "command": " ".join(
                (
                    [f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])}"]
                    if os.environ.get("PYTHONPATH")
                    else []
                )
                + [shlex.join([Path(sys.executable).name, *sys.argv])]
            ),
            "argv": sys.argv,
            "python": sys.executable,
            "cwd": os.getcwd(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "threads": {
                "numpy_blas": threads,
                "torch": torch.get_num_threads(),
                "torch_interop": torch.get_num_interop_threads(),
            },
            "versions": {
                "python": platform.python_version(),
                "numpy": np.__version__,
                "torch": torch.__version__,
                "scipy": scipy.__version__,
                "gpunet": gpunet.__version__,
            },
            "numpy_blas": blas,
            "numpy_show_config": np.show_config(mode="dicts"),
            "torch_config": torch.__config__.show(),
            "gpunet_source": gpunet_source(),
            "setup": {
                "sizes": SIZES,
                "activations": ACTIVATIONS,
                "dtype": "float32",
                "init": "he (gpunet, seed 0; copied into torch)",
                "lr": LR,
                "optimizer": "plain SGD, no momentum (torch.optim.SGD defaults otherwise)",
                "cost": "log_likelihood / nn.CrossEntropyLoss (mean)",
                "examples": args.examples,
                "data_seed": DATA_SEED,
                "gpunet_timing": "wall time of net.fit(epochs=1, shuffle=True, progress=False)",
                "torch_timing": "randperm + per batch gather/zero_grad/forward/loss/backward/"
                "step/loss sum, one host read per epoch",
            },
            "results": results,
            "gradient_check": check,
            "table_markdown": table,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        # the interpreter, the working directory and the build configurations hold paths:
        # relative to the checkout (the working directory) in the record, or their last part
        args.json.write_text(json.dumps(portable(record), indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
