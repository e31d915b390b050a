"""Optimizer updates (SGD, momentum, Nesterov, weight decay, Adam) against hand-written formulas."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import all_arrays, assert_params_equal, classification_data, seeded_rng

import gpunet
from gpunet import datasets
from gpunet.tools.bench.peers import Pool, gpunet_runner

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
    X, y = classification_data("reuse")
    first = gpunet.Network([4, 5, 3], "sigmoid", seed=0, backend="numpy")
    first.fit(X, y, epochs=1, batch_size=8, optimizer=optimizer, progress=False)
    second = gpunet.Network([4, 7, 3], "sigmoid", seed=0, backend="numpy")
    before = second.get_params()
    with pytest.raises(ValueError, match="optimizer"):
        second.fit(X, y, epochs=1, batch_size=8, optimizer=optimizer, progress=False)
    assert_params_equal(before, second.get_params())


def test_optimizer_reused_on_the_same_network_keeps_its_state():
    """Two fits of one epoch with one Adam equal one fit of two epochs."""
    X, y = classification_data("same")
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


# --- BP1's scale: plain SGD's step as one subtraction -----------------------------------


@pytest.mark.parametrize(
    "optimizer, scale",
    [
        (gpunet.SGD(0.3), 0.3),
        (gpunet.SGD(0.3, momentum=0.9), None),
        (gpunet.SGD(0.3, weight_decay=1e-4), None),
        (gpunet.Adam(), None),
    ],
)
def test_only_plain_sgd_lets_bp1_scale_its_gradients(optimizer, scale):
    assert optimizer.bp1_scale() == scale


def test_descend_on_scaled_gradients_is_the_sgd_step():
    from gpunet.core.backends import NumpyBackend

    ops, rng = NumpyBackend(), seeded_rng("descend")
    params, grads = rng.standard_normal(12), rng.standard_normal(12)
    stepped, descended = params.copy(), params.copy()
    gpunet.SGD(0.3).step(ops, stepped, grads.copy(), 8)
    gpunet.SGD(0.3).descend(ops, descended, 0.3 * grads)
    np.testing.assert_allclose(descended, stepped, rtol=1e-15, atol=1e-15)
