"""Training: accuracy on real data, the History, callbacks, reproducibility, optimizer updates
against hand-written formulas, divergence."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from conftest import all_arrays, assert_params_equal, seeded_rng

import gpunet
from gpunet import datasets
from gpunet.tools.bench.peers import Pool, gpunet_runner

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


def _classification_data(key, m=40, n_in=4, n_classes=3):
    rng = seeded_rng(key)
    X = rng.standard_normal((m, n_in))
    y = rng.integers(0, n_classes, size=m)
    return X, y


def test_history_keys_lengths_and_final_validation_metrics():
    X, y = _classification_data("history")
    X_val, y_val = _classification_data("history-val", m=15)
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
    X, y = _classification_data("history-plain")
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
    X, y = _classification_data("validation-list")
    net = gpunet.Network([4, 3], "softmax", seed=0, backend="numpy")
    history = net.fit(X, y, epochs=1, batch_size=8, lr=0.1, progress=False, validation=[X, y])
    assert history["validation_cost"][0] == pytest.approx(net.evaluate(X, y)["cost"], rel=1e-6)


def test_one_batch_epoch_records_cost_before_the_step():
    """With one mini-batch per epoch, the epoch's training cost and accuracy are those of the
    parameters the step started from."""
    X, y = _classification_data("one-batch")
    net = gpunet.Network([4, 5, 3], "sigmoid", dtype="float64", seed=0, backend="numpy")
    before = net.evaluate(X, y, "cross_entropy")
    history = net.fit(
        X, y, epochs=1, batch_size=len(X), lr=0.1, cost="cross_entropy", progress=False
    )
    assert history["cost"][0] == pytest.approx(before["cost"], rel=1e-12)
    assert history["accuracy"][0] == pytest.approx(before["accuracy"], abs=1e-12)


def test_callbacks_called_once_per_epoch_with_metrics():
    X, y = _classification_data("callbacks")
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
    X, y = _classification_data("stop")
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
    X, y = _classification_data("repro")
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


# --- optimizer updates against hand formulas --------------------------------------------


def _tiny_problem():
    rng = seeded_rng("tiny")
    X = rng.standard_normal((6, 3))
    y = np.array([0, 1, 1, 0, 1, 0])
    net = gpunet.Network([3, 4, 2], "sigmoid", dtype="float64", seed=11, backend="numpy")
    return net, X, y


def _gradients_at(params, X, y):
    """dC/dW, dC/db at the given parameters, on a separate network (the quadratic cost)."""
    probe = gpunet.Network([3, 4, 2], "sigmoid", dtype="float64", seed=0, backend="numpy")
    probe.set_params(*params)
    return probe.gradients(X, y, "quadratic")


@pytest.mark.parametrize(
    ("momentum", "nesterov", "weight_decay"),
    [(0.0, False, 0.0), (0.0, False, 0.05), (0.9, False, 0.0), (0.9, True, 0.0), (0.8, True, 0.03)],
)
def test_sgd_two_steps_match_hand_formula(momentum, nesterov, weight_decay):
    net, X, y = _tiny_problem()
    lr = 0.7
    weights, biases = net.get_params()
    batches = [(X[:3], y[:3]), (X[3:], y[3:])]  # shuffle=False, batch_size=3
    velocity = None
    for Xb, yb in batches:
        grads_w, grads_b = _gradients_at((weights, biases), Xb, yb)
        # torch.optim.SGD: d = g + λ w (weights only); v = μ v + d; step = v or d + μ v
        d = [g + weight_decay * w for g, w in zip(grads_w, weights)] + list(grads_b)
        params = weights + biases
        if momentum:
            velocity = d if velocity is None else [momentum * v + di for v, di in zip(velocity, d)]
            step = [di + momentum * v for di, v in zip(d, velocity)] if nesterov else velocity
        else:
            step = d
        new = [p - lr * s for p, s in zip(params, step)]
        weights, biases = new[: len(weights)], new[len(weights) :]
    optimizer = gpunet.SGD(lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    net.fit(
        X,
        y,
        epochs=1,
        batch_size=3,
        optimizer=optimizer,
        cost="quadratic",
        shuffle=False,
        progress=False,
    )
    got_w, got_b = net.get_params()
    for got, want in zip(got_w + got_b, weights + biases):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_sgd_weight_decay_is_nielsens_l2_rule_on_weights_only():
    net, X, y = _tiny_problem()
    lr, lam, n = 0.5, 3.0, len(X)
    (w1, w2), (b1, b2) = net.get_params()
    (g1, g2), (gb1, gb2) = _gradients_at(net.get_params(), X, y)
    net.fit(
        X,
        y,
        epochs=1,
        batch_size=n,
        optimizer=gpunet.SGD(lr, weight_decay=lam / n),
        cost="quadratic",
        shuffle=False,
        progress=False,
    )
    (nw1, nw2), (nb1, nb2) = net.get_params()
    # w -> (1 − ηλ/n) w − η ∂C0/∂w ; b -> b − η ∂C0/∂b
    np.testing.assert_allclose(nw1, (1 - lr * lam / n) * w1 - lr * g1, rtol=1e-12)
    np.testing.assert_allclose(nw2, (1 - lr * lam / n) * w2 - lr * g2, rtol=1e-12)
    np.testing.assert_allclose(nb1, b1 - lr * gb1, rtol=1e-12)
    np.testing.assert_allclose(nb2, b2 - lr * gb2, rtol=1e-12)


def test_sgd_by_name_is_plain_gradient_descent():
    net, X, y = _tiny_problem()
    (w1, w2), (b1, b2) = net.get_params()
    (g1, g2), (gb1, gb2) = _gradients_at(net.get_params(), X, y)
    net.fit(
        X, y, epochs=1, batch_size=6, optimizer="sgd", lr=0.25, cost="quadratic", progress=False
    )
    got = all_arrays(net.get_params())
    want = [w1 - 0.25 * g1, w2 - 0.25 * g2, b1 - 0.25 * gb1, b2 - 0.25 * gb2]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def _adam_by_hand(params, n_weight_arrays, X, y, steps, lr, betas, eps, weight_decay):
    b1, b2 = betas
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, (Xb, yb) in enumerate(steps, 1):
        grads_w, grads_b = _gradients_at(
            (params[:n_weight_arrays], params[n_weight_arrays:]), Xb, yb
        )
        grads = [g + weight_decay * p for g, p in zip(grads_w, params)] + list(grads_b)
        m = [b1 * mi + (1 - b1) * g for mi, g in zip(m, grads)]
        v = [b2 * vi + (1 - b2) * g * g for vi, g in zip(v, grads)]
        m_hat = [mi / (1 - b1**t) for mi in m]
        v_hat = [vi / (1 - b2**t) for vi in v]
        params = [p - lr * mh / (np.sqrt(vh) + eps) for p, mh, vh in zip(params, m_hat, v_hat)]
    return params


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("n_steps", [1, 2])
def test_adam_matches_torch_formula(n_steps, weight_decay):
    net, X, y = _tiny_problem()
    lr, betas, eps = 0.01, (0.8, 0.95), 1e-6
    batch = len(X) // n_steps
    steps = [(X[i : i + batch], y[i : i + batch]) for i in range(0, len(X), batch)]
    weights, biases = net.get_params()
    want = _adam_by_hand(weights + biases, 2, X, y, steps, lr, betas, eps, weight_decay)
    optimizer = gpunet.Adam(lr, betas=betas, eps=eps, weight_decay=weight_decay)
    net.fit(
        X,
        y,
        epochs=1,
        batch_size=batch,
        optimizer=optimizer,
        cost="quadratic",
        shuffle=False,
        progress=False,
    )
    for got, expected in zip(all_arrays(net.get_params()), want):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_adam_by_name_without_lr_uses_default_lr():
    net, X, y = _tiny_problem()
    weights, biases = net.get_params()
    want = _adam_by_hand(weights + biases, 2, X, y, [(X, y)], 1e-3, (0.9, 0.999), 1e-8, 0.0)
    net.fit(X, y, epochs=1, batch_size=6, optimizer="adam", cost="quadratic", progress=False)
    for got, expected in zip(all_arrays(net.get_params()), want):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "make_optimizer",
    [lambda: gpunet.Adam(0.01), lambda: gpunet.SGD(0.1, momentum=0.9)],
    ids=["adam", "sgd-momentum"],
)
def test_optimizer_reused_on_another_network_size_raises(make_optimizer):
    optimizer = make_optimizer()
    X, y = _classification_data("reuse")
    first = gpunet.Network([4, 5, 3], "sigmoid", seed=0, backend="numpy")
    first.fit(X, y, epochs=1, batch_size=8, optimizer=optimizer, progress=False)
    second = gpunet.Network([4, 7, 3], "sigmoid", seed=0, backend="numpy")
    before = second.get_params()
    with pytest.raises(ValueError, match="optimizer"):
        second.fit(X, y, epochs=1, batch_size=8, optimizer=optimizer, progress=False)
    assert_params_equal(before, second.get_params())


def test_optimizer_reused_on_the_same_network_keeps_its_state():
    """Two fits of one epoch with one Adam equal one fit of two epochs."""
    X, y = _classification_data("same")
    a = gpunet.Network([4, 5, 3], "sigmoid", dtype="float64", seed=0, backend="numpy")
    b = gpunet.Network([4, 5, 3], "sigmoid", dtype="float64", seed=0, backend="numpy")
    adam = gpunet.Adam(0.01)
    for _ in range(2):
        a.fit(X, y, epochs=1, batch_size=8, optimizer=adam, shuffle=False, progress=False)
    b.fit(X, y, epochs=2, batch_size=8, optimizer=gpunet.Adam(0.01), shuffle=False, progress=False)
    for p, q in zip(all_arrays(a.get_params()), all_arrays(b.get_params())):
        np.testing.assert_allclose(p, q, rtol=1e-12)


def test_the_benchmark_step_is_fits_step():
    """gpunet_runner's step and one fit epoch of one batch: the same parameters, bitwise."""
    X, y = datasets.digits()
    X, y = X[:32], y[:32]
    fitted, stepped = (
        gpunet.Network([64, 16, 10], ["relu", "softmax"], backend="numpy", seed=4) for _ in "ab"
    )
    fitted.fit(X, y, epochs=1, batch_size=32, lr=0.3, shuffle=False, progress=False)
    pool = Pool(X, np.eye(10)[y], y)
    runner = gpunet_runner(stepped, pool, stepped.cost_function(None), 0.3)
    runner.train(runner.indices(np.arange(32)))
    assert_params_equal(stepped.get_params(), fitted.get_params())
    assert not np.array_equal(
        stepped.weights[0], gpunet.Network([64, 16, 10], seed=4, backend="numpy").weights[0]
    )


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
