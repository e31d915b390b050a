"""Costs C = (1/m) Σ_x C_x over a batch, and the backprop seed grad_A C that BP1 starts from.

Arrays are (n_L, m), one column per example; `y` holds the targets in the same layout.
Where a cost and the output activation simplify together, `fused_delta` gives BP1's
delta^L directly: no division by a saturated output, so no inf or NaN at ±1000.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

Array = Any
FusedDelta = Callable[[Any, Array, Array, Array], Array]


def _output_minus_target(xp, a, y, out):
    """delta^L = (A − Y)/m: softmax + log-likelihood, and sigmoid + cross-entropy."""
    xp.subtract(a, y, out=out)
    out *= 1.0 / a.shape[1]
    return out


class Cost:
    """A per-example cost C_x averaged over the batch."""

    name: str
    # output activations the cost is defined on (None: any)
    valid_outputs: ClassVar[frozenset[str] | None] = None
    fused_delta: ClassVar[dict[str, FusedDelta]] = {}

    def value(self, ops: Any, z: Array, a: Array, y: Array, activation: Any) -> Array:
        """Σ_x C_x over the batch (a 0-d array: summing on the device needs no sync)."""
        raise NotImplementedError

    def gradient(self, xp: Any, a: Array, y: Array, out: Array) -> Array:
        """grad_A C, the seed of BP1, for the batch-mean cost."""
        raise NotImplementedError

    def check_output(self, activation_name: str) -> None:
        """Raise a ValueError when the output activation cannot feed this cost."""
        if self.valid_outputs is not None and activation_name not in self.valid_outputs:
            raise ValueError(
                f"cost {self.name!r} needs an output activation in "
                f"{sorted(self.valid_outputs)}, but the output layer is {activation_name!r}"
            )

    def __repr__(self) -> str:
        return f"<cost {self.name}>"


class Quadratic(Cost):
    """C_x = ½‖y − a‖²."""

    name = "quadratic"

    def value(self, ops, z, a, y, activation):
        difference = a - y
        return 0.5 * ops.xp.vdot(difference, difference)

    def gradient(self, xp, a, y, out):
        return _output_minus_target(xp, a, y, out)


def _sigmoid_log_likelihood_delta(xp, a, y, out):
    """delta^L = −Y ⊙ (1 − A)/m: −(y/a)·a(1 − a) with the saturating factor cancelled."""
    xp.subtract(a, 1.0, out=out)
    out *= y
    out *= 1.0 / a.shape[1]
    return out


class CrossEntropy(Cost):
    """C_x = −Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)], for sigmoid outputs."""

    name = "cross_entropy"
    valid_outputs: ClassVar[frozenset[str] | None] = frozenset({"sigmoid"})
    fused_delta: ClassVar[dict[str, FusedDelta]] = {"sigmoid": _output_minus_target}

    def value(self, ops, z, a, y, activation):
        # with a = σ(z): ln a = −softplus(−z), ln(1 − a) = −softplus(z), so
        # C_x = Σ_j softplus(z_j) − y_j z_j, finite for any z
        xp = ops.xp
        return xp.sum(xp.logaddexp(0.0, z) - y * z)

    def gradient(self, xp, a, y, out):
        # (a − y) / (a(1 − a)) / m; only reached outside the fused sigmoid path
        xp.subtract(a, y, out=out)
        out /= a * (1.0 - a) * a.shape[1]
        return out


class LogLikelihood(Cost):
    """C_x = −Σ_j y_j ln a_j, for softmax (or sigmoid) outputs."""

    name = "log_likelihood"
    valid_outputs: ClassVar[frozenset[str] | None] = frozenset({"softmax", "sigmoid"})
    fused_delta: ClassVar[dict[str, FusedDelta]] = {
        "softmax": _output_minus_target,
        "sigmoid": _sigmoid_log_likelihood_delta,
    }

    def value(self, ops, z, a, y, activation):
        return -ops.xp.vdot(y, activation.log_output(ops, z))

    def gradient(self, xp, a, y, out):
        xp.divide(y, a, out=out)
        out *= -1.0 / a.shape[1]
        return out


COSTS: dict[str, Cost] = {c.name: c for c in (Quadratic(), CrossEntropy(), LogLikelihood())}


def get_cost(name: str) -> Cost:
    """The cost called `name`, or a ValueError listing the known ones."""
    if not isinstance(name, str):
        raise TypeError(f"cost must be a name (str), got {type(name).__name__}")
    try:
        return COSTS[name]
    except KeyError:
        raise ValueError(f"unknown cost {name!r}; expected one of {', '.join(COSTS)}") from None
