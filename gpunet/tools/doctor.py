"""`gpunet doctor`: does the GPU path work here? Everything checked in under a minute.

The backend probe with each reason, the versions (CuPy, CUDA runtime and driver, NVRTC,
cuBLAS, NCCL), the kernel module compiled by CuPy's NVRTC cold and again from its disk
cache, one training step on CuPy against the same step on NumPy, a GEMM rate, and the
pool allocations of a warm training step (none expected). Without a usable GPU it says so
and checks what it can: the probe, and the NVRTC compile when CuPy and NVRTC are there.
"""

from __future__ import annotations

import platform
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import __version__
from ..core.backends import Backend, NumpyBackend, offline, probe, select_backend
from ..core.network import Network
from ..core.optimizers import SGD

# a training step's parameters after one step, normwise (tests/conftest.py's PARITY_RTOL)
STEP_TOLERANCE = {"float64": 1e-10, "float32": 1e-4}
OFFLINE_ARCH = "90"  # what a CPU-only machine compiles for (an H100/H200)
EXIT = {"ok": 0, "failed": 1, "no_gpu": 5}  # 5 as in FAULTS: the backend cannot run here


def _timed(section: Callable[[], dict]) -> dict:
    """section() with its seconds, or the error it raised (the other sections still run)."""
    start = time.perf_counter()
    try:
        result = section()
    except Exception as error:
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def versions(cupy: Any) -> dict[str, str]:
    """CuPy's, the CUDA runtime's and driver's, NVRTC's, cuBLAS's and NCCL's versions."""
    runtime = cupy.cuda.runtime

    def ask(question: Callable[[], Any]) -> str:
        try:
            return str(question())
        except Exception as error:
            return f"unknown ({type(error).__name__})"

    def cublas() -> int:
        from cupy_backends.cuda.libs import cublas as library

        return library.getVersion(cupy.cuda.device.get_cublas_handle())

    nccl = probe.check_nccl(cupy)
    return {
        "cupy": cupy.__version__,
        "cuda_runtime": ask(runtime.runtimeGetVersion),
        "driver": ask(runtime.driverGetVersion),
        "nvrtc": ask(lambda: ".".join(map(str, cupy.cuda.nvrtc.getVersion()))),
        "cublas": ask(cublas),
        "nccl": nccl.detail if nccl.problem is None else nccl.problem,
    }


def compile_kernels(arch: str) -> dict:
    """The kernel module compiled for `arch` by CuPy's NVRTC into an empty disk cache, then
    again from that cache (what every later process does)."""
    with tempfile.TemporaryDirectory() as cache:
        cold = offline.compile_module(arch, cache)
        cached = offline.compile_module(arch, cache)
    registers = cold.registers()
    heaviest = max(registers, key=registers.get)
    return {
        "ok": cached.from_cache and cached.lowered == cold.lowered,
        "arch": f"sm_{arch}",
        "kernels": len(cold.lowered),
        "cold_seconds": round(cold.seconds, 3),
        "cached_seconds": round(cached.seconds, 3),
        "from_cache": cached.from_cache,
        "most_registers": f"{heaviest}: {registers[heaviest]}",
    }


def step_parity(device: Backend, dtype: str, batch: int = 64) -> dict:
    """One SGD step on `device` against the same step on NumPy: the largest difference of
    the parameters, relative to their largest entry, within STEP_TOLERANCE[dtype]."""
    rng = np.random.default_rng(0)
    sizes, activations = [64, 32, 10], ["relu", "softmax"]
    X = rng.standard_normal((batch, sizes[0]))
    targets = np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=batch)]
    params = []
    for backend in (NumpyBackend(), device):
        net = Network(sizes, activations, backend=backend, dtype=dtype, seed=0)
        ws = net.workspace(batch)
        ws.x[...] = backend.asarray(X, dtype=dtype)
        ws.y[...] = backend.asarray(targets, dtype=dtype)
        net.backpropagate(ws.x, ws.y, ws, net.cost_function(None))
        SGD(0.1, momentum=0.9).step(net.backend, net.params, net.grads, net.n_weights)
        params.append(backend.to_numpy(net.params).astype(np.float64))
    reference, mine = params
    difference = float(np.abs(mine - reference).max() / np.abs(reference).max())
    return {
        "ok": difference <= STEP_TOLERANCE[dtype],
        "relative_difference": difference,
        "tolerance": STEP_TOLERANCE[dtype],
    }


def gemm_rate(xp: Any, synchronize: Callable[[], None], dtype: str, n: int = 2048) -> dict:
    """GFLOP/s of an n x n x n matrix product (2 n^3 flops), best of three after a warm-up."""
    a = xp.asarray(np.random.default_rng(0).standard_normal((n, n)), dtype=dtype)
    out = xp.empty((n, n), dtype=dtype)
    xp.matmul(a, a, out=out)
    synchronize()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        xp.matmul(a, a, out=out)
        synchronize()
        best = min(best, time.perf_counter() - start)
    return {"ok": True, "n": n, "gflops": round(2 * n**3 / best / 1e9, 1)}


def allocations_per_step(cupy: Any, sizes: list[int], activations: list[str]) -> dict:
    """Pool allocations per training step after three warm-up steps (0 expected)."""

    class Count(cupy.cuda.MemoryHook):
        name = "gpunet_doctor_count"

        def __init__(self) -> None:
            super().__init__()
            self.mallocs = 0

        def malloc_preprocess(self, **kwargs: Any) -> None:
            self.mallocs += 1

    batch = 64
    net = Network(sizes, activations, backend="cupy", seed=0)
    ws = net.workspace(batch)
    ws.x[...] = cupy.random.standard_normal(ws.x.shape)
    ws.y[...] = 0.0
    ws.y[:, 0] = 1.0
    cost, optimizer = net.cost_function(None), SGD(0.1, momentum=0.9)

    def step() -> None:
        net.backpropagate(ws.x, ws.y, ws, cost)
        optimizer.step(net.backend, net.params, net.grads, net.n_weights)

    for _ in range(3):
        step()
    steps = 10
    with Count() as hook:
        for _ in range(steps):
            step()
    return {"ok": hook.mallocs == 0, "per_step": hook.mallocs / steps}


def verdict(sections: dict[str, dict], why_not: str | None) -> tuple[str, str]:
    """The report's status and its one-line summary."""
    failed = [name for name, section in sections.items() if not section.get("ok", False)]
    if failed:
        return "failed", f"a check failed: {', '.join(failed)}"
    if why_not is not None:
        return "no_gpu", f"no usable GPU: {why_not}"
    return "ok", "the GPU path works"


def doctor(progress: Callable[[str], None] | None = None) -> dict:
    """Every check of the GPU path that this machine allows; "status" is "ok", "failed"
    (something that ran went wrong) or "no_gpu" (nothing failed, but no usable GPU)."""
    say = progress or (lambda line: None)
    report: dict[str, Any] = {
        "gpunet": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
    }
    say("probing the GPU path")
    probe.cupy_unavailable.cache_clear()
    checks = probe.checks()
    cupy = probe.check_cupy()[1]
    if cupy is not None:
        checks.append(probe.check_nccl(cupy))
    report["probe"] = [
        {"name": c.name, "ok": c.problem is None, "detail": c.problem or c.detail} for c in checks
    ]
    why_not = probe.cupy_unavailable()
    report["backend"] = select_backend("auto")[1]
    sections: dict[str, dict] = {}
    if cupy is not None:
        report["versions"] = versions(cupy)
    nvrtc_ready = cupy is not None and all(
        c.problem is None for c in checks if c.name in ("cupy", "nvrtc", "headers")
    )
    if nvrtc_ready:
        arch = OFFLINE_ARCH if why_not else str(cupy.cuda.Device().compute_capability)
        say(f"compiling the kernels for sm_{arch} with CuPy's NVRTC")
        sections["kernels"] = _timed(lambda: compile_kernels(arch))
    if why_not is None:
        from ..core.backends import CupyBackend

        device = CupyBackend()
        report["device"] = device.describe()
        for dtype in ("float64", "float32"):
            say(f"one training step in {dtype} on CuPy and on NumPy")
            sections[f"step_{dtype}"] = _timed(lambda d=dtype: step_parity(device, d))
            say(f"a {dtype} GEMM")
            sync = cupy.cuda.Device().synchronize
            sections[f"gemm_{dtype}"] = _timed(lambda d=dtype, s=sync: gemm_rate(cupy, s, d))
        for label, sizes, activations in (
            ("allocations", [784, 256, 10], ["relu", "softmax"]),
            ("allocations_one_output", [784, 64, 1], ["relu", "sigmoid"]),
        ):
            say(f"pool allocations of a warm step ({sizes})")
            sections[label] = _timed(
                lambda s=sizes, a=activations: allocations_per_step(cupy, s, a)
            )
    report["checks"] = sections
    report["status"], report["summary"] = verdict(sections, why_not)
    return report


def text(report: dict) -> str:
    """The report for a person: one line per check."""
    lines = [
        f"gpunet {report['gpunet']} on Python {report['python']} ({report['platform']})",
        f"backend: {report['backend']}",
    ]
    for check in report["probe"]:
        lines.append(f"  {'ok ' if check['ok'] else 'NO '} {check['name']}: {check['detail']}")
    for key, value in report.get("versions", {}).items():
        lines.append(f"  {key}: {value}")
    for key, value in report.get("device", {}).items():
        lines.append(f"  device {key}: {value}")
    for name, section in report["checks"].items():
        shown = ", ".join(f"{k} {v}" for k, v in section.items() if k != "ok")
        lines.append(f"{'ok ' if section.get('ok') else 'NO '} {name}: {shown}")
    lines.append(f"{report['status']}: {report['summary']}")
    return "\n".join(lines)
