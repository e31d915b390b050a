"""Costs C = (1/m) Σ_x C_x over a batch, and BP1's delta^L = grad_A C ⊙ g'(Z^L).

Arrays are (n_L, m), one column per example; `y` holds the targets in the same layout.
Where a cost and its output activation cancel (softmax with the log-likelihood, sigmoid
with the cross-entropy), `Cost.delta` takes BP1's simplified form delta^L = (A − Y)/m:
no division by a saturated output, so no inf or NaN at ±1000.
"""

from __future__ import annotations

from typing import Any, ClassVar

Array = Any


class Cost:
    """A per-example cost C_x averaged over the batch."""

    name: str
    # grad_A C in the texts' notation, as LaTeX (the diagram of `gpunet graph` shows it)
    gradient_tex: str
    # BP1's delta^L where the cost and g cancel, as LaTeX
    cancelled_tex = r"\delta^L = (A - Y)/m"
    # output activations the cost is defined on (None: any)
    valid_outputs: ClassVar[frozenset[str] | None] = None
    # output activations whose g' cancels against grad_A C, leaving delta^L = (A − Y)/m
    cancels_with: ClassVar[frozenset[str]] = frozenset()

    def value(self, ops: Any, z: Array, a: Array, y: Array, activation: Any) -> Array:
        """Σ_x C_x over the batch (a 0-d array: summing on the device needs no sync)."""
        raise NotImplementedError

    def gradient(self, ops: Any, a: Array, y: Array, out: Array) -> Array:
        """grad_A C, the seed of BP1, for the batch-mean cost."""
        raise NotImplementedError

    def delta(self, ops: Any, activation: Any, z: Array, a: Array, y: Array, out: Array) -> Array:
        """BP1: delta^L = grad_A C ⊙ g'(Z^L), as (A − Y)/m where the two cancel."""
        if activation.name in self.cancels_with:
            return ops.output_minus_target(a, y, out)
        self.gradient(ops, a, y, out)
        return ops.activation_delta(activation, out, z, a, out)

    def check_output(self, activation_name: str) -> None:
        """Raise a ValueError when the output activation cannot feed this cost."""
        if self.valid_outputs is not None and activation_name not in self.valid_outputs:
            raise ValueError(
                f"cost {self.name!r} needs an output activation in "
                f"{sorted(self.valid_outputs)}, but the output layer is {activation_name!r}"
                + self.why_not(activation_name)
            )

    def why_not(self, activation_name: str) -> str:
        """A sentence on why the pairing is refused, for the error (empty: no more to say)."""
        return ""

    def __repr__(self) -> str:
        return f"<cost {self.name}>"


class Quadratic(Cost):
    """C_x = ½‖y − a‖²."""

    name = "quadratic"
    gradient_tex = r"\nabla_A C = (A - Y)/m"

    def value(self, ops, z, a, y, activation):
        difference = a - y
        return 0.5 * ops.xp.vdot(difference, difference)

    def gradient(self, ops, a, y, out):
        return ops.output_minus_target(a, y, out)  # grad_A C = (A − Y)/m


class CrossEntropy(Cost):
    """C_x = −Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)], for sigmoid outputs."""

    name = "cross_entropy"
    gradient_tex = r"\nabla_A C = (A - Y)/(A\odot(1-A)\,m)"
    valid_outputs: ClassVar[frozenset[str] | None] = frozenset({"sigmoid"})
    cancels_with: ClassVar[frozenset[str]] = frozenset({"sigmoid"})

    def value(self, ops, z, a, y, activation):
        # with a = σ(z): ln a = −softplus(−z), ln(1 − a) = −softplus(z), so
        # C_x = Σ_j softplus(z_j) − y_j z_j, finite for any z
        xp = ops.xp
        return xp.sum(xp.logaddexp(0.0, z) - y * z)

    def gradient(self, ops, a, y, out):
        # (a − y) / (a(1 − a)) / m: what delta's cancellation avoids; kept for the texts
        xp = ops.xp
        xp.subtract(a, y, out=out)
        out /= a * (1.0 - a) * a.shape[1]
        return out


class LogLikelihood(Cost):
    """C_x = −Σ_j y_j ln a_j, for softmax outputs."""

    name = "log_likelihood"
    gradient_tex = r"\nabla_A C = -Y/(A\,m)"
    valid_outputs: ClassVar[frozenset[str] | None] = frozenset({"softmax"})
    cancels_with: ClassVar[frozenset[str]] = frozenset({"softmax"})

    def value(self, ops, z, a, y, activation):
        return -ops.xp.vdot(y, activation.log_output(ops, z))

    def gradient(self, ops, a, y, out):
        xp = ops.xp
        xp.divide(y, a, out=out)
        out *= -1.0 / a.shape[1]
        return out

    def why_not(self, activation_name):
        if activation_name != "sigmoid":
            return ""
        return (
            ": with independent sigmoid outputs −Σ_j y_j ln a_j never penalises the wrong "
            "classes and is minimised by pushing every output to 1; use cost 'cross_entropy' "
            "for sigmoid outputs"
        )


COSTS: dict[str, Cost] = {c.name: c for c in (Quadratic(), CrossEntropy(), LogLikelihood())}


def get_cost(name: str) -> Cost:
    """The cost called `name`, or a ValueError listing the known ones."""
    if not isinstance(name, str):
        raise TypeError(f"cost must be a name (str), got {type(name).__name__}")
    try:
        return COSTS[name]
    except KeyError:
        raise ValueError(f"unknown cost {name!r}; expected one of {', '.join(COSTS)}") from None
