"""The numeric gradient: backprop checked against central finite differences, in float64."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import check_positive


def gradcheck(net: Any, X: Any, Y: Any, cost: str | None = None, eps: float = 1e-6) -> float:
    """Max relative error between backprop's gradient and (C(p + ε) − C(p − ε)) / 2ε.

    Runs on a float64 copy of `net` on the same backend. Two cost evaluations per
    parameter, against one forward and one backward pass for backprop: the gap the
    texts use to motivate backpropagation. The error of each parameter tensor (each
    W^l and b^l) is ‖backprop − numeric‖ / max(‖backprop‖, ‖numeric‖); the result is the
    largest. (Per entry, the smallest gradients of a trained net drown in round-off.)
    """
    from .network import Network

    eps = check_positive("eps", eps)
    probe = Network(net.sizes, net.activation_names, backend=net.backend, dtype="float64")
    probe.set_params(*net.get_params())
    cost_ = probe._cost(cost)
    X, targets, _ = probe._inputs(X, Y, cost_)
    ws = probe._workspace(X.shape[0])
    probe._backpropagate(X, targets, ws, cost_)
    backprop = probe.backend.to_numpy(probe._grads).copy()

    params = probe._params
    numeric = np.empty_like(backprop)
    for i in range(params.size):
        original = float(params[i])
        costs = []
        for shifted in (original + eps, original - eps):
            params[i] = shifted
            probe._feedforward(X, ws)
            costs.append(float(probe._batch_cost(ws, targets, cost_)))
        params[i] = original
        numeric[i] = (costs[0] - costs[1]) / (2 * eps * X.shape[0])

    worst, offset = 0.0, 0
    for array in (*probe.weights, *probe.biases):
        exact = backprop[offset : offset + array.size]
        approximate = numeric[offset : offset + array.size]
        offset += array.size
        scale = max(np.linalg.norm(exact), np.linalg.norm(approximate), np.finfo(float).tiny)
        worst = max(worst, float(np.linalg.norm(exact - approximate) / scale))
    return worst
