"""Backpropagation (BP1–BP4) against finite differences, hand derivations and explicit Jacobians;
activations' derivatives; numerical stability at saturation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from conftest import REFERENCE, reference_cost, seeded_rng
from hypothesis import given, settings
from hypothesis import strategies as st

import gpunet
from gpunet.core.activations import ACTIVATIONS
from gpunet.core.backends import NumpyBackend
from gpunet.core.costs import COSTS

OPS = NumpyBackend()


def _valid(output: str, cost: str) -> bool:
    try:
        COSTS[cost].check_output(output)
    except ValueError:
        return False
    return True


VALID_TRIPLES = [
    (hidden, output, cost)
    for hidden, output, cost in itertools.product(ACTIVATIONS, ACTIVATIONS, COSTS)
    if _valid(output, cost)
]


def make_targets(rng, cost: str, output: str, m: int, n: int) -> np.ndarray:
    """Targets the cost accepts: real values, values in [0, 1], or rows that are distributions."""
    if cost == "quadratic":
        return rng.standard_normal((m, n))
    if cost == "log_likelihood" and output == "softmax":
        p = rng.random((m, n)) + 0.1
        return p / p.sum(axis=1, keepdims=True)
    return rng.random((m, n))


def flat_gradients(net, X, Y, cost) -> np.ndarray:
    grads_w, grads_b = net.gradients(X, Y, cost)
    return np.concatenate([g.ravel() for g in grads_w] + [g.ravel() for g in grads_b])


def central_differences(net, X, Y, cost, eps) -> np.ndarray:
    """dC/dp for every parameter by (C(p + eps) − C(p − eps)) / 2eps, using only the public API
    (get_params / set_params / cost)."""
    weights, biases = net.get_params()
    arrays = weights + biases
    numeric = []
    for array in arrays:
        for index in np.ndindex(array.shape):
            original = array[index]
            costs = []
            for shifted in (original + eps, original - eps):
                array[index] = shifted
                net.set_params(weights, biases)
                costs.append(net.cost(X, Y, cost))
            array[index] = original
            numeric.append((costs[0] - costs[1]) / (2 * eps))
    net.set_params(weights, biases)
    return np.array(numeric)


# --- gradcheck over every valid (hidden, output, cost) ---------------------------------


def test_valid_triples_cover_every_activation_and_cost():
    outputs_per_cost = {c: {o for _, o, c2 in VALID_TRIPLES if c2 == c} for c in COSTS}
    assert outputs_per_cost["quadratic"] == set(ACTIVATIONS)
    assert outputs_per_cost["cross_entropy"] == {"sigmoid"}
    assert outputs_per_cost["log_likelihood"] == {"softmax"}
    assert {h for h, _, _ in VALID_TRIPLES} == set(ACTIVATIONS)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize(("hidden", "output", "cost"), VALID_TRIPLES)
def test_gradcheck_every_valid_triple(hidden, output, cost, depth):
    errors = {}
    for m in (1, 5, 17):
        rng = seeded_rng(hidden, output, cost, depth, m)
        sizes = [3] + [4] * depth + [3]
        net = gpunet.Network(
            sizes,
            [hidden] * depth + [output],
            dtype="float64",
            seed=int(rng.integers(2**31)),
            backend="numpy",
        )
        X = rng.standard_normal((m, 3))
        Y = make_targets(rng, cost, output, m, 3)
        errors[m] = gpunet.gradcheck(net, X, Y, cost)
    assert all(np.isfinite(e) and e < 1e-6 for e in errors.values()), errors


def test_gradcheck_detects_a_wrong_gradient(monkeypatch):
    """gradcheck must be able to fail: break BP1's seed and the error must be large."""
    rng = seeded_rng("broken")
    net = gpunet.Network([3, 4, 2], ["tanh", "identity"], dtype="float64", seed=0, backend="numpy")
    X, Y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    assert gpunet.gradcheck(net, X, Y, "quadratic") < 1e-6
    quadratic = COSTS["quadratic"]
    original = type(quadratic).gradient

    def doubled(self, xp, a, y, out):
        original(self, xp, a, y, out)
        out *= 2.0
        return out

    monkeypatch.setattr(type(quadratic), "gradient", doubled)
    assert gpunet.gradcheck(net, X, Y, "quadratic") > 0.1


def test_gradcheck_no_false_alarm_when_backprop_is_right():
    """Deep softmax hidden layers shrink the first layers' gradients far below the cost's scale.
    With the default eps = 1e-6 every central difference carries ~1e-16·C/eps ≈ 1e-10·C of
    round-off, ~1e-5 relative to those small tensors: gradcheck then reports an error for a
    gradient that is right (checked here independently with a step suited to float64)."""
    rng = seeded_rng("softmax", "softmax", "quadratic", 3, 17)
    net = gpunet.Network(
        [3, 4, 4, 4, 3],
        ["softmax"] * 4,
        dtype="float64",
        seed=int(rng.integers(2**31)),
        backend="numpy",
    )
    X = rng.standard_normal((17, 3))
    Y = make_targets(rng, "quadratic", "softmax", 17, 3)
    backprop = flat_gradients(net, X, Y, "quadratic")
    # independent check with a step suited to float64 round-off: backprop is right
    numeric = central_differences(net, X, Y, "quadratic", eps=1e-4)
    scale = np.abs(backprop).max()
    np.testing.assert_allclose(backprop, numeric, rtol=1e-6, atol=1e-9 * scale)
    # ... so gradcheck should agree that it is
    assert gpunet.gradcheck(net, X, Y, "quadratic") < 1e-6


# --- backprop against our own finite differences -----------------------------------------


@pytest.mark.parametrize(
    ("activations", "cost"),
    [
        (["tanh", "sigmoid"], "cross_entropy"),
        (["relu", "gelu", "softmax"], "log_likelihood"),
        (["softplus", "identity"], "quadratic"),
        (["leaky_relu", "sigmoid"], "cross_entropy"),
    ],
)
def test_gradients_match_own_central_differences(activations, cost):
    rng = seeded_rng("own", activations, cost)
    sizes = [4] + [5] * (len(activations) - 1) + [3]
    net = gpunet.Network(sizes, activations, dtype="float64", seed=7, backend="numpy")
    X = rng.standard_normal((6, 4))
    Y = make_targets(rng, cost, activations[-1], 6, 3)
    backprop = flat_gradients(net, X, Y, cost)
    numeric = central_differences(net, X, Y, cost, eps=1e-5)
    scale = np.abs(numeric).max()
    assert scale > 1e-3  # not a vacuous comparison
    np.testing.assert_allclose(backprop, numeric, rtol=1e-5, atol=1e-8 * scale)


def test_gradients_are_for_the_batch_mean_cost():
    """Costs are means: repeating every example leaves the cost and gradients unchanged."""
    rng = seeded_rng("mean")
    net = gpunet.Network([3, 4, 2], "sigmoid", dtype="float64", seed=1, backend="numpy")
    X, Y = rng.standard_normal((5, 3)), rng.random((5, 2))
    twice_X, twice_Y = np.vstack([X, X]), np.vstack([Y, Y])
    np.testing.assert_allclose(net.cost(X, Y), net.cost(twice_X, twice_Y), rtol=1e-12)
    np.testing.assert_allclose(
        flat_gradients(net, X, Y, None), flat_gradients(net, twice_X, twice_Y, None), rtol=1e-10
    )
    # and the mean of per-example gradients is the batch gradient
    per_example = np.mean(
        [flat_gradients(net, X[i : i + 1], Y[i : i + 1], None) for i in range(5)], axis=0
    )
    np.testing.assert_allclose(flat_gradients(net, X, Y, None), per_example, rtol=1e-10, atol=1e-14)


def test_gradients_match_explicit_matrix_backprop():
    """BP1–BP4 written out with explicit matrices for a 3-layer tanh/softmax/log-likelihood net."""
    rng = seeded_rng("explicit")
    net = gpunet.Network(
        [4, 6, 5, 3], ["tanh", "tanh", "softmax"], dtype="float64", seed=3, backend="numpy"
    )
    X = rng.standard_normal((7, 4))
    y = rng.integers(0, 3, size=7)
    Y = np.eye(3)[y]
    (W1, W2, W3), (b1, b2, b3) = net.get_params()
    A0 = X.T
    Z1 = W1 @ A0 + b1[:, None]
    A1 = np.tanh(Z1)
    Z2 = W2 @ A1 + b2[:, None]
    A2 = np.tanh(Z2)
    Z3 = W3 @ A2 + b3[:, None]
    A3 = np.exp(Z3) / np.exp(Z3).sum(axis=0)
    m = X.shape[0]
    d3 = (A3 - Y.T) / m  # BP1 (softmax + log-likelihood)
    d2 = (W3.T @ d3) * (1 - A2**2)  # BP2
    d1 = (W2.T @ d2) * (1 - A1**2)
    grads_w, grads_b = net.gradients(X, y, "log_likelihood")
    for got, want in zip(grads_w, [d1 @ A0.T, d2 @ A1.T, d3 @ A2.T]):  # BP4
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    for got, want in zip(grads_b, [d1.sum(1), d2.sum(1), d3.sum(1)]):  # BP3
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


# --- the notes' one-neuron chain ------------------------------------------------------


@given(
    params=st.lists(st.floats(-3, 3), min_size=4, max_size=4),
    x=st.floats(-2, 2),
    y=st.floats(0, 1),
)
@settings(max_examples=40, deadline=None, derandomize=True)
def test_one_neuron_chain_matches_hand_derivation(params, x, y):
    w1, b1, w2, b2 = params
    net = gpunet.Network([1, 1, 1], "sigmoid", dtype="float64", seed=0, backend="numpy")
    net.set_params([np.array([[w1]]), np.array([[w2]])], [np.array([b1]), np.array([b2])])
    s = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    ds = lambda z: s(z) * (1 - s(z))  # noqa: E731
    z1 = w1 * x + b1
    a1 = s(z1)
    z2 = w2 * a1 + b2
    a2 = s(z2)
    want = {
        "w2": (a2 - y) * ds(z2) * a1,
        "b2": (a2 - y) * ds(z2),
        "w1": (a2 - y) * ds(z2) * w2 * ds(z1) * x,
        "b1": (a2 - y) * ds(z2) * w2 * ds(z1),
    }
    (gw1, gw2), (gb1, gb2) = net.gradients(np.array([[x]]), np.array([[y]]), "quadratic")
    got = {"w1": gw1[0, 0], "b1": gb1[0], "w2": gw2[0, 0], "b2": gb2[0]}
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=1e-15), key
    assert net.cost(np.array([[x]]), np.array([[y]]), "quadratic") == pytest.approx(
        0.5 * (a2 - y) ** 2, rel=1e-12, abs=1e-300
    )


# --- the unfused generic path equals the fused deltas ------------------------------------


@pytest.mark.parametrize(
    ("output", "cost"),
    [("sigmoid", "cross_entropy"), ("softmax", "log_likelihood")],
)
def test_unfused_gradient_then_backward_equals_fused_delta(output, cost):
    rng = seeded_rng("fused", output, cost)
    n, m = 4, 6
    z = rng.uniform(-4, 4, size=(n, m))
    g, c = ACTIVATIONS[output], COSTS[cost]
    a = g.forward(OPS, z.copy(), np.empty_like(z))
    y = make_targets(rng, cost, output, m, n).T.copy()
    unfused = c.gradient(OPS, a, y, np.empty_like(a))
    unfused = g.backward(OPS, unfused, z, a, unfused)
    fused = c.delta(OPS, g, z, a, y, np.empty_like(a))
    np.testing.assert_allclose(unfused, fused, rtol=1e-9, atol=1e-13)
    # and both equal the derivative of the mean cost with respect to z, by finite differences
    h = 1e-6
    numeric = np.empty_like(z)
    for index in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[index] += h
        zm[index] -= h
        numeric[index] = (
            reference_cost(cost, output, zp, REFERENCE[output](zp), y)
            - reference_cost(cost, output, zm, REFERENCE[output](zm), y)
        ) / (2 * h)
    np.testing.assert_allclose(fused, numeric, rtol=1e-6, atol=1e-9)
