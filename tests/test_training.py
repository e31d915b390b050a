"""Training: accuracy on real data, the History, callbacks, reproducibility, optimizer updates
against hand-written formulas, divergence."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from conftest import all_arrays, assert_params_equal, classification_data, seeded_rng

import gpunet
from gpunet import datasets

# --- real data ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_split():
    X, y = datasets.digits()
    return datasets.train_test_split(X, y, test_size=0.2, shuffle=True, seed=0)


def test_digits_reaches_95_percent(digits_split):
    X_train, y_train, X_test, y_test = digits_split
    net = gpunet.Network([64, 64, 10], "sigmoid", seed=0, backend="numpy")
    started = time.perf_counter()
    history = net.fit(
        X_train,
        y_train,
        epochs=12,
        batch_size=10,
        lr=0.5,
        cost="cross_entropy",
        seed=0,
        progress=False,
        validation=(X_test, y_test),
    )
    assert time.perf_counter() - started < 10
    accuracy = np.mean(net.predict(X_test) == y_test)
    assert accuracy >= 0.95
    assert history["validation_accuracy"][-1] == pytest.approx(accuracy)
    assert history["cost"][-1] < history["cost"][0]


def test_digits_relu_softmax_reaches_95_percent(digits_split):
    X_train, y_train, X_test, y_test = digits_split
    net = gpunet.Network([64, 64, 10], ["relu", "softmax"], init="he", seed=0, backend="numpy")
    net.fit(X_train, y_train, epochs=12, batch_size=10, lr=0.1, seed=0, progress=False)
    assert net.evaluate(X_test, y_test)["accuracy"] >= 0.95


@pytest.mark.slow
def test_mnist_nielsen_settings(shared_mnist):
    X, y = datasets.mnist(shared_mnist, split="test")
    assert X.shape == (10000, 784) and y.shape == (10000,)
    net = gpunet.Network([784, 30, 10], "sigmoid", seed=0, backend="numpy")
    history = net.fit(
        X[:8000],
        y[:8000],
        epochs=3,
        batch_size=10,
        lr=3.0,
        cost="quadratic",
        seed=0,
        progress=False,
    )
    assert history.epochs == 3
    result = net.evaluate(X[8000:], y[8000:], "quadratic")
    assert result["accuracy"] >= 0.85
    assert np.mean(net.predict(X[8000:]) == y[8000:]) == pytest.approx(result["accuracy"])


# --- History, validation, callbacks ----------------------------------------------------

HISTORY_KEYS = {
    "cost",
    "accuracy",
    "validation_cost",
    "validation_accuracy",
    "seconds",
    "samples_per_second",
}


def test_history_keys_lengths_and_final_validation_metrics():
    X, y = classification_data("history")
    X_val, y_val = classification_data("history-val", m=15)
    net = gpunet.Network([4, 6, 3], ["tanh", "softmax"], dtype="float64", seed=0, backend="numpy")
    history = net.fit(
        X, y, epochs=4, batch_size=8, lr=0.2, progress=False, seed=1, validation=(X_val, y_val)
    )
    assert isinstance(history, gpunet.History) and isinstance(history, dict)
    assert set(history) == HISTORY_KEYS
    assert all(len(values) == 4 for values in history.values())
    assert history.epochs == 4
    final = net.evaluate(X_val, y_val)
    assert history["validation_cost"][-1] == pytest.approx(final["cost"], rel=1e-12)
    assert history["validation_accuracy"][-1] == pytest.approx(final["accuracy"], abs=1e-12)
    assert all(s > 0 for s in history["seconds"])
    for seconds, rate in zip(history["seconds"], history["samples_per_second"]):
        assert rate == pytest.approx(40 / seconds, rel=1e-6)


def test_history_without_validation_or_labels():
    X, y = classification_data("history-plain")
    net = gpunet.Network([4, 3], "softmax", seed=0, backend="numpy")
    assert set(net.fit(X, y, epochs=2, batch_size=8, lr=0.1, progress=False)) == {
        "cost",
        "accuracy",
        "seconds",
        "samples_per_second",
    }
    history = net.fit(
        X,
        np.random.default_rng(0).standard_normal((40, 3)),
        epochs=2,
        batch_size=8,
        lr=0.1,
        cost="quadratic",
        progress=False,
    )
    assert set(history) == {"cost", "seconds", "samples_per_second"}


def test_validation_given_as_a_list_pair():
    X, y = classification_data("validation-list")
    net = gpunet.Network([4, 3], "softmax", seed=0, backend="numpy")
    history = net.fit(X, y, epochs=1, batch_size=8, lr=0.1, progress=False, validation=[X, y])
    assert history["validation_cost"][0] == pytest.approx(net.evaluate(X, y)["cost"], rel=1e-6)


def test_one_batch_epoch_records_cost_before_the_step():
    """With one mini-batch per epoch, the epoch's training cost and accuracy are those of the
    parameters the step started from."""
    X, y = classification_data("one-batch")
    net = gpunet.Network([4, 5, 3], "sigmoid", dtype="float64", seed=0, backend="numpy")
    before = net.evaluate(X, y, "cross_entropy")
    history = net.fit(
        X, y, epochs=1, batch_size=len(X), lr=0.1, cost="cross_entropy", progress=False
    )
    assert history["cost"][0] == pytest.approx(before["cost"], rel=1e-12)
    assert history["accuracy"][0] == pytest.approx(before["accuracy"], abs=1e-12)


def test_callbacks_called_once_per_epoch_with_metrics():
    X, y = classification_data("callbacks")
    calls, other = [], []
    net = gpunet.Network([4, 3], "softmax", seed=0, backend="numpy")
    history = net.fit(
        X,
        y,
        epochs=3,
        batch_size=8,
        lr=0.1,
        progress=False,
        callbacks=[lambda e, m: calls.append((e, dict(m))), lambda e, m: other.append(e)],
    )
    assert [e for e, _ in calls] == [1, 2, 3] and other == [1, 2, 3]
    for i, (_, metrics) in enumerate(calls):
        assert metrics["cost"] == history["cost"][i]
        assert metrics["accuracy"] == history["accuracy"][i]


def test_callback_returning_true_stops_training():
    X, y = classification_data("stop")
    seen = []

    def stop_at_two(epoch, metrics):
        seen.append(epoch)
        return epoch == 2

    net = gpunet.Network([4, 3], "softmax", seed=0, backend="numpy")
    history = net.fit(
        X, y, epochs=10, batch_size=8, lr=0.1, progress=False, callbacks=[stop_at_two]
    )
    assert seen == [1, 2]
    assert history.epochs == 2 and len(history["seconds"]) == 2


# --- reproducibility ---------------------------------------------------------------------


def _trained(shuffle, seed):
    X, y = classification_data("repro")
    net = gpunet.Network([4, 5, 3], "sigmoid", dtype="float64", seed=0, backend="numpy")
    history = net.fit(
        X, y, epochs=2, batch_size=7, lr=0.3, shuffle=shuffle, seed=seed, progress=False
    )
    return net.get_params(), history["cost"]


def test_shuffle_false_is_reproducible_and_ignores_seed():
    params_a, cost_a = _trained(False, 1)
    params_b, cost_b = _trained(False, 1)
    params_c, _ = _trained(False, 2)
    assert_params_equal(params_a, params_b)
    assert cost_a == cost_b
    assert_params_equal(params_a, params_c)


def test_shuffle_with_same_seed_is_reproducible_and_seeds_differ():
    params_a, cost_a = _trained(True, 5)
    params_b, cost_b = _trained(True, 5)
    params_c, _ = _trained(True, 6)
    assert_params_equal(params_a, params_b)
    assert cost_a == cost_b
    assert not np.array_equal(params_a[0][0], params_c[0][0])


# --- divergence ---------------------------------------------------------------------------


def _regression_data():
    rng = seeded_rng("diverge")
    return rng.standard_normal((20, 3)), rng.standard_normal((20, 2))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_divergence_raises_and_restores_parameters(dtype):
    X, Y = _regression_data()
    net = gpunet.Network([3, 4, 2], ["identity", "identity"], dtype=dtype, seed=1, backend="numpy")
    snapshots = [net.get_params()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to inf is expected
        with pytest.raises(gpunet.DivergenceError) as caught:
            net.fit(
                X,
                Y,
                epochs=50,
                batch_size=5,
                lr=1e6,
                cost="quadratic",
                shuffle=False,
                progress=False,
                callbacks=[lambda e, m: snapshots.append(net.get_params())],
            )
    message = str(caught.value)
    epoch = len(snapshots)  # the epoch that diverged: all before it called the callback
    assert f"epoch {epoch}" in message
    assert isinstance(caught.value, FloatingPointError)
    after = net.get_params()
    assert all(np.isfinite(p).all() for p in all_arrays(after))
    # restored to the parameters from the start of the diverging epoch
    assert_params_equal(snapshots[-1], after)


def test_training_never_returns_a_diverged_network():
    """fit either raises DivergenceError or returns a network whose cost on its own training data
    is finite. The epoch's cost is taken before each step, so an update that overflows in the
    last step of the last epoch goes unnoticed."""
    X, Y = _regression_data()
    unnoticed = []
    for epochs in range(1, 7):
        net = gpunet.Network(
            [3, 4, 2], ["identity", "identity"], dtype="float32", seed=1, backend="numpy"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                net.fit(
                    X,
                    Y,
                    epochs=epochs,
                    batch_size=20,
                    lr=1e6,
                    cost="quadratic",
                    shuffle=False,
                    progress=False,
                )
            except gpunet.DivergenceError:
                continue
            cost = net.cost(X, Y, "quadratic")
        if not np.isfinite(cost):
            unnoticed.append((epochs, cost))
    assert not unnoticed, f"fit returned normally with a non-finite training cost: {unnoticed}"
