"""Bad input: a TypeError or ValueError that names the argument, raised before anything changes."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import assert_params_equal

import gpunet
from gpunet.core.backends.cupy_backend import cupy_unavailable

NO_CUPY = cupy_unavailable()


def rejects(net, call, error, pattern):
    """call() raises `error` with a message matching `pattern`; net's parameters are unchanged."""
    before = net.get_params()
    with pytest.raises(error) as caught:
        call()
    assert re.search(pattern, str(caught.value)), str(caught.value)
    assert_params_equal(before, net.get_params())
    return caught.value


@pytest.fixture
def net():
    return gpunet.Network([3, 4, 2], "sigmoid", dtype="float64", seed=0, backend="numpy")


X_GOOD = np.arange(15, dtype=float).reshape(5, 3) / 10
Y_GOOD = np.array([0, 1, 1, 0, 1])

CALLS = {
    "fit": lambda net, X, Y: net.fit(X, Y, epochs=1, batch_size=2, lr=0.1, progress=False),
    "evaluate": lambda net, X, Y: net.evaluate(X, Y),
    "cost": lambda net, X, Y: net.cost(X, Y),
    "gradients": lambda net, X, Y: net.gradients(X, Y),
    "gradcheck": lambda net, X, Y: gpunet.gradcheck(net, X, Y),
    "forward": lambda net, X, Y: net.forward(X),
    "predict": lambda net, X, Y: net.predict(X),
}


def _with_nan():
    X = X_GOOD.copy()
    X[2, 1] = np.nan
    return X


def _with_inf():
    X = X_GOOD.copy()
    X[0, 0] = -np.inf
    return X


BAD_X = {
    "wrong width": (np.zeros((5, 4)), ValueError),
    "1-D": (np.zeros(3), ValueError),
    "3-D": (np.zeros((5, 3, 1)), ValueError),
    "empty": (np.zeros((0, 3)), ValueError),
    "NaN": (_with_nan(), ValueError),
    "inf": (_with_inf(), ValueError),
    "strings": (np.array([["a", "b", "c"]] * 5), TypeError),
}


@pytest.mark.parametrize("method", list(CALLS))
@pytest.mark.parametrize("case", list(BAD_X))
def test_bad_features(net, method, case):
    X, error = BAD_X[case]
    rejects(net, lambda: CALLS[method](net, X, Y_GOOD), error, r"\bX\b")


def _y_nan():
    Y = np.eye(2)[Y_GOOD]
    Y[1, 0] = np.nan
    return Y


BAD_Y = {
    "too few rows": (Y_GOOD[:4], ValueError),
    "too many rows": (np.append(Y_GOOD, 0), ValueError),
    "label out of range": (np.array([0, 1, 2, 0, 1]), ValueError),
    "negative label": (np.array([0, -1, 1, 0, 1]), ValueError),
    "float 1-D": (Y_GOOD.astype(float), TypeError),
    "wrong width": (np.zeros((5, 3)), ValueError),
    "3-D": (np.zeros((5, 2, 1)), ValueError),
    "NaN": (_y_nan(), ValueError),
    "scalar": (np.int64(1), ValueError),
    "strings": (np.array(["a"] * 5), TypeError),
}


@pytest.mark.parametrize("method", ["fit", "evaluate", "cost", "gradients", "gradcheck"])
@pytest.mark.parametrize("case", list(BAD_Y))
def test_bad_targets(net, method, case):
    Y, error = BAD_Y[case]
    rejects(net, lambda: CALLS[method](net, X_GOOD, Y), error, r"\bY\b")


def test_targets_outside_unit_interval_for_cross_entropy(net):
    Y = np.eye(2)[Y_GOOD] * 2.0
    rejects(
        net,
        lambda: net.fit(
            X_GOOD, Y, epochs=1, batch_size=2, lr=0.1, cost="cross_entropy", progress=False
        ),
        ValueError,
        r"\bY\b.*cross_entropy",
    )


def test_log_likelihood_softmax_needs_rows_summing_to_one():
    net = gpunet.Network([3, 2], "softmax", dtype="float64", seed=0, backend="numpy")
    Y = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.0, 0.0]])
    rejects(
        net,
        lambda: net.fit(
            X_GOOD, Y, epochs=1, batch_size=2, lr=0.1, cost="log_likelihood", progress=False
        ),
        ValueError,
        r"\bY\b.*sum",
    )
    rejects(net, lambda: net.gradients(X_GOOD, Y, "log_likelihood"), ValueError, r"\bY\b")
    # distributions are fine
    net.gradients(X_GOOD, np.full((5, 2), 0.5), "log_likelihood")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_float64_values_that_overflow_a_float32_network_are_rejected():
    """X is checked for inf before it is cast to the network's dtype: 1e300 passes the check and
    becomes inf in a float32 network."""
    net = gpunet.Network([3, 4, 2], "sigmoid", dtype="float32", seed=0, backend="numpy")
    X = X_GOOD.copy()
    X[0, 0] = 1e300
    rejects(net, lambda: CALLS["fit"](net, X, Y_GOOD), ValueError, r"\bX\b")


# --- construction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"sizes": [784]}, ValueError, "sizes"),
        ({"sizes": []}, ValueError, "sizes"),
        ({"sizes": [0, 3]}, ValueError, "sizes"),
        ({"sizes": [3, -2]}, ValueError, "sizes"),
        ({"sizes": [2.5, 3]}, ValueError, "sizes"),
        ({"sizes": [True, 3]}, ValueError, "sizes"),
        ({"sizes": 5}, TypeError, "sizes"),
        ({"activations": "sigmoidd"}, ValueError, "activation.*sigmoidd"),
        ({"activations": 3}, TypeError, "activation"),
        ({"activations": ["sigmoid"]}, ValueError, "activations"),
        ({"activations": ["sigmoid"] * 3}, ValueError, "activations"),
        ({"activations": ["sigmoid", "nope"]}, ValueError, "activation.*nope"),
        ({"init": "glorot"}, ValueError, "init.*glorot"),
        ({"dtype": "float16"}, ValueError, "dtype.*float16"),
        ({"dtype": "int32"}, ValueError, "dtype"),
        ({"dtype": np.float16}, ValueError, "dtype"),
        ({"dtype": True}, ValueError, "dtype"),
        ({"backend": "tpu"}, ValueError, "backend.*tpu"),
        ({"seed": "abc"}, TypeError, "seed.*integer"),
        ({"seed": 1.5}, TypeError, "seed.*integer"),
        ({"seed": True}, TypeError, "seed.*integer"),
        ({"seed": -1}, ValueError, "seed.*>= 0"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, pattern):
    arguments = {"sizes": [3, 4, 2], "activations": "sigmoid"} | kwargs
    sizes = arguments.pop("sizes")
    with pytest.raises(error, match=pattern):
        gpunet.Network(sizes, **arguments)


@pytest.mark.parametrize("dtype", [np.float32, np.dtype("float64"), "float32", np.float64])
def test_dtype_as_numpy_users_write_it(dtype):
    net = gpunet.Network([3, 2], "sigmoid", backend="numpy", dtype=dtype, seed=np.int64(3))
    assert net.dtype == np.dtype(dtype)
    assert net.weights[0].dtype == np.dtype(dtype)


@pytest.mark.parametrize("output", ["softmax", "relu", "identity", "tanh"])
def test_cross_entropy_needs_sigmoid_output(output):
    net = gpunet.Network([3, 2], output, dtype="float64", seed=0, backend="numpy")
    Y = np.eye(2)[Y_GOOD]
    for call in (
        lambda: net.fit(
            X_GOOD, Y, epochs=1, batch_size=2, lr=0.1, cost="cross_entropy", progress=False
        ),
        lambda: net.evaluate(X_GOOD, Y, "cross_entropy"),
        lambda: net.gradients(X_GOOD, Y, "cross_entropy"),
    ):
        rejects(net, call, ValueError, f"cross_entropy.*{output}")


@pytest.mark.parametrize("output", ["relu", "identity", "tanh"])
def test_log_likelihood_needs_probability_outputs(output):
    net = gpunet.Network([3, 2], output, dtype="float64", seed=0, backend="numpy")
    rejects(
        net,
        lambda: net.gradients(X_GOOD, Y_GOOD, "log_likelihood"),
        ValueError,
        f"log_likelihood.*{output}",
    )


@pytest.mark.parametrize("method", ["fit", "evaluate", "cost", "gradients", "gradcheck"])
def test_unknown_cost(net, method):
    calls = {
        "fit": lambda: net.fit(
            X_GOOD, Y_GOOD, epochs=1, batch_size=2, lr=0.1, cost="hinge", progress=False
        ),
        "evaluate": lambda: net.evaluate(X_GOOD, Y_GOOD, "hinge"),
        "cost": lambda: net.cost(X_GOOD, Y_GOOD, "hinge"),
        "gradients": lambda: net.gradients(X_GOOD, Y_GOOD, "hinge"),
        "gradcheck": lambda: gpunet.gradcheck(net, X_GOOD, Y_GOOD, "hinge"),
    }
    rejects(net, calls[method], ValueError, "cost.*hinge")


# --- fit's options --------------------------------------------------------------------------


def _fit(net, **overrides):
    options = {"epochs": 1, "batch_size": 2, "lr": 0.1, "progress": False} | overrides
    return lambda: net.fit(X_GOOD, Y_GOOD, **options)


@pytest.mark.parametrize(
    ("overrides", "error", "pattern"),
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": -1}, ValueError, "batch_size"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"batch_size": True}, TypeError, "batch_size"),
        ({"batch_size": None}, TypeError, "batch_size"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"epochs": -3}, ValueError, "epochs"),
        ({"epochs": 1.0}, TypeError, "epochs"),
        ({"lr": 0}, ValueError, r"\blr\b"),
        ({"lr": -1}, ValueError, r"\blr\b"),
        ({"lr": float("nan")}, ValueError, r"\blr\b"),
        ({"lr": float("inf")}, ValueError, r"\blr\b"),
        ({"lr": "0.1"}, TypeError, r"\blr\b"),
        ({"lr": True}, TypeError, r"\blr\b"),
        ({"lr": None, "optimizer": "sgd"}, ValueError, r"\blr\b"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer.*rmsprop"),
        ({"optimizer": 3}, TypeError, "optimizer"),
        ({"optimizer": gpunet.SGD(0.1)}, ValueError, r"\blr\b"),  # lr given twice
        ({"validation": X_GOOD}, TypeError, "validation"),
        ({"validation": (X_GOOD,)}, TypeError, "validation"),
        ({"validation": (X_GOOD, Y_GOOD, Y_GOOD)}, TypeError, "validation"),
        ({"callbacks": [3]}, TypeError, "callback"),
        ({"callbacks": [print, "stop"]}, TypeError, "callback"),
    ],
)
def test_bad_fit_options(net, overrides, error, pattern):
    rejects(net, _fit(net, **overrides), error, pattern)


def test_bad_validation_data_is_named_as_validation(net):
    """A wrong validation X must not be reported as if it were the training X."""
    X_val = np.zeros((4, 5))
    rejects(net, _fit(net, validation=(X_val, Y_GOOD[:4])), ValueError, "validation|X_val")
    rejects(
        net,
        _fit(net, validation=(X_GOOD, np.array([0, 1, 7, 0, 1]))),
        ValueError,
        "validation|Y_val",
    )


def test_a_bare_callable_as_callbacks(net):
    """callbacks=f instead of [f]: either accepted or a TypeError that names callbacks."""
    calls = []
    try:
        _fit(net, callbacks=lambda epoch, metrics: calls.append(epoch))()
    except TypeError as error:
        assert "callback" in str(error), str(error)
    else:
        assert calls == [1]


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [
        (lambda: gpunet.SGD(0), ValueError, r"\blr\b"),
        (lambda: gpunet.SGD(0.1, momentum=1.0), ValueError, "momentum"),
        (lambda: gpunet.SGD(0.1, momentum=-0.1), ValueError, "momentum"),
        (lambda: gpunet.SGD(0.1, nesterov=True), ValueError, "nesterov"),
        (lambda: gpunet.SGD(0.1, weight_decay=-1), ValueError, "weight_decay"),
        (lambda: gpunet.Adam(float("nan")), ValueError, r"\blr\b"),
        (lambda: gpunet.Adam(betas=(1.0, 0.999)), ValueError, "betas"),
        (lambda: gpunet.Adam(betas=(0.9, -0.5)), ValueError, "betas"),
        (lambda: gpunet.Adam(eps=0), ValueError, "eps"),
        (lambda: gpunet.Adam(weight_decay=float("inf")), ValueError, "weight_decay"),
    ],
)
def test_bad_optimizer_hyperparameters(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_gradcheck_bad_eps(net):
    rejects(net, lambda: gpunet.gradcheck(net, X_GOOD, Y_GOOD, eps=0), ValueError, "eps")


# --- set_params -------------------------------------------------------------------------


def params(net):
    return net.get_params()


@pytest.mark.parametrize(
    ("mutate", "error", "pattern"),
    [
        (lambda w, b: (w[:1], b), ValueError, "weight"),
        (lambda w, b: (w, [*b, np.zeros(2)]), ValueError, "bias"),
        (lambda w, b: ([w[0].T, w[1]], b), ValueError, r"weights\[0\].*shape"),
        (lambda w, b: (w, [b[0], np.zeros(3)]), ValueError, r"biases\[1\].*shape"),
        (lambda w, b: (w, [b[0], np.zeros((2, 1))]), ValueError, r"biases\[1\]"),
        (lambda w, b: ([w[0], w[1].astype(int)], b), TypeError, r"weights\[1\].*dtype"),
        (lambda w, b: (w, [b[0].astype(bool), b[1]]), TypeError, r"biases\[0\]"),
        (lambda w, b: ([w[0], np.where(w[1] > 0, np.nan, w[1])], b), ValueError, r"weights\[1\]"),
        (lambda w, b: (w, [b[0], np.array([1.0, np.inf])]), ValueError, r"biases\[1\]"),
    ],
)
def test_bad_set_params(net, mutate, error, pattern):
    """Checked in full before any is copied: valid leading arrays must not be half-applied."""
    weights, biases = net.get_params()
    weights = [w + 1.0 for w in weights]  # valid new values that must not land
    biases = [b + 1.0 for b in biases]
    new_w, new_b = mutate(weights, biases)
    rejects(net, lambda: net.set_params(new_w, new_b), error, pattern)


# --- backends ---------------------------------------------------------------------------


@pytest.mark.skipif(NO_CUPY is None, reason="CuPy is usable here")
def test_cupy_backend_unavailable_is_a_clear_error():
    with pytest.raises(gpunet.BackendUnavailableError) as caught:
        gpunet.Network([3, 2], backend="cupy")
    assert not isinstance(caught.value, ImportError)
    assert "CuPy" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(NO_CUPY is None, reason="CuPy is usable here")
def test_auto_backend_falls_back_to_numpy_and_says_why():
    net = gpunet.Network([3, 2], backend="auto", seed=0)
    assert net.backend.name == "numpy"
    reason = net.backend_reason
    assert isinstance(reason, str) and reason.strip()
    assert "\n" not in reason
    assert "numpy" in reason and "CuPy" in reason
    default = gpunet.Network([3, 2], seed=0)  # auto is the default
    assert default.backend.name == "numpy" and default.backend_reason == reason


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [
        (lambda: gpunet.SGD(0.1, momentum=0.9, nesterov="no"), TypeError, "nesterov"),
        (lambda: gpunet.SGD(0.1, momentum=0.9, nesterov=1), TypeError, "nesterov"),
        (lambda: gpunet.Adam(betas=0.9), TypeError, "betas must be a pair"),
        (lambda: gpunet.Adam(betas=(0.9,)), TypeError, "betas must be a pair"),
        (lambda: gpunet.Adam(betas=(0.9, 0.999, 0.5)), TypeError, "betas must be a pair"),
    ],
)
def test_optimizer_arguments_are_checked(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()
