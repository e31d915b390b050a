"""Each activation's forward and derivative, and every cost's stability at saturation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from conftest import REFERENCE, reference_cost, reference_forward, seeded_rng, sigmoid
from hypothesis import given, settings
from hypothesis import strategies as st

import gpunet
from gpunet.core.activations import ACTIVATIONS
from gpunet.core.backends import NumpyBackend

OPS = NumpyBackend()


# --- activations ------------------------------------------------------------------------


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 6), m=st.integers(1, 4))
@settings(max_examples=30, deadline=None, derandomize=True)
def test_softmax_backward_is_jacobian_transpose_product(seed, n, m):
    rng = np.random.default_rng(seed)
    z = rng.uniform(-5, 5, size=(n, m))
    v = rng.standard_normal((n, m))
    g = ACTIVATIONS["softmax"]
    a = g.forward(OPS, z.copy(), np.empty_like(z))
    got = g.backward(OPS, v.copy(), z, a, np.empty_like(z))
    for j in range(m):
        e = np.exp(z[:, j] - z[:, j].max())
        col = e / e.sum()
        J = np.diag(col) - np.outer(col, col)  # J[i, k] = da_i / dz_k
        np.testing.assert_allclose(got[:, j], J.T @ v[:, j], rtol=1e-10, atol=1e-13)


ELEMENTWISE = [name for name in ACTIVATIONS if name != "softmax"]


@pytest.mark.parametrize("name", ELEMENTWISE)
@given(seed=st.integers(0, 2**31 - 1))
@settings(max_examples=20, deadline=None, derandomize=True)
def test_backward_is_grad_times_numerical_derivative(name, seed):
    rng = np.random.default_rng(seed)
    z = rng.uniform(-6, 6, size=(3, 5))
    z[np.abs(z) < 1e-3] = 0.5  # keep away from the kinks of relu / leaky_relu
    grad = rng.standard_normal(z.shape)
    g = ACTIVATIONS[name]
    forward = lambda t: g.forward(OPS, t.copy(), np.empty_like(t))  # noqa: E731
    a = forward(z)
    h = 1e-6
    derivative = (forward(z + h) - forward(z - h)) / (2 * h)
    got = g.backward(OPS, grad.copy(), z.copy(), a.copy(), np.empty_like(z))
    np.testing.assert_allclose(got, grad * derivative, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_forward_matches_reference_formula(name):
    rng = seeded_rng("forward", name)
    z = rng.uniform(-8, 8, size=(4, 7))
    got = ACTIVATIONS[name].forward(OPS, z.copy(), np.empty_like(z))
    np.testing.assert_allclose(got, REFERENCE[name](z), rtol=1e-12, atol=1e-15)


def test_kinks_relu_and_leaky_relu():
    z = np.zeros((1, 3))
    grad = np.array([[1.0, -2.0, 3.0]])
    for name, slope in (("relu", 0.0), ("leaky_relu", 0.01)):
        g = ACTIVATIONS[name]
        a = g.forward(OPS, z.copy(), np.empty_like(z))
        np.testing.assert_array_equal(a, 0.0)
        np.testing.assert_allclose(
            g.backward(OPS, grad.copy(), z, a, np.empty_like(z)), slope * grad
        )


def test_gelu_matches_erf_formula():
    zs = [-6.0, -3.0, -1.0, -0.1, 0.0, 0.3, 1.0, 2.5, 6.0]
    z = np.array([zs])
    got = ACTIVATIONS["gelu"].forward(OPS, z.copy(), np.empty_like(z))[0]
    for value, zi in zip(got, zs):
        assert value == pytest.approx(
            0.5 * zi * (1 + math.erf(zi / math.sqrt(2))), rel=1e-13, abs=1e-15
        )
    # gelu'(z) = Φ(z) + z φ(z)
    grad = np.ones_like(z)
    slope = ACTIVATIONS["gelu"].backward(OPS, grad, z, None, np.empty_like(z))[0]
    for value, zi in zip(slope, zs):
        want = 0.5 * (1 + math.erf(zi / math.sqrt(2))) + zi * math.exp(-zi * zi / 2) / math.sqrt(
            2 * math.pi
        )
        assert value == pytest.approx(want, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_forward_in_place(name):
    """activations.py promises that `out` may alias the input (the training step works in place)."""
    rng = seeded_rng("inplace-forward", name)
    z = rng.uniform(-3, 3, size=(4, 5))
    g = ACTIVATIONS[name]
    want = g.forward(OPS, z.copy(), np.empty_like(z))
    buffer = z.copy()
    got = g.forward(OPS, buffer, buffer)
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_backward_in_place(name):
    rng = seeded_rng("inplace-backward", name)
    z = rng.uniform(-3, 3, size=(4, 5))
    g = ACTIVATIONS[name]
    a = g.forward(OPS, z.copy(), np.empty_like(z))
    grad = rng.standard_normal(z.shape)
    want = g.backward(OPS, grad.copy(), z.copy(), a.copy(), np.empty_like(z))
    buffer = grad.copy()
    got = g.backward(OPS, buffer, z.copy(), a.copy(), buffer)
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)


# --- stability at saturation ---------------------------------------------------------


def strict():
    """Overflow, division by zero and invalid operations raise (used with warnings as errors).
    Underflow to 0 is the correct result far out (e^-2000), so it stays allowed."""
    return np.errstate(over="raise", divide="raise", invalid="raise", under="ignore")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_and_softmax_outputs_at_huge_logits(dtype):
    X = np.ones((2, 2))
    net = gpunet.Network([2, 3], "sigmoid", dtype=dtype, seed=0, backend="numpy")
    net.set_params([np.zeros((3, 2))], [np.array([1000.0, -1000.0, 0.0])])
    with warnings.catch_warnings(), strict():
        warnings.simplefilter("error")
        out = net.forward(X)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, [[1.0, 0.0, 0.5]] * 2)

    net = gpunet.Network([2, 3], "softmax", dtype=dtype, seed=0, backend="numpy")
    net.set_params([np.zeros((3, 2))], [np.array([1000.0, 0.0, -1000.0])])
    with warnings.catch_warnings(), strict():
        warnings.simplefilter("error")
        out = net.forward(X)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, [[1.0, 0.0, 0.0]] * 2, atol=1e-30)


SATURATED = [
    # (output, cost, biases, targets per example, hand-derived per-example cost, dC/db)
    (
        "sigmoid",
        "cross_entropy",
        [1000.0, -1000.0, 0.0],
        [0.0, 1.0, 0.5],
        # softplus(z) − y z per unit: 1000 + (0 + 1000) + ln 2
        2000.0 + math.log(2.0),
        [1.0, -1.0, 0.0],
    ),
    (
        "softmax",
        "log_likelihood",
        [1000.0, 0.0, -1000.0],
        [0.0, 0.0, 1.0],
        # −ln softmax(z)_2 = logsumexp(z) − z_2 = 1000 + 1000
        2000.0,
        [1.0, 0.0, -1.0],
    ),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("output", "cost", "biases", "target", "want_cost", "want_db"), SATURATED)
def test_cost_and_gradients_finite_at_huge_logits(
    dtype, output, cost, biases, target, want_cost, want_db
):
    m = 4
    rng = seeded_rng("saturated", output, cost)
    X = rng.uniform(-1, 1, size=(m, 2))
    Y = np.tile(target, (m, 1))
    net = gpunet.Network([2, 3], output, dtype=dtype, seed=0, backend="numpy")
    net.set_params([np.zeros((3, 2))], [np.array(biases)])
    with warnings.catch_warnings(), strict():
        warnings.simplefilter("error")
        value = net.cost(X, Y, cost)
        (gw,), (gb,) = net.gradients(X, Y, cost)
    # the stable value computed here independently (softplus / logsumexp forms)
    z = np.tile(np.array(biases)[:, None], (1, m))
    assert value == pytest.approx(
        reference_cost(cost, output, z, REFERENCE[output](z), Y.T), rel=1e-6
    )
    assert value == pytest.approx(want_cost, rel=1e-6)
    assert np.isfinite(gw).all() and np.isfinite(gb).all()
    np.testing.assert_allclose(gb, want_db, atol=1e-6)
    np.testing.assert_allclose(gw, np.outer(want_db, X.mean(axis=0)), atol=1e-6)


def test_training_step_at_saturation_stays_finite():
    X = np.ones((3, 2))
    net = gpunet.Network([2, 2], "sigmoid", dtype="float32", seed=0, backend="numpy")
    net.set_params([np.zeros((2, 2))], [np.array([1000.0, -1000.0])])
    with warnings.catch_warnings(), strict():
        warnings.simplefilter("error")
        history = net.fit(
            X,
            np.array([[0.0, 1.0]] * 3),
            epochs=1,
            batch_size=3,
            lr=0.1,
            cost="cross_entropy",
            progress=False,
        )
    assert np.isfinite(history["cost"][0])
    weights, biases = net.get_params()
    assert all(np.isfinite(p).all() for p in weights + biases)
    # one SGD step: b -= lr · mean(a − y) = lr · [1, −1]
    np.testing.assert_allclose(biases[0], [1000.0 - 0.1, -1000.0 + 0.1], rtol=1e-6)


def test_sigmoid_reference_helper_is_exact_far_out():
    # guard for the reference used above
    assert sigmoid(1000.0) == 1.0 and sigmoid(-1000.0) == 0.0
    assert (
        reference_forward([np.zeros((1, 1))], [np.zeros(1)], ["sigmoid"], [[1.0]])[1][0, 0] == 0.5
    )


def test_log_likelihood_refuses_sigmoid_outputs_and_says_why():
    net = gpunet.Network([4, 3], "sigmoid", backend="numpy", seed=0)
    X, y = np.zeros((2, 4)), np.array([0, 2])
    with pytest.raises(ValueError, match=r"pushing every output to 1.*cross_entropy"):
        net.fit(X, y, epochs=1, batch_size=2, lr=0.1, cost="log_likelihood", progress=False)
    with pytest.raises(ValueError, match="cross_entropy"):
        net.gradients(X, y, cost="log_likelihood")
