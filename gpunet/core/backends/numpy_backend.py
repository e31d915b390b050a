"""The NumPy backend: the generic stages on the CPU, GEMMs through NumPy's BLAS."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy
import scipy
import scipy.special

from .base import Array, Backend


class NumpyBackend(Backend):
    """Runs everywhere; the reference the CuPy backend is tested against."""

    name = "numpy"
    xp = numpy
    special = scipy.special

    def gather_rows(self, source: Array, indices: Array, out: Array) -> Array:
        # mode="clip" (the indices are in range: a permutation): NumPy's default "raise"
        # gathers into a temporary and copies that again (bench/results/profile)
        return numpy.take(source, indices, axis=0, out=out, mode="clip")

    def asarray(self, x: Any, dtype: Any = None) -> Array:
        if type(x).__module__.startswith("cupy"):
            # NumPy would say "implicit conversion ... not allowed", naming no remedy
            raise TypeError(
                "the array is on the GPU (CuPy) and this network runs on numpy: "
                "pass .get() of it, or build the network with backend='cupy'"
            )
        return numpy.asarray(x, dtype=dtype)

    def to_numpy(self, x):
        return numpy.asarray(x)

    def describe(self) -> dict[str, str]:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return {
            "backend": self.name,
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
            "blas": f"{blas.get('name', '?')} {blas.get('version', '')}".strip(),
            "cpu": cpu_model(),
            "threads": str(os.cpu_count()),
        }


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
