"""The backend interface: every array stage of a training step, written once over `xp`.

A backend is an array module (`xp`: NumPy or CuPy) plus the elementwise stages of
forward and backward propagation. The generic versions below are plain ufunc calls
that run on either module; a backend overrides a stage only where its hardware has a
faster form (the CuPy backend's fused CUDA kernels).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..activations import Activation
from ..optimizers import AdamStep, SGDStep, adam_rule, sgd_rule

Array = Any  # numpy.ndarray or cupy.ndarray


class Backend:
    """Array stages of the network's equations, generic over the array module."""

    name: str
    xp: ModuleType
    special: ModuleType  # scipy.special or cupyx.scipy.special

    def __init__(self) -> None:
        self._ones: dict[tuple[int, Any], Array] = {}

    # --- memory -------------------------------------------------------------------

    def asarray(self, x: Any, dtype: Any = None) -> Array:
        """Copy host data to this backend (no copy when it is already there)."""
        return self.xp.asarray(x, dtype=dtype)

    def to_numpy(self, x: Array) -> Any:
        """Copy an array of this backend to a NumPy array on the host."""
        raise NotImplementedError

    def empty(self, shape: Any, dtype: Any, order: str = "C") -> Array:
        return self.xp.empty(shape, dtype=dtype, order=order)

    def batch_order(self, m: int, hidden: bool) -> str:
        """The memory order of a layer's (n, m) buffers at batch size m: 'C' (rows of n_l
        entries per unit, the kernels' layout) or 'F' (one contiguous column per example)."""
        return "C"

    def zeros(self, shape: Any, dtype: Any) -> Array:
        return self.xp.zeros(shape, dtype=dtype)

    def describe(self) -> dict[str, str]:
        """Versions and device, for `gpunet info` and benchmark records."""
        raise NotImplementedError

    def gather_rows(self, source: Array, indices: Array, out: Array) -> Array:
        """out = source[indices]: a shuffled mini-batch, into its preallocated buffer."""
        return self.xp.take(source, indices, axis=0, out=out)

    # --- the equations' array stages -----------------------------------------------

    def matmul(self, a: Array, b: Array, out: Array) -> Array:
        """One GEMM into a preallocated buffer; transposed views go to BLAS as flags."""
        return self.xp.matmul(a, b, out=out)

    def bias_activation(
        self, activation: Activation, weighted_input: Array, bias: Array, out: Array
    ) -> Array:
        """Z^l += b^l, then A^l = g^l(Z^l) (out may be weighted_input itself)."""
        weighted_input += bias[:, None]
        return activation.forward(self, weighted_input, out)

    def activation_delta(
        self,
        activation: Activation,
        grad_activation: Array,
        weighted_input: Array,
        activation_value: Array,
        out: Array,
    ) -> Array:
        """BP1/BP2's product: delta = dC/dA ⊙ g'(Z) (a Jacobian-vector product for softmax)."""
        return activation.backward(self, grad_activation, weighted_input, activation_value, out)

    def output_minus_target(self, a: Array, y: Array, out: Array) -> Array:
        """(A − Y)/m: BP1's delta^L where the cost and g cancel, and the quadratic's grad_A C."""
        self.xp.subtract(a, y, out=out)
        out *= 1.0 / a.shape[1]
        return out

    def bias_gradient(self, delta: Array, out: Array) -> Array:
        """BP3: dC/db^l = delta^l summed over the batch (the columns)."""
        # as a GEMV with a ones vector: on NumPy 5x faster than sum(axis=1) at m = 64
        # (bench/results/profile)
        return self.xp.matmul(delta, self._ones_like_row(delta), out=out)

    def _ones_like_row(self, matrix: Array) -> Array:
        """A vector of ones as long as matrix's rows, kept per batch size and dtype."""
        m = matrix.shape[1]
        key = (m, matrix.dtype)
        ones = self._ones.get(key)
        if ones is None:
            if len(self._ones) >= 8:  # one per batch size in use; don't hoard
                self._ones.clear()
            ones = self._ones[key] = self.xp.ones(m, dtype=matrix.dtype)
        return ones

    # --- optimizer updates over the flat parameter buffer ---------------------------

    def descend(self, params: Array, scaled_grads: Array) -> None:
        """p -= lr·∂C/∂p for gradients that BP1 already scaled by lr (plain SGD, one pass)."""
        params -= scaled_grads

    def sgd_update(
        self, params: Array, grads: Array, velocity: Array | None, rule: SGDStep
    ) -> None:
        """One step of `optimizers.sgd_rule` over the flat buffers (a kernel on the GPU)."""
        sgd_rule(self.xp, params, grads, velocity, rule)

    def adam_update(
        self, params: Array, grads: Array, first_moment: Array, second_moment: Array, rule: AdamStep
    ) -> None:
        """One step of `optimizers.adam_rule` over the flat buffers (a kernel on the GPU)."""
        adam_rule(self.xp, params, grads, first_moment, second_moment, rule)
