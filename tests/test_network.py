"""The Network API: shapes, forward/predict/evaluate against direct NumPy, labels, inits, seeds,
chunked passes, dtypes, parameters."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import all_arrays, assert_params_equal, reference_cost, reference_forward, seeded_rng
from hypothesis import given, settings
from hypothesis import strategies as st

import gpunet
from gpunet.core import network

ACTIVATION_STACKS = [
    ["sigmoid", "sigmoid"],
    ["relu", "tanh", "softmax"],
    ["leaky_relu", "gelu", "identity"],
    ["softplus", "softmax"],
    ["tanh", "sigmoid"],
]


def test_shapes_of_weights_and_biases():
    net = gpunet.Network([5, 4, 3, 2], "sigmoid", seed=0, backend="numpy")
    assert [w.shape for w in net.weights] == [(4, 5), (3, 4), (2, 3)]
    assert [b.shape for b in net.biases] == [(4,), (3,), (2,)]
    weights, biases = net.get_params()
    assert [w.shape for w in weights] == [(4, 5), (3, 4), (2, 3)]
    assert [b.shape for b in biases] == [(4,), (3,), (2,)]
    assert net.n_parameters == 4 * 5 + 3 * 4 + 2 * 3 + 4 + 3 + 2
    assert net.sizes == [5, 4, 3, 2]


def test_one_activation_name_applies_to_every_layer_and_a_list_per_layer():
    assert (
        gpunet.Network([3, 4, 5, 2], "tanh", seed=0, backend="numpy").activation_names
        == ["tanh"] * 3
    )
    names = ["relu", "gelu", "softmax"]
    assert gpunet.Network([3, 4, 5, 2], names, seed=0, backend="numpy").activation_names == names


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activations", ACTIVATION_STACKS)
def test_forward_equals_direct_numpy(activations, dtype):
    rng = seeded_rng("forward", activations, dtype)
    sizes = [6] + [5] * (len(activations) - 1) + [4]
    net = gpunet.Network(sizes, activations, dtype=dtype, seed=3, backend="numpy")
    X = rng.standard_normal((9, 6))
    out = net.forward(X)
    assert out.shape == (9, 4)
    assert out.dtype == np.dtype(dtype)
    _, want = reference_forward(*net.get_params(), activations, X)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out, want.T, rtol=rtol, atol=rtol * 1e-2)


def test_calls_do_not_modify_their_inputs(small_data):
    X, y, Y = small_data
    copies = X.copy(), y.copy(), Y.copy()
    net = gpunet.Network([3, 4, 2], "relu", dtype="float64", seed=0, backend="numpy")
    net.forward(X)
    net.gradients(X, y, "quadratic")
    net.evaluate(X, Y, "quadratic")
    net.fit(X, y, epochs=1, batch_size=2, lr=0.1, cost="quadratic", progress=False)
    for array, copy in zip((X, y, Y), copies):
        np.testing.assert_array_equal(array, copy)


def test_predict_is_argmax_of_forward():
    rng = seeded_rng("predict")
    net = gpunet.Network([6, 8, 5], ["tanh", "softmax"], dtype="float64", seed=1, backend="numpy")
    X = rng.standard_normal((40, 6))
    labels = net.predict(X)
    np.testing.assert_array_equal(labels, np.argmax(net.forward(X), axis=1))
    assert labels.shape == (40,)
    assert np.issubdtype(labels.dtype, np.integer)


@pytest.mark.parametrize(
    ("activations", "cost", "natural"),
    [
        (["tanh", "softmax"], "log_likelihood", None),
        (["tanh", "softmax"], None, "log_likelihood"),  # softmax's natural cost
        (["relu", "sigmoid"], None, "cross_entropy"),  # sigmoid's natural cost
        (["relu", "sigmoid"], "quadratic", None),
        (["gelu", "tanh"], None, "quadratic"),  # the default elsewhere
    ],
)
def test_evaluate_matches_direct_computation(activations, cost, natural):
    rng = seeded_rng("evaluate", activations, cost)
    net = gpunet.Network([5, 7, 4], activations, dtype="float64", seed=2, backend="numpy")
    X = rng.standard_normal((30, 5))
    y = rng.integers(0, 4, size=30)
    result = net.evaluate(X, y, cost)
    z, a = reference_forward(*net.get_params(), activations, X)
    Y = np.eye(4)[y].T
    want_cost = reference_cost(cost or natural, activations[-1], z, a, Y)
    assert result["cost"] == pytest.approx(want_cost, rel=1e-10)
    assert result["accuracy"] == pytest.approx(np.mean(np.argmax(a, axis=0) == y), abs=1e-12)
    assert net.cost(X, y, cost) == pytest.approx(want_cost, rel=1e-10)


@pytest.mark.parametrize("cost", ["quadratic", "log_likelihood"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_integer_labels_and_one_hot_give_identical_cost_and_gradients(cost, dtype):
    rng = seeded_rng("labels", cost, dtype)
    net = gpunet.Network([4, 6, 3], ["sigmoid", "softmax"], dtype=dtype, seed=5, backend="numpy")
    X = rng.standard_normal((11, 4))
    y = rng.integers(0, 3, size=11)
    one_hot = np.eye(3)[y]
    assert net.evaluate(X, y, cost) == net.evaluate(X, one_hot, cost)
    from_labels = all_arrays(net.gradients(X, y, cost))
    from_one_hot = all_arrays(net.gradients(X, one_hot, cost))
    for a, b in zip(from_labels, from_one_hot):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cost", ["cross_entropy", "quadratic"])
def test_single_sigmoid_output_binary_classification(cost):
    rng = seeded_rng("binary", cost)
    net = gpunet.Network([2, 5, 1], "sigmoid", dtype="float64", seed=4, backend="numpy")
    X = rng.standard_normal((50, 2))
    y = rng.integers(0, 2, size=50)
    out = net.forward(X)
    assert out.shape == (50, 1)
    want_predictions = (out[:, 0] > 0.5).astype(int)
    np.testing.assert_array_equal(net.predict(X), want_predictions)
    assert set(np.unique(net.predict(X))) <= {0, 1}
    result = net.evaluate(X, y, cost)
    assert result["accuracy"] == pytest.approx(np.mean(want_predictions == y), abs=1e-12)
    z, a = reference_forward(*net.get_params(), ["sigmoid", "sigmoid"], X)
    assert result["cost"] == pytest.approx(
        reference_cost(cost, "sigmoid", z, a, y[None, :]), rel=1e-10
    )
    # the same as targets of shape (m, 1)
    assert net.evaluate(X, y[:, None].astype(float), cost) == result


def test_regression_targets_give_accuracy_none():
    rng = seeded_rng("regression")
    net = gpunet.Network([3, 4, 2], ["tanh", "identity"], dtype="float64", seed=0, backend="numpy")
    X = rng.standard_normal((8, 3))
    Y = rng.standard_normal((8, 2))
    result = net.evaluate(X, Y, "quadratic")
    assert result["accuracy"] is None
    _, a = reference_forward(*net.get_params(), ["tanh", "identity"], X)
    assert result["cost"] == pytest.approx(0.5 * np.sum((a - Y.T) ** 2) / 8, rel=1e-12)
    history = net.fit(X, Y, epochs=2, batch_size=4, lr=0.01, progress=False)
    assert "accuracy" not in history and len(history["cost"]) == 2


def test_seeds_are_reproducible():
    a = gpunet.Network([5, 6, 3], "sigmoid", seed=42, backend="numpy")
    b = gpunet.Network([5, 6, 3], "sigmoid", seed=42, backend="numpy")
    c = gpunet.Network([5, 6, 3], "sigmoid", seed=43, backend="numpy")
    assert_params_equal(a.get_params(), b.get_params())
    assert not np.array_equal(a.get_params()[0][0], c.get_params()[0][0])
    # drawn on the host in float64: the float32 net holds the same numbers, rounded
    d = gpunet.Network([5, 6, 3], "sigmoid", seed=42, dtype="float64", backend="numpy")
    for x, y in zip(all_arrays(a.get_params()), all_arrays(d.get_params())):
        np.testing.assert_array_equal(x, y.astype(np.float32))


def test_no_seed_gives_different_networks():
    a = gpunet.Network([20, 20], "sigmoid", backend="numpy")
    b = gpunet.Network([20, 20], "sigmoid", backend="numpy")
    assert not np.array_equal(a.get_params()[0][0], b.get_params()[0][0])


@pytest.mark.parametrize(
    ("init", "weight_std", "bias_std"),
    [
        ("normal", lambda n_in, n_out: 1.0, 1.0),
        ("lecun", lambda n_in, n_out: (1 / n_in) ** 0.5, 1.0),
        ("xavier", lambda n_in, n_out: (2 / (n_in + n_out)) ** 0.5, 0.0),
        ("he", lambda n_in, n_out: (2 / n_in) ** 0.5, 0.0),
    ],
)
def test_init_has_documented_std(init, weight_std, bias_std):
    n_in, n_out = 400, 2500  # a million weights: the sample std is within ~0.1%
    net = gpunet.Network(
        [n_in, n_out], "sigmoid", init=init, seed=0, dtype="float64", backend="numpy"
    )
    (w,), (b,) = net.get_params()
    want = weight_std(n_in, n_out)
    assert w.std() == pytest.approx(want, rel=0.01)
    assert abs(w.mean()) < 0.01 * want
    if bias_std:
        assert b.std() == pytest.approx(bias_std, rel=0.08)
        assert abs(b.mean()) < 0.1
    else:
        np.testing.assert_array_equal(b, 0.0)


def test_forward_predict_evaluate_on_more_rows_than_chunk():
    rng = seeded_rng("chunk")
    m = 2 * network.CHUNK + 37
    net = gpunet.Network([5, 4, 3], ["tanh", "softmax"], dtype="float64", seed=0, backend="numpy")
    X = rng.standard_normal((m, 5))
    y = rng.integers(0, 3, size=m)
    out = net.forward(X)
    assert out.shape == (m, 3)
    pieces = np.vstack([net.forward(X[i : i + 1000]) for i in range(0, m, 1000)])
    np.testing.assert_allclose(out, pieces, rtol=1e-13, atol=0)
    z, a = reference_forward(*net.get_params(), ["tanh", "softmax"], X)
    np.testing.assert_allclose(out, a.T, rtol=1e-12)
    np.testing.assert_array_equal(net.predict(X), np.argmax(a, axis=0))
    result = net.evaluate(X, y, "log_likelihood")
    assert result["cost"] == pytest.approx(
        reference_cost("log_likelihood", "softmax", z, a, np.eye(3)[y].T), rel=1e-10
    )
    assert result["accuracy"] == pytest.approx(np.mean(np.argmax(a, axis=0) == y))


def test_float32_network_stays_float32_with_float64_input():
    rng = seeded_rng("float32")
    net = gpunet.Network([4, 5, 3], "sigmoid", dtype="float32", seed=0, backend="numpy")
    X = rng.standard_normal((20, 4))  # float64
    y = rng.integers(0, 3, size=20)
    assert X.dtype == np.float64
    net.fit(X, y, epochs=1, batch_size=5, lr=0.5, progress=False)
    for array in [*net.weights, *net.biases, *net.grads_w, *net.grads_b]:
        assert array.dtype == np.float32
    for array in all_arrays(net.get_params()):
        assert array.dtype == np.float32
    for array in all_arrays(net.gradients(X, y)):
        assert array.dtype == np.float32
    assert net.forward(X).dtype == np.float32
    assert isinstance(net.cost(X, y), float)


def test_float64_network_trains_in_float64():
    rng = seeded_rng("float64")
    net = gpunet.Network([4, 5, 3], "sigmoid", dtype="float64", seed=0, backend="numpy")
    X = rng.standard_normal((30, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    before = net.cost(X, y)
    net.fit(X, y, epochs=20, batch_size=5, lr=0.5, progress=False, seed=0)
    assert net.cost(X, y) < before
    assert all(p.dtype == np.float64 for p in all_arrays(net.get_params()))
    assert net.forward(X).dtype == np.float64


def test_get_params_set_params_round_trip_and_copies():
    rng = seeded_rng("params")
    net = gpunet.Network([3, 4, 2], "sigmoid", dtype="float64", seed=0, backend="numpy")
    weights = [rng.standard_normal((4, 3)), rng.standard_normal((2, 4))]
    biases = [rng.standard_normal(4), rng.standard_normal(2)]
    net.set_params(weights, biases)
    got_w, got_b = net.get_params()
    for a, b in zip(got_w + got_b, weights + biases):
        np.testing.assert_array_equal(a, b)
    # get_params gives copies, and set_params copied its input
    got_w[0][...] = 99.0
    weights[1][...] = 77.0
    assert not (net.get_params()[0][0] == 99.0).any()
    assert not (net.get_params()[0][1] == 77.0).any()
    # and the network computes with the new parameters
    X = rng.standard_normal((5, 3))
    _, a = reference_forward(*net.get_params(), ["sigmoid", "sigmoid"], X)
    np.testing.assert_allclose(net.forward(X), a.T, rtol=1e-12)
    # another network given these parameters is the same function
    other = gpunet.Network([3, 4, 2], "sigmoid", dtype="float64", seed=99, backend="numpy")
    other.set_params(*net.get_params())
    np.testing.assert_array_equal(other.forward(X), net.forward(X))


def test_set_params_converts_to_the_network_dtype():
    net = gpunet.Network([2, 2], "sigmoid", dtype="float32", seed=0, backend="numpy")
    net.set_params([np.full((2, 2), 0.1)], [np.array([1.0, 2.0])])
    (w,), (b,) = net.get_params()
    assert w.dtype == np.float32 and b.dtype == np.float32
    np.testing.assert_array_equal(w, np.float32(0.1))


@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    m=st.integers(1, 7),
    seed=st.integers(0, 2**31 - 1),
)
@settings(max_examples=30, deadline=None, derandomize=True)
def test_forward_shape_and_reference_for_random_architectures(sizes, m, seed):
    rng = np.random.default_rng(seed)
    names = ["tanh"] * (len(sizes) - 2) + ["sigmoid"]
    net = gpunet.Network(sizes, names, dtype="float64", seed=seed, backend="numpy")
    X = rng.standard_normal((m, sizes[0]))
    out = net.forward(X)
    assert out.shape == (m, sizes[-1])
    np.testing.assert_allclose(out, reference_forward(*net.get_params(), names, X)[1].T, rtol=1e-12)
    grads_w, grads_b = net.gradients(X, rng.random((m, sizes[-1])), "quadratic")
    assert [g.shape for g in grads_w] == [w.shape for w in net.weights]
    assert [g.shape for g in grads_b] == [b.shape for b in net.biases]


def test_explicit_numpy_backend():
    net = gpunet.Network([2, 2], backend="numpy", seed=0)
    assert net.backend.name == "numpy"
    assert "numpy" in net.backend_reason
    assert isinstance(net.forward(np.ones((1, 2))), np.ndarray)
