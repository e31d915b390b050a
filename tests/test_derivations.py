"""docs/derivations.md: BP1–BP4 as a product of explicit Jacobians equals backprop, and every
line of code the derivation quotes is in the file it names."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import seeded_rng, valid_pairs

import gpunet
from gpunet.core.activations import ACTIVATIONS
from gpunet.core.backends import NumpyBackend
from gpunet.tools.cli import main
from gpunet.tools.jacobians import activation_jacobian, check_jacobians

ROOT = Path(__file__).resolve().parents[1]
DERIVATIONS = (ROOT / "docs" / "derivations.md").read_text()
OPS = NumpyBackend()


def targets(rng, output: str, cost: str, m: int, n: int) -> np.ndarray:
    if cost == "quadratic":
        return rng.standard_normal((m, n))
    return np.eye(n)[rng.integers(0, n, m)]  # one-hot: in [0, 1], rows summing to 1


@pytest.mark.parametrize("hidden", list(ACTIVATIONS))
@pytest.mark.parametrize(("output", "cost"), valid_pairs())
def test_the_product_of_explicit_jacobians_is_backprop(hidden, output, cost):
    rng = seeded_rng("jacobians", hidden, output, cost)
    net = gpunet.Network([3, 4, 4, 3], [hidden, hidden, output], backend="numpy", seed=2)
    X = rng.standard_normal((5, 3))
    result = check_jacobians(net, X, targets(rng, output, cost, 5, 3), cost)
    assert result.samples == 5 and result.cost == cost
    assert result.worst < 1e-12, result.errors
    # not a comparison of zeros: the output layer's gradient is there in both
    assert np.linalg.norm(result.backprop_weights[-1]) > 1e-3


def test_the_softmax_jacobian_is_diag_a_minus_a_a_transpose():
    z = np.array([0.5, -1.0, 2.0, 0.0])
    a = np.exp(z) / np.exp(z).sum()
    J = activation_jacobian("softmax", z, a)
    np.testing.assert_allclose(J, np.diag(a) - np.outer(a, a), rtol=0, atol=0)
    np.testing.assert_allclose(J, J.T, rtol=0, atol=0)  # symmetric: Jᵀ v = J v
    np.testing.assert_allclose(J.sum(axis=0), 0.0, atol=1e-16)  # Σ_j a_j = 1 for every z
    # the Jacobian by central differences of softmax itself
    h = 1e-6
    numeric = np.empty((4, 4))
    for k in range(4):
        step = np.eye(4)[k] * h
        up, down = np.exp(z + step), np.exp(z - step)
        numeric[:, k] = (up / up.sum() - down / down.sum()) / (2 * h)
    np.testing.assert_allclose(J, numeric, rtol=1e-8, atol=1e-10)
    # and the code's Jacobian-vector product, which never forms J, gives J v
    v = np.array([1.0, -2.0, 0.5, 3.0])
    product = ACTIVATIONS["softmax"].backward(
        OPS, v[:, None], z[:, None], a[:, None], np.empty((4, 1))
    )
    np.testing.assert_allclose(product[:, 0], J @ v, rtol=1e-14)


@pytest.mark.parametrize("name", [n for n in ACTIVATIONS if n != "softmax"])
def test_elementwise_jacobians_are_diagonal_with_the_slope(name):
    z = np.array([-1.5, -0.2, 0.3, 2.0])
    g = ACTIVATIONS[name]
    a = g.forward(OPS, z[:, None].copy(), np.empty((4, 1)))[:, 0]
    J = activation_jacobian(name, z, a)
    assert np.count_nonzero(J - np.diag(np.diag(J))) == 0
    h = 1e-6
    up = g.forward(OPS, (z + h)[:, None], np.empty((4, 1)))[:, 0]
    down = g.forward(OPS, (z - h)[:, None], np.empty((4, 1)))[:, 0]
    np.testing.assert_allclose(np.diag(J), (up - down) / (2 * h), rtol=1e-7, atol=1e-9)


def test_each_deltas_is_the_workspace_column_times_m():
    # the 1/m sits in the seed: the batch's delta^l column x is δ^l_x / m
    rng = seeded_rng("deltas")
    net = gpunet.Network([3, 5, 4, 3], ["tanh", "sigmoid", "softmax"], backend="numpy")
    net64 = gpunet.Network(net.sizes, net.activation_names, backend="numpy", dtype="float64")
    net64.set_params(*net.get_params())
    X, y = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    result = check_jacobians(net, X, y)
    cost = net64.cost_function(None)
    inputs, labels, _ = net64.checked_inputs(X, y, cost)
    ws = net64.workspace(4)
    net64.backpropagate(inputs, labels, ws, cost)
    weights, _ = net64.get_params()
    for l, delta in enumerate(result.first.deltas(weights)):
        np.testing.assert_allclose(4 * ws.delta[l][:, 0], delta, rtol=1e-12, atol=1e-15)
    # and dA^L/dZ^l has the shape (n_L, n_l)
    assert [p.shape for p in result.first_products] == [(3, 5), (3, 4), (3, 3)]


def test_bad_input_is_the_error_gradients_gives():
    net = gpunet.Network([3, 2], "sigmoid", backend="numpy")
    with pytest.raises(TypeError, match="net must be a gpunet Network"):
        check_jacobians([3, 2], np.zeros((1, 3)), [0])
    with pytest.raises(ValueError, match="label"):
        check_jacobians(net, np.zeros((2, 3)), [0, 5])
    with pytest.raises(ValueError, match="never penalises"):
        check_jacobians(net, np.zeros((2, 3)), [0, 1], "log_likelihood")


def test_the_command_prints_the_check_and_its_verdict(capsys):
    argv = ["--sizes", "3,4,2", "--activations", "tanh,softmax", "--backend", "numpy"]
    assert main(["jacobians", *argv]) == 0
    out = capsys.readouterr().out
    assert "δ^1 = Σ'(Z^1)ᵀ (W^2)ᵀ Σ'(Z^2)ᵀ ∇_A C_x" in out
    assert "jacobians ok" in out and "softmax" in out
    # a tolerance no float meets fails, with exit status 1
    assert main(["jacobians", "--tolerance", "1e-300", "--backend", "numpy"]) == 1
    assert "jacobians FAILED" in capsys.readouterr().out


def test_the_command_checks_its_arguments(capsys):
    assert main(["jacobians", "--samples", "0", "--backend", "numpy"]) == 2
    assert "--samples" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["jacobians", "--sizes", "3,x"])


# --- docs/derivations.md ----------------------------------------------------------------

QUOTES = re.findall(r"`([^`\n]+)` \(\[(gpunet/[\w/]+\.py)\]", DERIVATIONS)


def test_the_derivation_quotes_code():
    assert len(QUOTES) >= 10
    assert {path for _, path in QUOTES} >= {
        "gpunet/core/network.py",
        "gpunet/core/costs.py",
        "gpunet/core/activations.py",
    }


@pytest.mark.parametrize(("code", "path"), QUOTES)
def test_each_quoted_line_is_in_its_file(code, path):
    assert code in (ROOT / path).read_text(), f"{code!r} is not in {path}"


def test_the_derivation_runs_its_check_and_links_it():
    assert "check_jacobians" in DERIVATIONS and "gpunet jacobians" in DERIVATIONS
    for link in re.findall(r"\]\(\.\./([^)#]+)\)", DERIVATIONS):
        assert (ROOT / link).exists(), link
