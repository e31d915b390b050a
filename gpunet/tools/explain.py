"""The notes' demonstration: the one-neuron chain derived by hand.

The chain is the two-layer network with one sigmoid neuron per layer,

    x -> z1 = w1 x + b1 -> a1 = σ(z1) -> z2 = w2 a1 + b2 -> a2 = σ(z2) -> C(a2, y),

whose partial derivatives follow from the chain rule by hand. `explain` puts each next to
backprop's value (Network.gradients) and the numeric one (central differences). Backprop's
speed against the numeric gradient is measured by gpunet.tools.bench.time_gradients.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.costs import get_cost
from ..core.gradcheck import numeric_gradient


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _sigmoid_prime(z: float) -> float:
    return _sigmoid(z) * (1.0 - _sigmoid(z))


# BP1 for one sigmoid output: delta2 = dC/dz2 as a formula and as f(a2, z2, y)
OUTPUT_DELTAS: dict[str, tuple[str, Callable[[float, float, float], float]]] = {
    "quadratic": ("(a2 − y) σ'(z2)", lambda a2, z2, y: (a2 - y) * _sigmoid_prime(z2)),
    "cross_entropy": ("(a2 − y)", lambda a2, z2, y: a2 - y),
}
COST_FORMULAS = {
    "quadratic": "C = (a2 − y)²/2",
    "cross_entropy": "C = −[y ln a2 + (1 − y) ln(1 − a2)]",
}


@dataclass(frozen=True)
class Partial:
    """One partial derivative of the chain: the hand-derived formula and three values."""

    name: str
    formula: str
    hand: float
    backprop: float
    numeric: float


@dataclass(frozen=True)
class Explanation:
    """The chain's inputs and forward values, and its four partial derivatives."""

    cost: str
    values: dict[str, float]
    partials: list[Partial]

    def __str__(self) -> str:
        values = self.values
        lines = [
            "the notes' chain: x -> [w1, b1, σ] -> a1 -> [w2, b2, σ] -> a2, "
            + COST_FORMULAS[self.cost],
            "  ".join(f"{key} = {values[key]:.6g}" for key in ("x", "y", "w1", "b1", "w2", "b2")),
            "  ".join(f"{key} = {values[key]:.6g}" for key in ("z1", "a1", "z2", "a2", "C")),
            f"delta2 = dC/dz2 = {OUTPUT_DELTAS[self.cost][0]} (BP1); "
            "delta1 = w2 delta2 σ'(z1) (BP2)",
            "",
            f"{'partial':<8}{'by hand':<32}{'hand':>14}{'backprop':>14}{'numeric':>14}",
        ]
        for p in self.partials:
            lines.append(
                f"{p.name:<8}{p.formula:<32}{p.hand:>14.8g}{p.backprop:>14.8g}{p.numeric:>14.8g}"
            )
        hand_vs_backprop = max(_relative(p.hand, p.backprop) for p in self.partials)
        hand_vs_numeric = max(_relative(p.hand, p.numeric) for p in self.partials)
        lines += [
            "",
            f"largest relative difference: backprop vs hand {hand_vs_backprop:.2g}, "
            f"numeric vs hand {hand_vs_numeric:.2g}",
        ]
        return "\n".join(lines)


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), np.finfo(float).tiny)


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def explain(
    x: float = 1.0,
    y: float = 0.0,
    w1: float = 0.6,
    b1: float = 0.9,
    w2: float = 2.0,
    b2: float = 2.0,
    *,
    cost: str = "quadratic",
    backend: str = "auto",
) -> Explanation:
    """The chain's partials dC/dw2, dC/db2 (BP4, BP3 with BP1) and dC/dw1, dC/db1 (with BP2).

    Each is given by hand (the chain rule written out, computed with `math`), by backprop
    (Network.gradients, float64) and numerically (central differences). The defaults are
    the notes' saturated start: a2 ≈ 0.97, so σ'(z2) ≈ 0.025 slows the quadratic cost's
    learning, and the cross-entropy's delta2 = a2 − y does not.
    """
    from ..core.network import Network

    values = {
        key: _finite(key, v)
        for key, v in zip(("x", "y", "w1", "b1", "w2", "b2"), (x, y, w1, b1, w2, b2))
    }
    # an unknown cost, or one that refuses the chain's sigmoid output, says so and why
    get_cost(cost).check_output("sigmoid")
    net = Network([1, 1, 1], "sigmoid", backend=backend, dtype="float64")
    net.set_params(
        [np.array([[values["w1"]]]), np.array([[values["w2"]]])],
        [np.array([values["b1"]]), np.array([values["b2"]])],
    )
    X, Y = np.array([[values["x"]]]), np.array([[values["y"]]])
    # the library's checks of the target (e.g. y in [0, 1] for the cross-entropy) come first
    grads_w, grads_b = net.gradients(X, Y, cost)
    _, numeric = numeric_gradient(net, X, Y, cost)

    z1 = values["w1"] * values["x"] + values["b1"]
    a1 = _sigmoid(z1)
    z2 = values["w2"] * a1 + values["b2"]
    a2 = _sigmoid(z2)
    values.update(z1=z1, a1=a1, z2=z2, a2=a2, C=net.cost(X, Y, cost))
    formula, output_delta = OUTPUT_DELTAS[cost]
    delta2 = output_delta(a2, z2, values["y"])
    delta1 = values["w2"] * delta2 * _sigmoid_prime(z1)
    # the flat order of the network's buffer: w1, w2, b1, b2
    rows = [
        ("dC/dw2", f"{formula} a1", delta2 * a1, float(grads_w[1][0, 0]), 1),
        ("dC/db2", formula, delta2, float(grads_b[1][0]), 3),
        ("dC/dw1", f"{formula} w2 σ'(z1) x", delta1 * values["x"], float(grads_w[0][0, 0]), 0),
        ("dC/db1", f"{formula} w2 σ'(z1)", delta1, float(grads_b[0][0]), 2),
    ]
    partials = [
        Partial(name, text, hand, got, float(numeric[index]))
        for name, text, hand, got, index in rows
    ]
    return Explanation(cost, values, partials)
