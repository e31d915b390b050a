"""End-to-end what-ifs: gpunet's epoch with alternatives for some calls, interleaved with torch.

Each variant is gpunet's network on a NumPy backend with alternatives switched on (no gpunet
file edited):
  sgd   plain SGD as one saxpy over the flat buffer, in NumPy's own OpenBLAS (through ctypes)
  rows  workspaces stored examples-as-rows (m, n) and exposed as (n, m) views; a GEMM into
        such a view computes out.T = b.T @ a.T (torch's orientation for the big GEMMs)
The gradients of each variant are checked against the baseline's first. The earlier
what-ifs in whatif.txt, the gather with mode='clip' (take) and BP3 as a GEMV (bgrad), are
what the NumPy backend does now. Run from the checkout (the output kept in
bench/results/profile):

    PYTHONPATH=. python bench/profile/whatif.py > bench/results/profile/whatif.txt
"""

from __future__ import annotations

import ctypes
import functools
import gc
import statistics
from typing import Any

import numpy as np
import torch

import gpunet
from bench.epoch_vs_torch import TorchTrainer, gpunet_epoch, make_data, make_gpunet, make_torch
from bench.profile.common import parser
from gpunet.core.backends import NumpyBackend
from gpunet.core.network import Workspace
from gpunet.core.optimizers import SGDStep
from gpunet.tools.bench import blas_threads
from gpunet.tools.bench.machine import openblas

VARIANTS = {
    "baseline": frozenset(),
    "+sgd(npblas)": frozenset({"sgd"}),
    "+rows": frozenset({"rows"}),
    "sgd+rows": frozenset({"sgd", "rows"}),
}


def numpy_saxpy() -> Any:
    """cblas_saxpy(n, alpha, x, incx, y, incy) of NumPy's bundled OpenBLAS: y += alpha x."""
    found = openblas()
    if found is None:
        raise SystemExit("NumPy's BLAS is not its bundled OpenBLAS: no saxpy to call")
    lib, prefix, suffix = found
    saxpy = getattr(lib, f"{prefix.replace('openblas', 'cblas')}saxpy{suffix}")
    integer = ctypes.c_int64 if suffix == "64_" else ctypes.c_int  # the ILP64 build
    saxpy.argtypes = [integer, ctypes.c_float, ctypes.c_void_p, integer, ctypes.c_void_p, integer]
    saxpy.restype = None
    return saxpy


class WhatIf(NumpyBackend):
    """NumPy's backend with the `alternatives` (see the module's docstring) switched on."""

    def __init__(self, alternatives: frozenset[str]) -> None:
        super().__init__()
        self.alternatives = alternatives
        self.saxpy = numpy_saxpy() if "sgd" in alternatives else None

    def sgd_update(self, params: Any, grads: Any, velocity: Any, rule: SGDStep) -> None:
        plain = velocity is None and not rule.weight_decay
        if self.saxpy and plain and params.dtype == np.float32:
            self.saxpy(params.size, -rule.lr, grads.ctypes.data, 1, params.ctypes.data, 1)
            return
        super().sgd_update(params, grads, velocity, rule)

    def matmul(self, a: Any, b: Any, out: Any) -> Any:
        if "rows" in self.alternatives and out.T.flags.c_contiguous and not out.flags.c_contiguous:
            np.matmul(b.T, a.T, out=out.T)
            return out
        return super().matmul(a, b, out)


class RowWorkspace(Workspace):
    """A Workspace whose (n, m) buffers are views of (m, n) arrays: examples as rows."""

    def __init__(self, net: gpunet.Network, m: int) -> None:
        dtype, last = net.dtype, len(net.activations) - 1
        self.x = np.empty((m, net.sizes[0]), dtype)
        self.y = np.empty((m, net.sizes[-1]), dtype)
        self.weighted_input, self.activation, self.delta = [], [], []
        for i, (n, g) in enumerate(zip(net.sizes[1:], net.activations)):
            z = np.empty((m, n), dtype).T
            self.weighted_input.append(z)
            shares = g.derivative_from_output and i != last  # as Workspace does
            self.activation.append(z if shares else np.empty((m, n), dtype).T)
            self.delta.append(np.empty((m, n), dtype).T)


def make_variant(alternatives: frozenset[str]) -> gpunet.Network:
    net = make_gpunet(WhatIf(alternatives))
    if "rows" in alternatives:
        net.workspace = functools.cache(functools.partial(RowWorkspace, net))
    return net


def check_gradients(X: np.ndarray, y: np.ndarray) -> None:
    """Each variant's gradients on one batch, against the baseline's."""
    Xb, yb = X[:256], y[:256]
    reference = make_gpunet().gradients(Xb, yb, cost="log_likelihood")
    for name, alternatives in VARIANTS.items():
        grads = make_variant(alternatives).gradients(Xb, yb, cost="log_likelihood")
        error = max(
            float(np.abs(ours - theirs).max() / np.abs(theirs).max())
            for ours, theirs in zip(grads[0] + grads[1], reference[0] + reference[1])
        )
        print(f"  grads {name:13s} max rel diff vs baseline {error:.1e}")


def run(X: np.ndarray, y: np.ndarray, batch_size: int, rounds: int) -> None:
    """Every variant and torch, an epoch each per round, the order flipped every round."""
    nets = {name: make_variant(alternatives) for name, alternatives in VARIANTS.items()}
    trainer = TorchTrainer(make_torch(make_gpunet()))
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    loop: dict[str, list[float]] = {name: [] for name in nets}
    wall: dict[str, list[float]] = {name: [] for name in nets}
    torch_seconds = []
    for net in nets.values():
        gpunet_epoch(net, X, y, batch_size, 0)
    trainer.epoch(Xt, yt, batch_size)
    for r in range(rounds):
        for name in list(nets) if r % 2 == 0 else reversed(nets):
            gc.collect()
            seconds, in_loop, _ = gpunet_epoch(nets[name], X, y, batch_size, r + 1)
            wall[name].append(seconds)
            loop[name].append(in_loop)
        gc.collect()
        torch_seconds.append(trainer.epoch(Xt, yt, batch_size)[0])
    median = statistics.median(torch_seconds)
    base = statistics.median(loop["baseline"])
    print(
        f"\n=== B={batch_size}, {rounds} interleaved rounds; torch median {median:.3f} s "
        f"(min {min(torch_seconds):.3f})"
    )
    heads = ("loop med", "loop min", "wall med", "vs base", "ratio(wall)", "ratio(loop)")
    print(f"  {'variant':13s} " + " ".join(f"{h:>{max(9, len(h))}s}" for h in heads))
    for name in nets:
        in_loop, seconds = statistics.median(loop[name]), statistics.median(wall[name])
        print(
            f"  {name:13s} {in_loop:9.3f} {min(loop[name]):9.3f} {seconds:9.3f} "
            f"{100 * (in_loop / base - 1):+8.1f}% {seconds / median:11.2f} {in_loop / median:11.2f}"
        )


def main() -> None:
    options = parser(__doc__, batch_sizes=(1024, 64))
    options.add_argument("--rounds", type=int, help="per batch size (default 7 at B >= 256, 5)")
    args = options.parse_args()
    torch.set_num_threads(blas_threads())  # as in the benchmark: NumPy's BLAS threads
    print(f"numpy BLAS threads: {blas_threads()}")
    X, y = make_data(args.examples)
    check_gradients(X, y)
    for batch_size in args.batch_sizes:
        run(X, y, batch_size, args.rounds or (7 if batch_size >= 256 else 5))


if __name__ == "__main__":
    main()
