"""The CuPy backend: arrays on an NVIDIA GPU, GEMMs through cuBLAS, the elementwise
stages as fused CUDA kernels (kernels/*.cu, loaded by `kernels`, launched by `launches`).

Each override below only dispatches, as thinc's CupyOps does: a stage with a kernel calls
its one function in `launches.py` (checks, arguments and launch live there), anything
else (a new activation, an unfused cost) falls back to the generic stage of `base.py`.
The docstrings are those of `Backend`. This module imports without CuPy: CuPy is imported
in `CupyBackend.__init__` and when a kernel is first fetched.
"""

from __future__ import annotations

from types import ModuleType

import numpy

from ..activations import Activation
from ..optimizers import AdamStep, SGDStep
from . import launches
from .base import Array, Backend
from .kernels import ACTIVATION_IDS, DeviceLauncher, Launch
from .probe import cupy_unavailable

__all__ = ["CupyBackend", "cupy_unavailable"]


class CupyBackend(Backend):
    """The generic stages on the device, with kernels for the elementwise ones.

    `CupyBackend()` runs on the current CUDA device: construct it only after
    `cupy_unavailable()` is None. The arguments are the seam through which this class's
    own code runs elsewhere: `launcher` replaces the device launcher (a
    `kernels.Launch`, such as tests/test_kernels_host.py's host simulator, or a
    `DeviceLauncher(max_blocks=2)`), and `xp`/`special` the array modules (NumPy posing as
    CuPy there).
    """

    name = "cupy"

    def __init__(
        self,
        launcher: Launch | None = None,
        *,
        xp: ModuleType | None = None,
        special: ModuleType | None = None,
    ) -> None:
        super().__init__()
        if xp is None:
            import cupy

            xp = cupy
        if special is None:
            import cupyx.scipy.special

            special = cupyx.scipy.special
        self.xp = xp
        self.special = special
        self.launcher: Launch = DeviceLauncher() if launcher is None else launcher

    def to_numpy(self, x):
        return self.xp.asnumpy(x) if isinstance(x, self.xp.ndarray) else numpy.asarray(x)

    def describe(self) -> dict[str, str]:
        cupy = self.xp
        device = cupy.cuda.Device()
        properties = cupy.cuda.runtime.getDeviceProperties(device.id)
        return {
            "backend": self.name,
            "cupy": cupy.__version__,
            "numpy": numpy.__version__,
            "device": properties["name"].decode(),
            "driver": str(cupy.cuda.runtime.driverGetVersion()),
            "cuda_runtime": str(cupy.cuda.runtime.runtimeGetVersion()),
        }

    def matmul(self, a: Array, b: Array, out: Array) -> Array:
        if out.size == 1 and a.ndim == 2:  # CuPy's 1x1 product allocates on every call
            launches.row_dot(self.launcher, a, b.T if b.ndim == 2 else b[None, :], out.reshape(1))
            return out
        return super().matmul(a, b, out)

    def bias_activation(
        self, activation: Activation, weighted_input: Array, bias: Array, out: Array
    ) -> Array:
        if activation.name in launches.FORWARD_KERNELS:
            return launches.bias_activation(
                self.launcher, activation.name, weighted_input, bias, out
            )
        return super().bias_activation(activation, weighted_input, bias, out)

    def activation_delta(
        self,
        activation: Activation,
        grad_activation: Array,
        weighted_input: Array,
        activation_value: Array,
        out: Array,
    ) -> Array:
        if activation.name == "softmax":
            return launches.softmax_delta(self.launcher, grad_activation, activation_value, out)
        if activation.name in ACTIVATION_IDS:
            return launches.activation_delta(
                self.launcher,
                activation.name,
                grad_activation,
                weighted_input,
                activation_value,
                out,
            )
        return super().activation_delta(
            activation, grad_activation, weighted_input, activation_value, out
        )

    def output_minus_target(self, a: Array, y: Array, out: Array) -> Array:
        return launches.output_minus_target(self.launcher, a, y, out)

    def bias_gradient(self, delta: Array, out: Array) -> Array:
        # a GEMV through CuPy would take its allocating 1x1 path for a single-output layer
        ones = self.xp.broadcast_to(self._ones_like_row(delta), delta.shape)
        return launches.row_dot(self.launcher, delta, ones, out)

    def sgd_update(
        self, params: Array, grads: Array, velocity: Array | None, rule: SGDStep
    ) -> None:
        launches.sgd_update(self.launcher, params, grads, velocity, rule)

    def adam_update(
        self, params: Array, grads: Array, first_moment: Array, second_moment: Array, rule: AdamStep
    ) -> None:
        launches.adam_update(self.launcher, params, grads, first_moment, second_moment, rule)
