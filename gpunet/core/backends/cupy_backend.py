"""The CuPy backend: arrays on an NVIDIA GPU, GEMMs through cuBLAS, the elementwise
stages as fused CUDA kernels (kernels/*.cu, loaded by `kernels`).

Each overridden stage is one kernel launch where the generic version in `base.py` is
several ufunc passes over memory: bias + activation, delta = grad ⊙ g' (softmax's
Jacobian-vector product included), the fused output deltas, and the SGD and Adam steps
over the flat parameter buffer. The math is that of `activations.py`, `costs.py` and
`base.py`, term for term; anything without a kernel (a new activation, an unfused cost)
falls back to the generic stage. This module imports without CuPy: CuPy is imported in
`CupyBackend.__init__` and when a kernel is first fetched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy

from ..activations import Activation
from . import kernels
from .base import Array, Backend
from .kernels import (
    ACTIVATION_IDS,
    check_contiguous,
    check_dtype,
    check_shape,
    element_strides,
)


class CupyBackend(Backend):
    """The generic stages on the device, with kernels for the elementwise ones.

    Only construct it after `cupy_unavailable()` is None.
    """

    name = "cupy"

    def __init__(self) -> None:
        import cupy
        import cupyx.scipy.special

        device = cupy.cuda.Device()
        properties = cupy.cuda.runtime.getDeviceProperties(device.id)
        self._setup(
            cupy,
            cupyx.scipy.special,
            max_blocks=kernels.BLOCKS_PER_SM * int(properties["multiProcessorCount"]),
            launch=kernels.launch,
        )

    def _setup(
        self,
        xp: Any,
        special: Any,
        *,
        max_blocks: int,
        launch: Callable[[str, int, tuple], None],
    ) -> None:
        """Array modules, the grid cap and the launcher (a test swaps in a host simulator)."""
        super().__init__()
        self.xp = xp
        self.special = special
        self._max_blocks = max_blocks
        self._launch = launch

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

    # --- kernel launches --------------------------------------------------------------

    def _run(
        self, kernel: str, dtype: numpy.dtype, work: int, args: tuple, activation: str | None = None
    ) -> None:
        """Launch `kernel` over `work` items (elements, or columns for softmax)."""
        if work > 0:
            name = kernels.kernel_name(kernel, dtype, activation)
            self._launch(name, kernels.grid(work, self._max_blocks), args)

    @staticmethod
    def _matrix_shape(name: str, array: Array) -> tuple[int, int]:
        if array.ndim != 2:
            raise ValueError(f"{name} must be a 2-D (n, m) array, got shape {tuple(array.shape)}")
        return int(array.shape[0]), int(array.shape[1])

    # --- the equations' array stages -----------------------------------------------

    def bias_activation(
        self, activation: Activation, weighted_input: Array, bias: Array, out: Array
    ) -> Array:
        """Z^l += b^l, then A^l = g^l(Z^l) (out may be weighted_input itself)."""
        name = activation.name
        if name != "softmax" and name not in ACTIVATION_IDS:
            return super().bias_activation(activation, weighted_input, bias, out)
        dtype = check_dtype(weighted_input=weighted_input, bias=bias, out=out)
        check_contiguous(weighted_input=weighted_input, bias=bias, out=out)
        n, m = self._matrix_shape("weighted_input", weighted_input)
        check_shape((n, m), out=out)
        check_shape((n,), bias=bias)
        args = (weighted_input, bias, out, numpy.int64(n), numpy.int64(m))
        if name == "softmax":
            self._run("softmax_forward", dtype, m if n else 0, args)
        else:
            self._run("bias_activation", dtype, n * m, args, name)
        return out

    def activation_delta(
        self,
        activation: Activation,
        grad_activation: Array,
        weighted_input: Array,
        activation_value: Array,
        out: Array,
    ) -> Array:
        """BP1/BP2's product: delta = dC/dA ⊙ g'(Z) (a Jacobian-vector product for softmax)."""
        name = activation.name
        if name == "softmax":
            arrays = {"grad_activation": grad_activation, "activation_value": activation_value}
            dtype = check_dtype(**arrays, out=out)
            check_contiguous(**arrays, out=out)
            n, m = self._matrix_shape("grad_activation", grad_activation)
            check_shape((n, m), activation_value=activation_value, out=out)
            args = (grad_activation, activation_value, out, numpy.int64(n), numpy.int64(m))
            self._run("softmax_delta", dtype, m if n else 0, args)
            return out
        if name not in ACTIVATION_IDS:
            return super().activation_delta(
                activation, grad_activation, weighted_input, activation_value, out
            )
        arrays = {
            "grad_activation": grad_activation,
            "weighted_input": weighted_input,
            "activation_value": activation_value,
            "out": out,
        }
        dtype = check_dtype(**arrays)
        check_contiguous(**arrays)
        check_shape(tuple(grad_activation.shape), **arrays)
        size = int(grad_activation.size)
        args = (grad_activation, weighted_input, activation_value, out, numpy.int64(size))
        self._run("activation_delta", dtype, size, args, name)
        return out

    def output_minus_target(self, a: Array, y: Array, out: Array) -> Array:
        # y arrives as a transposed view of the (m, n) row-major target buffer: the
        # kernel reads it through its strides, so any layout works
        dtype = check_dtype(a=a, y=y, out=out)
        check_contiguous(a=a, out=out)
        n, m = self._matrix_shape("a", a)
        check_shape((n, m), y=y, out=out)
        y_row, y_col = element_strides("y", y)
        args = (
            a,
            y,
            numpy.int64(y_row),
            numpy.int64(y_col),
            out,
            numpy.int64(n),
            numpy.int64(m),
            dtype.type(1.0 / m) if m else dtype.type(0),
        )
        self._run("output_minus_target", dtype, n * m, args)
        return out

    # --- optimizer updates over the flat parameter buffer ---------------------------

    def sgd_update(
        self,
        params: Array,
        grads: Array,
        velocity: Array | None,
        lr: float,
        momentum: float,
        nesterov: bool,
        weight_decay: float,
        n_decayed: int,
    ) -> None:
        """p -= lr·(g + λp) with optional (Nesterov) momentum, as torch.optim.SGD does.

        Weight decay applies to the first n_decayed entries (the weights, not the
        biases), which makes weight_decay = λ/n Nielsen's L2 rule. One kernel launch;
        grads is left as it was (the generic version uses it as scratch).
        """
        arrays = {"params": params, "grads": grads}
        if velocity is not None:
            arrays["velocity"] = velocity
        dtype, size = _check_flat(arrays)
        scalar = dtype.type
        args = (
            params,
            grads,
            params if velocity is None else velocity,  # not read without momentum
            numpy.int64(size),
            numpy.int64(_decayed(n_decayed, size) if weight_decay else 0),
            scalar(lr),
            scalar(momentum),
            numpy.int32(velocity is not None),
            numpy.int32(bool(nesterov)),
            scalar(weight_decay),
        )
        self._run("sgd_update", dtype, size, args)

    def adam_update(
        self,
        params: Array,
        grads: Array,
        first_moment: Array,
        second_moment: Array,
        lr: float,
        beta1: float,
        beta2: float,
        eps: float,
        step: int,
        weight_decay: float,
        n_decayed: int,
    ) -> None:
        """Adam with bias correction and L2 decay on the weights, as torch.optim.Adam does.

        One kernel launch; the step's scalars are computed here in double precision,
        exactly as the generic version computes them.
        """
        arrays = {
            "params": params,
            "grads": grads,
            "first_moment": first_moment,
            "second_moment": second_moment,
        }
        dtype, size = _check_flat(arrays)
        scalar = dtype.type
        step_size = lr / (1.0 - beta1**step)
        inv_sqrt_bias2 = 1.0 / (1.0 - beta2**step) ** 0.5
        args = (
            params,
            grads,
            first_moment,
            second_moment,
            numpy.int64(size),
            numpy.int64(_decayed(n_decayed, size) if weight_decay else 0),
            scalar(beta1),
            scalar(1.0 - beta1),
            scalar(beta2),
            scalar(1.0 - beta2),
            scalar(eps),
            scalar(step_size),
            scalar(inv_sqrt_bias2),
            scalar(weight_decay),
        )
        self._run("adam_update", dtype, size, args)


def _check_flat(arrays: dict[str, Array]) -> tuple[numpy.dtype, int]:
    """Checks for the optimizer kernels: one dtype, C-contiguous, all of params' size."""
    dtype = check_dtype(**arrays)
    check_contiguous(**arrays)
    size = int(arrays["params"].size)
    check_shape((size,), **arrays)
    return dtype, size


def _decayed(n_decayed: int, size: int) -> int:
    if not 0 <= n_decayed <= size:
        raise ValueError(f"n_decayed must lie in [0, {size}], got {n_decayed}")
    return int(n_decayed)


def cupy_unavailable() -> str | None:
    """None when CuPy can use a GPU here, else one line saying why not."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install 'gpunet[cuda12x]' or 'gpunet[cuda13x]')"
    except Exception as error:  # a broken CUDA install can fail at import with anything
        return f"CuPy failed to import: {error}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDARuntimeError without a driver, or no device node
        return f"CuPy finds no usable CUDA device: {error}"
    if count == 0:
        return "CuPy finds no CUDA device"
    return None
