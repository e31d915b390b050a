"""The numeric gradient: backprop checked against central finite differences, in float64."""

from __future__ import annotations

from typing import Any

import numpy as np

from .checks import check_positive


def numeric_gradient(
    net: Any, X: Any, Y: Any, cost: str | None = None, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray]:
    """(backprop, numeric): the flat gradient by BP1–BP4 and by central differences.

    Both in float64 on a copy of `net` on its backend, as NumPy arrays in the order of the
    network's flat buffer (all weights, then all biases); `net` itself is not changed.
    Two cost evaluations per parameter for the differences, one forward and one backward
    pass for backprop: the gap the texts use to motivate backpropagation.
    """
    from .network import Network

    eps = check_positive("eps", eps)
    probe = Network(net.sizes, net.activation_names, backend=net.backend, dtype="float64")
    probe.set_params(*net.get_params())
    cost_ = probe.cost_function(cost)
    X, targets, _ = probe.checked_inputs(X, Y, cost_)
    ws = probe.workspace(X.shape[0])
    probe.backpropagate(X, targets, ws, cost_)
    backprop = probe.backend.to_numpy(probe.grads).copy()

    params = probe.params
    numeric = np.empty_like(backprop)
    for i in range(params.size):
        original = float(params[i])
        costs = []
        for shifted in (original + eps, original - eps):
            params[i] = shifted
            probe.feedforward(X, ws)
            costs.append(float(probe.batch_cost(ws, targets, cost_)))
        params[i] = original
        numeric[i] = (costs[0] - costs[1]) / (2 * eps * X.shape[0])
    return backprop, numeric


def gradcheck(net: Any, X: Any, Y: Any, cost: str | None = None, eps: float = 1e-5) -> float:
    """Max relative error between backprop's gradient and (C(p + ε) − C(p − ε)) / 2ε.

    Runs on a float64 copy of `net` on the same backend (`numeric_gradient`). The error
    of each parameter tensor (each W^l and b^l) is ‖backprop − numeric‖ /
    max(‖backprop‖, ‖numeric‖); the result is the largest, with each tensor's norm
    floored at 1/100 of the whole gradient's norm (per entry, or per tensor below that,
    round-off in the differences would dominate). The default ε = 1e-5 balances
    round-off (~1e-16/ε) against truncation (~ε²) and against differences that straddle
    relu's kink.
    """
    backprop, numeric = numeric_gradient(net, X, Y, cost, eps)
    # a tensor whose gradient is below a hundredth of the whole gradient (the first layers
    # of a deep sigmoid net) is judged against that hundredth: finite differences cannot
    # resolve it further, their round-off being ~1e-16·C/ε whatever the tensor's size
    whole = max(np.linalg.norm(backprop), np.linalg.norm(numeric))
    floor = max(1e-2 * whole, np.finfo(float).tiny)
    worst, offset = 0.0, 0
    for array in (*net.weights, *net.biases):
        exact = backprop[offset : offset + array.size]
        approximate = numeric[offset : offset + array.size]
        offset += array.size
        scale = max(np.linalg.norm(exact), np.linalg.norm(approximate), floor)
        worst = max(worst, float(np.linalg.norm(exact - approximate) / scale))
    return worst
