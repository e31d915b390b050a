"""Training and inference throughput across batch sizes, gpunet beside its peers.

`run` measures every (shape, mode, implementation, batch size) cell: warm-up steps,
then `repeats` timed runs of enough steps to last `min_seconds` each, rotating among
several index batches so that caches do not flatter small sizes, with the device
synchronised inside the timed region. Each cell records every run's seconds per step,
their median, their spread (the range over the median, `range_over_median`),
samples/s, achieved FLOP/s (2·m·n_in·n_out per GEMM), the fraction of the GEMM-only
ceiling measured in the same run, and its `trust`: "ok", or the reasons its numbers are
not to be believed (trust.py). A cell too large for memory, or whose estimated time is
over the budget, is recorded as skipped with its reason; a peer that cannot run here is
recorded as absent.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...core.backends import select_backend
from ...core.network import Network
from ...core.parameters import DTYPES
from . import trust
from .gradient_timing import time_gradients
from .machine import environment, memory_available, release_memory, same_footing
from .peers import (
    PeerUnavailableError,
    Pool,
    Runner,
    gemm_runner,
    gpunet_runner,
    loop_runner,
    step_gemms,
    torch_runner,
)


@dataclass(frozen=True)
class Shape:
    """A named network for the benchmark; its cost is the output's natural one."""

    sizes: list[int]
    activations: list[str]


SHAPES: dict[str, Shape] = {
    "nielsen": Shape([784, 30, 10], ["sigmoid"] * 2),
    "mnist-mlp": Shape([784, 256, 256, 10], ["relu", "relu", "softmax"]),
    "wide": Shape([1024, 4096, 4096, 1024], ["relu"] * 3),
    "narrow-deep": Shape([784] + [64] * 8 + [10], ["relu"] * 8 + ["softmax"]),
}
BATCH_SIZES = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536)
MODES = ("train", "infer")
PEERS = ("torch", "loop", "numeric")
BENCH_DTYPES = (*DTYPES, "tf32")
LR = 0.001  # small enough that thousands of steps on random data stay finite (wide too)
INDEX_BATCHES = 8  # index batches rotated through, each a fresh draw from the pool
MIN_POOL_ROWS = 8192  # examples to draw batches from, at least (2 batches' worth above)
WARMUP_STEPS = 3


# --- measuring one cell ----------------------------------------------------------------


def time_steps(
    step: Callable[[Any], None],
    batches: Sequence[Any],
    sync: Callable[[], None],
    *,
    repeats: int,
    min_seconds: float,
) -> list[float]:
    """Seconds per step for each of `repeats` timed runs, after warm-up steps.

    Each run takes as many steps as last `min_seconds` (at least one), cycling through
    `batches`; the device is synchronised before the clock starts and before it stops.
    """
    for i in range(WARMUP_STEPS):
        step(batches[i % len(batches)])
    sync()
    started = time.perf_counter()
    step(batches[0])
    sync()
    estimate = time.perf_counter() - started
    steps = max(1, math.ceil(min_seconds / max(estimate, 1e-9)))
    seconds = []
    for _ in range(repeats):
        sync()
        started = time.perf_counter()
        for i in range(steps):
            step(batches[i % len(batches)])
        sync()
        seconds.append((time.perf_counter() - started) / steps)
    return seconds


def make_pool(shape: Shape, rows: int, dtype: str, seed: int = 0) -> Pool:
    """Random inputs in [0, 1) with class labels (one-hot targets), or real targets."""
    rng = np.random.default_rng(seed)
    host = np.float32 if dtype == "tf32" else np.dtype(dtype).type
    x = rng.random((rows, shape.sizes[0]), dtype=np.float64).astype(host)
    n_out = shape.sizes[-1]
    if shape.activations[-1] in ("softmax", "sigmoid"):
        labels = rng.integers(0, n_out, rows)
        y = np.zeros((rows, n_out), host)
        y[np.arange(rows), labels] = 1
        return Pool(x, y, labels)
    return Pool(x, rng.random((rows, n_out)).astype(host), None)


def pool_rows(batch_size: int) -> int:
    return max(2 * batch_size, MIN_POOL_ROWS)


def cell_bytes(shape: Shape, batch_size: int, dtype: str) -> int:
    """Memory a cell needs, roughly: the pool, the activations, deltas and parameters."""
    item = 8 if dtype == "float64" else 4
    sizes = shape.sizes
    params = sum(n * k + n for n, k in zip(sizes[1:], sizes[:-1]))
    pool = pool_rows(batch_size) * (sizes[0] + sizes[-1])
    activations = 3 * batch_size * sum(sizes)  # Z, A and delta per layer, x and y
    return item * (pool + activations + 4 * params)


def gemm_flops(sizes: list[int], batch_size: int, mode: str) -> int:
    """2·rows·inner·columns summed over the step's GEMMs."""
    return sum(2 * a * b * c for a, b, c in step_gemms(sizes, batch_size, mode))


# --- the sweep --------------------------------------------------------------------------


@dataclass
class Settings:
    backend: str = "auto"
    shapes: tuple[str, ...] = tuple(SHAPES)
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    dtype: str = "float32"
    peers: tuple[str, ...] = PEERS
    modes: tuple[str, ...] = MODES
    repeats: int = 5
    min_seconds: float = 0.1  # per timed run
    max_seconds: float = 20.0  # per cell, estimated before it starts

    def check(self) -> None:
        """Raise a ValueError naming the first bad setting."""
        for name, given, known in (
            ("shape", self.shapes, SHAPES),
            ("peer", self.peers, PEERS),
            ("mode", self.modes, MODES),
        ):
            unknown = [item for item in given if item not in known]
            if unknown:
                raise ValueError(
                    f"unknown {name} {unknown[0]!r}; expected one of {', '.join(known)}"
                )
        if not self.shapes or not self.modes:
            raise ValueError("at least one shape and one mode are needed")
        if not self.batch_sizes or any(
            isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1
            for b in self.batch_sizes
        ):
            raise ValueError(f"batch sizes must be positive integers, got {list(self.batch_sizes)}")
        if self.dtype not in BENCH_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(BENCH_DTYPES)}, got {self.dtype!r}")
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, int) or self.repeats < 1:
            raise ValueError(f"repeats must be a positive integer, got {self.repeats!r}")
        for name in ("min_seconds", "max_seconds"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


IMPLEMENTATIONS = ("gemm", "gpunet", "torch", "torch-graphs", "loop")


def implementations(peers: Sequence[str], backend_name: str) -> list[str]:
    """The ceiling, gpunet, then the peers asked for (CUDA graphs only on the GPU)."""
    chosen = ["gemm", "gpunet"]
    if "torch" in peers:
        chosen += ["torch", "torch-graphs"] if backend_name == "cupy" else ["torch"]
    if "loop" in peers:
        chosen.append("loop")
    return chosen


def implementation_name(impl: str, backend_name: str) -> str:
    """'gpunet-numpy', 'torch-cpu', 'torch-cuda-graphs': what ran, and on which device."""
    if impl.startswith("torch"):
        device = "cuda" if backend_name == "cupy" else "cpu"
        return impl.replace("torch", f"torch-{device}")
    return f"{impl}-{backend_name}"


def make_runner(impl: str, shape: Shape, pool: Pool, backend: Any, dtype: str) -> Runner:
    """A fresh network of `shape` (seed 0) and the runner of `impl` over it."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {impl!r}; expected one of {IMPLEMENTATIONS}")
    tf32 = dtype == "tf32"  # a cuBLAS mode (see same_footing) on float32 arrays
    net = Network(
        shape.sizes, shape.activations, backend=backend, dtype="float32" if tf32 else dtype, seed=0
    )
    if impl == "gemm":
        return gemm_runner(net)
    cost = net.cost_function(None)
    if impl.startswith("torch"):
        return torch_runner(net, pool, cost, LR, graphs=impl == "torch-graphs")
    return (gpunet_runner if impl == "gpunet" else loop_runner)(net, pool, cost, LR)


def run(
    settings: Settings,
    *,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Measure every cell of `settings`; return the record (environment, settings, cells).

    `progress(label, total)` is called as each cell starts, with the number of cells.
    """
    settings.check()
    backend, reason = select_backend(settings.backend)
    if settings.dtype == "tf32" and backend.name != "cupy":
        raise ValueError("dtype 'tf32' needs the cupy backend (TF32 is a tensor-core mode)")
    record: dict[str, Any] = {
        "environment": environment(backend.name),
        "backend_reason": reason,
        "settings": {**vars(settings), "lr": LR, "warmup_steps": WARMUP_STEPS},
        "trust_limits": trust.LIMITS,
        "cells": [],
    }
    total = len(settings.shapes) * len(settings.modes) * len(settings.batch_sizes)
    total *= len(implementations(settings.peers, backend.name))
    with same_footing(backend.name, settings.dtype == "tf32"):
        for shape_name in settings.shapes:
            _sweep_shape(settings, shape_name, backend, record["cells"], progress, total)
    if "numeric" in settings.peers:
        record["numeric_gradient"] = numeric_gradient_cost(backend.name)
    return record


def _sweep_shape(
    settings: Settings,
    shape_name: str,
    backend: Any,
    cells: list[dict[str, Any]],
    progress: Callable[[str, int], None] | None,
    total: int,
) -> None:
    shape = SHAPES[shape_name]
    largest = max(settings.batch_sizes)
    pool = make_pool(shape, pool_rows(largest), settings.dtype)
    for impl in implementations(settings.peers, backend.name):
        name = implementation_name(impl, backend.name)
        try:
            runner: Runner | None = make_runner(impl, shape, pool, backend, settings.dtype)
        except PeerUnavailableError as why:
            for mode in settings.modes:
                for batch_size in settings.batch_sizes:
                    cells.append(_cell(shape_name, mode, name, batch_size, "absent", str(why)))
                    if progress:
                        progress(f"{shape_name} {mode} {name} {batch_size}: absent", total)
            continue
        for mode in settings.modes:
            previous: tuple[int, float] | None = None
            for batch_size in sorted(settings.batch_sizes):
                cell = _cell(shape_name, mode, name, batch_size, "ok", None)
                cells.append(cell)
                if progress:
                    progress(f"{shape_name} {mode} {name} {batch_size}", total)
                release_memory(backend.name)
                memory = memory_available(backend.name)
                why_not = _over_budget(settings, shape, batch_size, previous, memory)
                if why_not:
                    cell.update(status="skipped", reason=why_not)
                    continue
                # every cell from the same initial parameters, and every implementation on
                # the same batches: no cell inherits the drift of the ones before it
                runner = runner or make_runner(impl, shape, pool, backend, settings.dtype)
                rng = np.random.default_rng(batch_size)
                rows = pool.x.shape[0]
                batches = [
                    runner.indices(rng.permutation(rows)[:batch_size]) for _ in range(INDEX_BATCHES)
                ]
                seconds = time_steps(
                    runner.train if mode == "train" else runner.infer,
                    batches,
                    runner.sync,
                    repeats=settings.repeats,
                    min_seconds=settings.min_seconds,
                )
                timed(cell, seconds, gemm_flops(shape.sizes, batch_size, mode))
                cell["finite"] = all_finite(runner.params)
                previous = (batch_size, cell["median_seconds"])
                runner = None
    relate(cells, shape_name, backend.name)


def _over_budget(
    settings: Settings,
    shape: Shape,
    batch_size: int,
    previous: tuple[int, float] | None,
    memory: int,
) -> str | None:
    """Why a cell is skipped (memory, or its time estimated from the last cell), or None."""
    needed = cell_bytes(shape, batch_size, settings.dtype)
    if needed > memory:
        return f"needs ~{needed / 2**30:.1f} GiB"
    if previous is None:
        return None
    # time grows at most linearly in the batch: a bound from the last cell
    estimate = previous[1] * batch_size / previous[0]
    planned = estimate * (WARMUP_STEPS + 1) + settings.repeats * max(estimate, settings.min_seconds)
    if planned > settings.max_seconds:
        return (
            f"estimated {planned:.0f} s over the {settings.max_seconds:g} s budget "
            f"({estimate * 1e3:.3g} ms/step)"
        )
    return None


def all_finite(params: Any) -> bool | None:
    """Whether a runner's parameters are all finite after its cell (None: it keeps none)."""
    if params is None:
        return None
    if isinstance(params, (list, tuple)):
        return all(all_finite(p) for p in params)
    if hasattr(params, "detach"):  # a torch tensor
        return bool(params.detach().isfinite().all())
    return bool(abs(params).max() < float("inf"))  # NaN compares false too


def _cell(shape: str, mode: str, impl: str, batch_size: int, status: str, reason: str | None):
    return {
        "shape": shape,
        "mode": mode,
        "impl": impl,
        "batch_size": batch_size,
        "status": status,
        "reason": reason,
    }


def timed(cell: dict[str, Any], seconds: list[float], flops: int) -> None:
    """Record a cell's runs (seconds per step each) and what follows from them."""
    median = statistics.median(seconds)
    cell.update(
        seconds_per_step=seconds,
        median_seconds=median,
        min_seconds=min(seconds),
        max_seconds=max(seconds),
        range_over_median=trust.spread(seconds),
        samples_per_second=cell["batch_size"] / median,
        flops_per_step=flops,
        tflops=flops / median / 1e12,
    )


def relate(cells: list[dict[str, Any]], shape_name: str, backend_name: str) -> None:
    """Fraction of the GEMM-only ceiling, the speed relative to PyTorch eager, and then the
    trust of each measured cell of `shape_name`."""
    measured = {
        (c["mode"], c["impl"], c["batch_size"]): c
        for c in cells
        if c["shape"] == shape_name and c["status"] == "ok"
    }
    torch_name = "torch-cuda" if backend_name == "cupy" else "torch-cpu"
    for (mode, _, batch_size), cell in measured.items():
        ceiling = measured.get((mode, f"gemm-{backend_name}", batch_size))
        torch_eager = measured.get((mode, torch_name, batch_size))
        if ceiling is not None:
            cell["fraction_of_gemm_ceiling"] = ceiling["median_seconds"] / cell["median_seconds"]
        if torch_eager is not None:
            cell["speed_vs_torch"] = torch_eager["median_seconds"] / cell["median_seconds"]
    for cell in measured.values():
        cell["trust"] = trust.trust(cell)


def numeric_gradient_cost(
    backend_name: str, sizes: Sequence[int] = (64, 16, 10), examples: int = 10
) -> dict[str, Any]:
    """One backprop against the finite differences of `gradcheck`, on a small net.

    The notes' point: backprop costs about one forward and one backward pass; the numeric
    gradient costs two forward passes per parameter.
    """
    (timing,) = time_gradients(
        [list(sizes)], "sigmoid", backend=backend_name, samples=examples, repeats=5
    )
    return {**dataclasses.asdict(timing), "examples": examples, "ratio": timing.ratio}
