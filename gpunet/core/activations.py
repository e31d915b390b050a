"""Activation functions g: A = g(Z), and the product dC/dA ⊙ g'(Z) that BP1 and BP2 need.

Arrays are (n, m): one column per example. `ops` is the backend, so that the same
code runs on NumPy and CuPy (`ops.xp` is the array module, `ops.special` its scipy.special).
Every method may be given `out` aliasing its input: the training step works in place.
"""

from __future__ import annotations

from typing import Any

Array = Any

LEAKY_SLOPE = 0.01
_SQRT_HALF = 0.5**0.5
_INV_SQRT_2PI = (2.0 * 3.141592653589793) ** -0.5


class Activation:
    """One layer's g; elementwise unless it overrides `backward` with a Jacobian product."""

    name: str
    # g'(Z) in the texts' notation, as LaTeX (the diagram of `gpunet graph` shows it)
    derivative_tex: str
    # g'(Z) computable from A = g(Z) alone, so the forward pass may overwrite Z with A
    derivative_from_output: bool = True

    def forward(self, ops: Any, z: Array, out: Array) -> Array:
        """A = g(Z)."""
        raise NotImplementedError

    def backward(self, ops: Any, grad_a: Array, z: Array, a: Array, out: Array) -> Array:
        """delta = dC/dA ⊙ g'(Z): the Hadamard product of BP1 and BP2."""
        raise NotImplementedError

    def log_output(self, ops: Any, z: Array) -> Array:
        """ln g(Z) in a form that stays finite at saturation (for the log-likelihood)."""
        raise ValueError(f"the log-likelihood needs outputs in (0, 1); {self.name} has none")

    def __repr__(self) -> str:
        return f"<activation {self.name}>"


class Sigmoid(Activation):
    name = "sigmoid"
    derivative_tex = r"\sigma'(Z) = A\odot(1-A)"

    def forward(self, ops, z, out):
        return ops.special.expit(z, out=out)  # 1/(1+e^-z) without overflow at ±1000

    def backward(self, ops, grad_a, z, a, out):
        # σ'(z) = σ(z)(1 − σ(z))
        ops.xp.multiply(grad_a, a, out=out)
        out *= 1.0 - a
        return out


class Tanh(Activation):
    name = "tanh"
    derivative_tex = r"1 - A\odot A"

    def forward(self, ops, z, out):
        return ops.xp.tanh(z, out=out)

    def backward(self, ops, grad_a, z, a, out):
        # tanh'(z) = 1 − tanh²(z)
        return ops.xp.multiply(grad_a, 1.0 - a * a, out=out)


class ReLU(Activation):
    name = "relu"
    derivative_tex = r"[A > 0]"

    def forward(self, ops, z, out):
        return ops.xp.maximum(z, 0.0, out=out)

    def backward(self, ops, grad_a, z, a, out):
        # relu'(0) = 0, as in PyTorch: a unit exactly at the kink passes no gradient
        return ops.xp.multiply(grad_a, a > 0.0, out=out)


class LeakyReLU(Activation):
    name = "leaky_relu"
    derivative_tex = r"[A > 0] + 0.01\,[A \leq 0]"

    def forward(self, ops, z, out):
        return ops.xp.maximum(z, LEAKY_SLOPE * z, out=out)

    def backward(self, ops, grad_a, z, a, out):
        # a > 0 exactly when z > 0; at the kink the slope is LEAKY_SLOPE, as in PyTorch
        return ops.xp.multiply(grad_a, ops.xp.where(a > 0.0, 1.0, LEAKY_SLOPE), out=out)


class Identity(Activation):
    name = "identity"
    derivative_tex = r"1"

    def forward(self, ops, z, out):
        if out is not z:
            ops.xp.copyto(out, z)
        return out

    def backward(self, ops, grad_a, z, a, out):
        if out is not grad_a:
            ops.xp.copyto(out, grad_a)
        return out


class Softplus(Activation):
    name = "softplus"
    derivative_tex = r"\sigma(Z) = 1 - e^{-A}"

    def forward(self, ops, z, out):
        return ops.xp.logaddexp(0.0, z, out=out)  # ln(1 + e^z) without overflow

    def backward(self, ops, grad_a, z, a, out):
        # softplus'(z) = σ(z) = 1 − e^{−a}, written with expm1 to stay exact for tiny a
        return ops.xp.multiply(grad_a, -ops.xp.expm1(-a), out=out)


class GELU(Activation):
    """The exact GELU, z·Φ(z) with Φ the standard normal CDF (erf form, not tanh)."""

    name = "gelu"
    derivative_tex = r"\Phi(Z) + Z\,\varphi(Z)"
    derivative_from_output = False

    def forward(self, ops, z, out):
        half_cdf = ops.special.erf(z * _SQRT_HALF)  # not into out: out may alias z
        half_cdf += 1.0
        half_cdf *= 0.5
        return ops.xp.multiply(z, half_cdf, out=out)

    def backward(self, ops, grad_a, z, a, out):
        # gelu'(z) = Φ(z) + z·φ(z)
        xp = ops.xp
        cdf = ops.special.erf(z * _SQRT_HALF)
        cdf += 1.0
        cdf *= 0.5
        pdf = xp.exp(-0.5 * z * z)
        pdf *= z * _INV_SQRT_2PI
        cdf += pdf
        return xp.multiply(grad_a, cdf, out=out)


class Softmax(Activation):
    """The vector activation g: R^n -> R^n, a_j = e^{z_j} / Σ_k e^{z_k}, per column."""

    name = "softmax"
    derivative_tex = r"J = \mathrm{diag}(a) - a a^T"

    def forward(self, ops, z, out):
        xp = ops.xp
        # subtracting the column maximum keeps e^z finite for any logits
        xp.subtract(z, z.max(axis=0), out=out)
        xp.exp(out, out=out)
        out /= out.sum(axis=0)
        return out

    def backward(self, ops, grad_a, z, a, out):
        # Jacobian-vector product J^T v with J = diag(a) − a aᵀ (symmetric), without forming J:
        # delta_j = a_j (v_j − Σ_k a_k v_k)
        xp = ops.xp
        weighted_sum = xp.einsum("ij,ij->j", a, grad_a)
        xp.subtract(grad_a, weighted_sum, out=out)
        out *= a
        return out

    def log_output(self, ops, z):
        # ln softmax(z) = z − logsumexp(z), with the maximum taken out first
        xp = ops.xp
        shifted = z - z.max(axis=0)
        shifted -= xp.log(xp.exp(shifted).sum(axis=0))
        return shifted


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (Sigmoid(), Tanh(), ReLU(), LeakyReLU(), Identity(), Softplus(), GELU(), Softmax())
}


def get_activation(name: str) -> Activation:
    """The activation called `name`, or a ValueError listing the known ones."""
    if not isinstance(name, str):
        raise TypeError(f"activation must be a name (str), got {type(name).__name__}")
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}"
        ) from None
