"""BP1–BP4 as a product of explicit Jacobians, checked against backprop (docs/derivations.md).

For one example x, the chain rule through the layers is a product of matrices:

    dA^l/dZ^l = Σ'(Z^l)        diag(g'(z^l)), or diag(a) − a aᵀ for softmax
    dZ^{l+1}/dA^l = W^{l+1}
    δ^l = Σ'(Z^l)ᵀ (W^{l+1})ᵀ Σ'(Z^{l+1})ᵀ ⋯ (W^L)ᵀ Σ'(Z^L)ᵀ ∇_A C_x

(every Σ' here is symmetric, so its transpose is itself). With ∂z_i/∂W_jk = [i = j] a_k and
∂z/∂b = I, dC_x/dW^l and dC_x/db^l follow, and C = (1/m) Σ_x C_x gives the 1/m. This module
builds every one of these matrices with NumPy, in float64, multiplies them, and compares the
result with `Network.gradients`, which never forms any of them: it multiplies vectors from
the right (BP1, BP2) and sums outer products over the batch (BP3, BP4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, ndtr

from ..core.activations import ACTIVATIONS, LEAKY_SLOPE
from ..core.backends import NumpyBackend

_HOST = NumpyBackend()
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# g'(z) of each elementwise activation, written from z or a = g(z) (the textbook derivatives)
SLOPES = {
    "sigmoid": lambda z, a: a * (1.0 - a),
    "tanh": lambda z, a: 1.0 - a * a,
    "relu": lambda z, a: (z > 0.0).astype(float),
    "leaky_relu": lambda z, a: np.where(z > 0.0, 1.0, LEAKY_SLOPE),
    "identity": lambda z, a: np.ones_like(z),
    "softplus": lambda z, a: expit(z),
    "gelu": lambda z, a: ndtr(z) + z * np.exp(-0.5 * z * z) * _INV_SQRT_2PI,
}
# ∇_a C_x of one example's cost, a function of its output activations a and target y
COST_GRADIENTS = {
    "quadratic": lambda a, y: a - y,
    "cross_entropy": lambda a, y: (a - y) / (a * (1.0 - a)),
    "log_likelihood": lambda a, y: -y / a,
}


def activation_jacobian(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Σ'(z) = da/dz of one layer for one example, an (n, n) matrix."""
    if name == "softmax":
        # da_j/dz_k = a_j ([j = k] − a_k): a full matrix, each output depends on every z
        return np.diag(a) - np.outer(a, a)
    return np.diag(SLOPES[name](z, a))


def weight_jacobian(previous: np.ndarray, n: int) -> np.ndarray:
    """dz^l/dW^l for one example: ∂z_i/∂W_jk = [i = j] a^{l-1}_k, shape (n_l, n_l, n_{l-1})."""
    return np.einsum("ij,k->ijk", np.eye(n), previous)


@dataclass(frozen=True)
class Chain:
    """One example's forward values and the Jacobians of its chain, layers l = 1..L."""

    activations: list[np.ndarray]  # a^0 = x, a^1, ..., a^L
    weighted_inputs: list[np.ndarray]  # z^1, ..., z^L
    jacobians: list[np.ndarray]  # Σ'(z^1), ..., Σ'(z^L)
    seed: np.ndarray  # ∇_a C_x at a^L

    def products(self, weights: list[np.ndarray]) -> list[np.ndarray]:
        """dA^L/dZ^l = Σ'(Z^L) W^L Σ'(Z^{L-1}) ⋯ W^{l+1} Σ'(Z^l), (n_L, n_l), for l = 1..L."""
        products = [self.jacobians[-1]]
        for jacobian, w in zip(self.jacobians[-2::-1], weights[:0:-1]):
            products.append(products[-1] @ w @ jacobian)
        return products[::-1]

    def deltas(self, weights: list[np.ndarray]) -> list[np.ndarray]:
        """δ^l = (dA^L/dZ^l)ᵀ ∇_A C_x = Σ'(Z^l)ᵀ (W^{l+1})ᵀ ⋯ (W^L)ᵀ Σ'(Z^L)ᵀ ∇_A C_x."""
        return [product.T @ self.seed for product in self.products(weights)]


def example_chain(
    weights: list[np.ndarray],
    biases: list[np.ndarray],
    names: list[str],
    cost: str,
    x: np.ndarray,
    y: np.ndarray,
) -> Chain:
    """z^l = W^l a^{l-1} + b^l, a^l = g^l(z^l), and each layer's Σ'(z^l), for one example."""
    activations, weighted_inputs, jacobians = [x], [], []
    for w, b, name in zip(weights, biases, names):
        z = w @ activations[-1] + b
        a = ACTIVATIONS[name].forward(_HOST, z[:, None].copy(), np.empty((z.size, 1)))[:, 0]
        weighted_inputs.append(z)
        activations.append(a)
        jacobians.append(activation_jacobian(name, z, a))
    return Chain(activations, weighted_inputs, jacobians, COST_GRADIENTS[cost](a, y))


@dataclass(frozen=True)
class JacobianCheck:
    """dC/dW^l, dC/db^l from the explicit Jacobians and from backprop, and the first chain."""

    sizes: list[int]
    activations: list[str]
    cost: str
    samples: int
    jacobian_weights: list[np.ndarray]
    jacobian_biases: list[np.ndarray]
    backprop_weights: list[np.ndarray]
    backprop_biases: list[np.ndarray]
    first: Chain
    first_products: list[np.ndarray]

    @property
    def errors(self) -> list[tuple[float, float]]:
        """(weights, biases) relative error ‖jacobian − backprop‖ / max of the norms, per layer."""
        return [
            (_relative(jw, bw), _relative(jb, bb))
            for jw, jb, bw, bb in zip(
                self.jacobian_weights,
                self.jacobian_biases,
                self.backprop_weights,
                self.backprop_biases,
            )
        ]

    @property
    def worst(self) -> float:
        return max(max(pair) for pair in self.errors)

    def __str__(self) -> str:
        L = len(self.sizes) - 1
        chain = " ".join(f"Σ'(Z^{l})ᵀ (W^{l + 1})ᵀ" for l in range(1, L)) + f" Σ'(Z^{L})ᵀ"
        product = " ".join([f"Σ'(Z^{L})"] + [f"W^{l + 1} Σ'(Z^{l})" for l in range(L - 1, 0, -1)])
        lines = [
            f"explicit Jacobians of {self.sizes} {'/'.join(self.activations)}, cost "
            f"{self.cost}, {self.samples} examples, float64",
            f"δ^1 = {chain} ∇_A C_x;  dC/dW^l = (1/m) Σ_x δ^l_x · dZ^l/dW^l, "
            "dC/db^l = (1/m) Σ_x δ^l_x",
            "",
            "layer" + "".join(f"{title:>{width}}" for title, width in _COLUMNS),
        ]
        for l, (error_w, error_b) in enumerate(self.errors, start=1):
            shapes = (
                self.first.jacobians[l - 1].shape,
                self.backprop_weights[l - 1].shape,
                self.first_products[l - 1].shape,
                (self.sizes[l], self.sizes[l], self.sizes[l - 1]),
            )
            text = ["×".join(map(str, shape)) for shape in shapes]
            cells = [*text, f"{error_w:.2g}", f"{error_b:.2g}"]
            lines.append(f"{l:<5}" + "".join(f"{c:>{w}}" for c, (_, w) in zip(cells, _COLUMNS)))
        with np.printoptions(precision=4, suppress=True, linewidth=100):
            lines += [
                "",
                f"example 1: Σ'(Z^{L}) (the output layer's {self.activations[-1]}) =",
                str(self.first.jacobians[-1]),
                f"example 1: dA^{L}/dZ^1 = {product} =",
                str(self.first_products[0]),
            ]
        return "\n".join(lines)


_COLUMNS = (
    ("Σ'(Z^l)", 9),
    ("W^l", 9),
    ("dA^L/dZ^l", 11),
    ("dZ^l/dW^l", 13),
    ("dC/dW^l error", 16),
    ("dC/db^l error", 16),
)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(np.linalg.norm(a), np.linalg.norm(b), np.finfo(float).tiny)
    return float(np.linalg.norm(a - b) / scale)


def check_jacobians(net: Any, X: Any, Y: Any, cost: str | None = None) -> JacobianCheck:
    """dC/dW^l and dC/db^l of `net` from the explicit Jacobians, next to `net.gradients`.

    Both on a float64 copy of `net` (on its backend for backprop, with NumPy for the
    Jacobians); targets and cost are checked as `gradients` checks them. The Jacobians are
    formed per example: meant for tiny networks (dZ^l/dW^l has n_l² n_{l-1} entries).
    """
    from ..core.network import Network

    if not isinstance(net, Network):
        raise TypeError(f"net must be a gpunet Network, got {type(net).__name__}")
    probe = Network(net.sizes, net.activation_names, backend=net.backend, dtype="float64")
    probe.set_params(*net.get_params())
    cost_ = probe.cost_function(cost)
    inputs, targets, _ = probe.checked_inputs(X, Y, cost_)
    backprop_weights, backprop_biases = probe.gradients(X, Y, cost_.name)
    to_numpy = probe.backend.to_numpy
    inputs, targets = to_numpy(inputs), to_numpy(targets)
    weights, biases = probe.get_params()
    m = inputs.shape[0]
    grads_w = [np.zeros_like(w) for w in weights]
    grads_b = [np.zeros_like(b) for b in biases]
    chains = []
    for x, y in zip(inputs, targets):
        chain = example_chain(weights, biases, probe.activation_names, cost_.name, x, y)
        chains.append(chain)
        for l, delta in enumerate(chain.deltas(weights)):
            # C = (1/m) Σ_x C_x: each example's chain contributes 1/m of its gradient
            n = delta.size
            grads_w[l] += np.tensordot(delta, weight_jacobian(chain.activations[l], n), 1) / m
            grads_b[l] += np.eye(n).T @ delta / m  # dz^l/db^l = I
    return JacobianCheck(
        probe.sizes,
        probe.activation_names,
        cost_.name,
        m,
        grads_w,
        grads_b,
        [to_numpy(g) for g in backprop_weights],
        [to_numpy(g) for g in backprop_biases],
        chains[0],
        chains[0].products(weights),
    )
