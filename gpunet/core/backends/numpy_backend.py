"""The NumPy backend: the generic stages on the CPU, GEMMs through NumPy's BLAS."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy
import scipy
import scipy.special

from ..activations import Activation
from .base import Array, Backend

# elements per row of the zeros ReLU is taken against (see `relu`)
ZEROS_ROW = 8192
# below this many elements the scalar form's dispatch is cheaper than the reshapes
SMALL_RELU = 4096
# from this batch size on, hidden layers keep one contiguous column per example (see
# `batch_order`)
COLUMNS_FROM = 256


class NumpyBackend(Backend):
    """Runs everywhere; the reference the CuPy backend is tested against."""

    name = "numpy"
    xp = numpy
    special = scipy.special

    def __init__(self) -> None:
        super().__init__()
        self._zeros_row: dict[Any, Array] = {}

    def matmul(self, a: Array, b: Array, out: Array) -> Array:
        if a.shape[-1] == 1 and b.ndim == 2:
            # an outer product (BP4 at m = 1): NumPy's matmul takes a loop 4x slower than
            # the broadcast product for an inner dimension of 1 (docs/performance.md)
            return numpy.multiply(a, b, out=out)
        return numpy.matmul(a, b, out=out)

    def batch_order(self, m: int, hidden: bool) -> str:
        # with contiguous columns OpenBLAS takes Z^l = W^l A^{l-1} as Z^T = A^T W^T: faster from
        # batch 256 up, most for a layer narrower than its input, slower below
        # (docs/performance.md, item 10); the output layer stays in rows: its column
        # reductions (softmax, the costs) are faster across contiguous rows of m entries
        return "F" if hidden and m >= COLUMNS_FROM else "C"

    def bias_activation(
        self, activation: Activation, weighted_input: Array, bias: Array, out: Array
    ) -> Array:
        if activation.name != "relu":
            return super().bias_activation(activation, weighted_input, bias, out)
        weighted_input += bias[:, None]
        return self._relu(weighted_input, out)

    def _relu(self, z: Array, out: Array) -> Array:
        """A = max(Z, 0), NaN kept, as ReLU.forward, against a row of zeros."""
        # NumPy's maximum against the scalar 0 takes a loop several times slower than
        # against an array of zeros (docs/performance.md): the contiguous buffers are taken
        # as rows of ZEROS_ROW elements, each against one cached row of zeros
        same_order = (z.flags.c_contiguous and out.flags.c_contiguous) or (
            z.flags.f_contiguous and out.flags.f_contiguous
        )
        if z.size <= SMALL_RELU or not same_order:
            return numpy.maximum(z, 0.0, out=out)
        # order "A": in memory order, a view for either layout
        flat, flat_out = z.reshape(-1, order="A"), out.reshape(-1, order="A")
        width = min(ZEROS_ROW, flat.size)
        zeros = self._zeros_row.get(z.dtype)
        if zeros is None:
            zeros = self._zeros_row[z.dtype] = numpy.zeros(ZEROS_ROW, z.dtype)
        rows = flat.size // width * width
        numpy.maximum(
            flat[:rows].reshape(-1, width), zeros[:width], out=flat_out[:rows].reshape(-1, width)
        )
        if rows < flat.size:
            numpy.maximum(flat[rows:], zeros[: flat.size - rows], out=flat_out[rows:])
        return out

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
