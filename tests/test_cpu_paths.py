"""The NumPy backend's faster forms and fit's shortcuts give what the plain forms give:
ReLU against a row of zeros, BP4's outer product at m = 1, hidden layers' contiguous columns
at large batches, plain SGD with lr folded into BP1, unshuffled batches as views, the finite
checks of large inputs, the last step's probe."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import seeded_rng

import gpunet
from gpunet.core.backends import NumpyBackend, numpy_backend
from gpunet.core.backends.numpy_backend import SMALL_RELU, ZEROS_ROW
from gpunet.core.checks import SMALL_ARRAY, all_finite, check_features
from gpunet.train import train_step


@pytest.mark.parametrize(
    "shape", [(3, 5), (16, SMALL_RELU // 16 + 1), (7, ZEROS_ROW // 7 + 3), (4, 2 * ZEROS_ROW)]
)
def test_relu_against_zeros_is_numpys_maximum(shape):
    z = seeded_rng("relu", shape).standard_normal(shape).astype(np.float32)
    z[0, :3] = [np.nan, -0.0, np.inf]
    out = np.empty_like(z)
    NumpyBackend()._relu(z, out)
    np.testing.assert_array_equal(out, np.maximum(z, 0.0))
    # in place, as the forward pass runs it (A overwrites Z)
    NumpyBackend()._relu(z, z)
    np.testing.assert_array_equal(z, out)


def test_relu_against_zeros_in_contiguous_columns():
    z = np.asfortranarray(seeded_rng("relu F").standard_normal((40, 300)).astype(np.float32))
    z[5, 7] = np.nan
    expected, out = np.maximum(z, 0.0), np.empty_like(z)  # both F-ordered
    np.testing.assert_array_equal(NumpyBackend()._relu(z, out), expected)
    # a C-ordered output beside F-ordered input takes the plain form, with the same values
    rows = np.empty((40, 300), np.float32)
    np.testing.assert_array_equal(NumpyBackend()._relu(z, rows), expected)


def test_relu_of_a_strided_view():
    z = seeded_rng("relu view").standard_normal((64, 300)).astype(np.float32)
    view, out = z[:, ::3], np.empty((64, 100), np.float32)
    np.testing.assert_array_equal(NumpyBackend()._relu(view, out), np.maximum(view, 0.0))


@pytest.mark.parametrize("n, k", [(5, 7), (1, 4), (6, 1)])
def test_an_inner_dimension_of_one_is_the_outer_product(n, k):
    rng = seeded_rng("outer", n, k)
    a, b = rng.standard_normal((n, 1)), rng.standard_normal((k, 1))
    out = np.empty((n, k))
    NumpyBackend().matmul(a, b.T, out=out)
    np.testing.assert_array_equal(out, np.matmul(a, b.T))


class RuleSGD(gpunet.SGD):
    """Plain SGD through optimizers.sgd_rule: fit folds lr into BP1 only for SGD itself."""


def _fit(optimizer, X, y, epochs, batch_size):
    net = gpunet.Network(
        [12, 9, 4], ["relu", "softmax"], backend="numpy", dtype=X.dtype.name, seed=2
    )
    history = net.fit(
        X, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer, seed=1, progress=False
    )
    return net, history


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sgd_with_lr_folded_into_bp1_follows_the_rule(dtype):
    rng = seeded_rng("fold", dtype)
    X, y = rng.standard_normal((96, 12)).astype(dtype), rng.integers(0, 4, 96)
    tolerance = {"float32": 1e-5, "float64": 1e-12}[dtype]
    # one step: the parameters agree to rounding
    folded, _ = _fit(gpunet.SGD(0.3), X, y, epochs=1, batch_size=96)
    rule, _ = _fit(RuleSGD(0.3), X, y, epochs=1, batch_size=96)
    np.testing.assert_allclose(folded.params, rule.params, rtol=tolerance, atol=tolerance)
    # and the training curves over epochs
    _, folded_history = _fit(gpunet.SGD(0.3), X, y, epochs=6, batch_size=8)
    _, rule_history = _fit(RuleSGD(0.3), X, y, epochs=6, batch_size=8)
    np.testing.assert_allclose(folded_history["cost"], rule_history["cost"], rtol=100 * tolerance)
    assert folded_history["cost"][-1] < folded_history["cost"][0]


def test_a_slice_of_rows_steps_as_their_gather():
    rng = seeded_rng("slice")
    X, y = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)
    nets = [gpunet.Network([6, 5, 3], "sigmoid", backend="numpy", seed=0) for _ in range(2)]
    cost = nets[0].cost_function(None)
    for net, batch in zip(nets, (slice(8, 24), np.arange(8, 24))):
        checked_X, targets, _ = net.checked_inputs(X, y, cost)
        ws = train_step(net, checked_X, targets, batch, cost, gpunet.SGD(0.5))
        np.testing.assert_array_equal(ws.inputs, X[8:24].astype(np.float32))
    np.testing.assert_allclose(nets[0].params, nets[1].params, rtol=1e-6)


def test_unshuffled_fit_is_deterministic_and_learns():
    X, y = gpunet.datasets.digits()
    runs = []
    for _ in range(2):
        net = gpunet.Network([64, 32, 10], ["relu", "softmax"], backend="numpy", seed=0)
        history = net.fit(X, y, epochs=3, batch_size=50, lr=0.1, shuffle=False, progress=False)
        runs.append((net.params.copy(), history["cost"]))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1][-1] < runs[0][1][0]


def test_large_inputs_are_checked_entry_by_entry_only_when_their_sums_fail():
    X = seeded_rng("finite").random((SMALL_ARRAY // 100 + 1, 100)).astype(np.float32)
    assert all_finite(X)
    X[3, 7] = 3e38  # finite, but its row sum overflows: the entry-by-entry look says finite
    X[3, 8] = 3e38
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all_finite(X)
        check_features(X, 100, np.float32)
    for bad in (np.nan, np.inf, -np.inf):
        Y = X.copy()
        Y[-1, -1] = bad
        assert not all_finite(Y)
        with pytest.raises(ValueError, match="contains NaN or inf"):
            check_features(Y, 100, np.float32)


def test_a_float64_beyond_float32s_range_is_caught_after_the_cast():
    X = np.ones((SMALL_ARRAY // 10 + 1, 10))
    X[5, 5] = 1e300
    with pytest.raises(ValueError, match=r"NaN or inf \(as float32\)"):
        check_features(X, 10, np.float32)


def test_the_probe_of_the_last_step_catches_divergence_in_a_large_batch():
    rng = seeded_rng("probe")
    X, Y = rng.standard_normal((300, 3)), rng.standard_normal((300, 2))
    net = gpunet.Network([3, 4, 2], "identity", backend="numpy", dtype="float32", seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(gpunet.DivergenceError, match="epoch 1"):
            # one step of 300 rows, its cost taken before it: only the probe sees it diverge
            net.fit(X, Y, epochs=1, batch_size=300, lr=1e10, cost="quadratic", progress=False)
    assert np.isfinite(net.params).all()


def test_hidden_layers_keep_contiguous_columns_from_batch_256_the_output_layer_rows():
    net = gpunet.Network([6, 5, 4, 3], ["relu", "sigmoid", "softmax"], backend="numpy", seed=0)
    large, small = (net.workspace(m) for m in (numpy_backend.COLUMNS_FROM, 255))
    for buffers in (large.weighted_input, large.activation, large.delta):
        assert [b.flags.f_contiguous for b in buffers] == [True, True, False]
    for buffers in (small.weighted_input, small.activation, small.delta):
        assert all(b.flags.c_contiguous for b in buffers)


@pytest.mark.parametrize(
    "sizes, activations",
    [([20, 16, 12, 3], ["relu", "tanh", "softmax"]), ([20, 30, 2], ["sigmoid", "sigmoid"])],
)
def test_either_layout_gives_the_same_gradients_outputs_and_training(
    monkeypatch, sizes, activations
):
    rng = seeded_rng("layouts", *sizes)
    X, y = rng.random((600, sizes[0])), rng.integers(0, sizes[-1], 600)
    results = []
    for columns_from in (1, 10**9):  # every batch in contiguous columns, then none
        monkeypatch.setattr(numpy_backend, "COLUMNS_FROM", columns_from)
        net = gpunet.Network(sizes, activations, backend="numpy", dtype="float64", seed=0)
        assert net.workspace(300).weighted_input[0].flags.f_contiguous == (columns_from == 1)
        gradients = net.gradients(X[:300], y[:300])
        history = net.fit(X, y, epochs=4, batch_size=300, lr=0.1, seed=0, progress=False)
        results.append((gradients, history["cost"], net.forward(X), net.predict(X)))
    (grads_f, costs_f, outputs_f, labels_f), (grads_c, costs_c, outputs_c, labels_c) = results
    for mine, theirs in zip(grads_f, grads_c):
        for a, b in zip(mine, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(costs_f, costs_c, rtol=1e-10)
    np.testing.assert_allclose(outputs_f, outputs_c, rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(labels_f, labels_c)
