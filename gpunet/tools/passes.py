"""Why backprop is fast, in forward passes: a unit that the machine and Python's overhead cancel.

One forward pass of a batch of m examples costs Σ_l 2 n_l n_{l-1} m FLOPs in its GEMMs
(Z^l = W^l A^{l-1}). The backward pass has two GEMMs per layer of the same size, BP4
(delta^l (A^{l-1})^T) and BP2 ((W^{l+1})^T delta^{l+1}), except that layer 1 sends nothing
back (no delta^0 is needed): backward / forward = 2 − n_1 n_0 / Σ_l n_l n_{l-1}, at most 2,
so the whole gradient costs at most 3 forward passes. Central differences need two forward
passes per parameter, 2P for all of them: the ratio is about 2P/3, on any machine.

`measure` counts these FLOPs and times both passes on one network and batch size (best of
`repeats` runs of at least `min_seconds`); at sizes where the GEMMs dominate, the measured
ratio approaches the counted one, and where fixed per-call costs dominate it does not. For
small networks it also times `numeric_gradient` itself, in forward passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.checks import check_count, check_positive
from ..core.gradcheck import numeric_gradient
from ..core.network import Network
from .bench.sweep import time_steps


def pass_flops(sizes: Sequence[int], m: int) -> tuple[int, int]:
    """(forward, backward) GEMM FLOPs for a batch of m: 2 n_l n_{l-1} m per GEMM."""
    products = [n * k for n, k in zip(sizes[1:], sizes[:-1])]
    forward = 2 * m * sum(products)
    # BP4 in every layer, BP2 in every layer but the first
    return forward, forward + 2 * m * sum(products[1:])


def measure(
    sizes: Sequence[int],
    m: int,
    *,
    activations: str | Sequence[str] = "sigmoid",
    backend: str = "auto",
    dtype: str = "float64",
    repeats: int = 5,
    min_seconds: float = 0.2,
    numeric_max: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """One network at batch size m: counted FLOPs and measured seconds, in forward passes.

    The numeric gradient is timed too when the network has at most `numeric_max`
    parameters (it takes 2P forward passes; it runs in float64 whatever `dtype`).
    """
    m, repeats = check_count("m", m), check_count("repeats", repeats)
    min_seconds = check_positive("min_seconds", min_seconds)
    net = Network(sizes, activations, backend=backend, dtype=dtype, seed=seed)
    cost = net.cost_function(None)
    rng = np.random.default_rng(seed)
    X = rng.random((m, net.sizes[0]))
    labels = rng.integers(0, net.sizes[-1], m)
    X_, targets, _ = net.checked_inputs(X, labels, cost)
    ws = net.workspace(m)
    ws.x[...], ws.y[...] = X_, targets
    ops = net.backend
    sync = ops.xp.cuda.Device().synchronize if ops.name == "cupy" else (lambda: None)

    def forward(_: Any) -> None:
        net.feedforward(ws.x, ws)

    def gradient(_: Any) -> None:
        net.backpropagate(ws.x, ws.y, ws, cost)

    forward_runs = time_steps(forward, [None], sync, repeats=repeats, min_seconds=min_seconds)
    gradient_runs = time_steps(gradient, [None], sync, repeats=repeats, min_seconds=min_seconds)
    forward_flops, backward_flops = pass_flops(net.sizes, m)
    forward_s, gradient_s = min(forward_runs), min(gradient_runs)
    parameters = net.n_parameters
    record = {
        "backend": ops.name,
        "sizes": net.sizes,
        "activations": net.activation_names,
        "batch": m,
        "parameters": parameters,
        "forward_flops": forward_flops,
        "backward_flops": backward_flops,
        "backward_per_forward_counted": backward_flops / forward_flops,
        "forward_seconds": forward_s,
        "gradient_seconds": gradient_s,
        "backward_per_forward_measured": (gradient_s - forward_s) / forward_s,
        "gradient_per_forward_measured": gradient_s / forward_s,
        "numeric_per_forward_counted": 2 * parameters,
        "forward_runs": forward_runs,
        "gradient_runs": gradient_runs,
    }
    if parameters <= numeric_max:
        # against a float64 forward pass with the cost, the unit of the numeric loop
        probe = Network(net.sizes, net.activation_names, backend=ops, dtype="float64")
        probe.set_params(*net.get_params())
        probe_ws = probe.workspace(m)
        probe_ws.x[...], probe_ws.y[...] = ops.asarray(X), ops.asarray(targets, np.float64)

        def costed(_: Any) -> None:
            probe.feedforward(probe_ws.x, probe_ws)
            float(probe.batch_cost(probe_ws, probe_ws.y, cost))

        unit = min(time_steps(costed, [None], sync, repeats=repeats, min_seconds=min_seconds))
        numeric_runs = time_steps(
            lambda _: numeric_gradient(net, X, labels), [None], sync, repeats=1, min_seconds=0
        )
        record.update(
            numeric_seconds=numeric_runs[0],
            costed_forward_seconds=unit,
            numeric_per_forward_measured=numeric_runs[0] / unit,
        )
    return record


def run_all(
    networks: Sequence[Sequence[int]], batch_sizes: Sequence[int], **options: Any
) -> list[dict[str, Any]]:
    """`measure` for every network at every batch size, networks built (checked) first."""
    for sizes in networks:
        Network(sizes, options.get("activations", "sigmoid"), backend="numpy")
    return [measure(sizes, m, **options) for sizes in networks for m in batch_sizes]


def table(records: Sequence[dict[str, Any]]) -> str:
    """The records as a text table: FLOP and time ratios, both in forward passes."""
    head = (
        f"{'sizes':<24}{'batch':>6}{'P':>10}{'forward s':>11}{'backward/forward':>18}"
        f"{'gradient':>10}{'numeric':>20}"
    )
    sub = f"{'':<51}{'counted':>9}{'measured':>9}{'measured':>10}{'counted':>10}{'measured':>10}"
    lines = [head, sub]
    for r in records:
        measured = r.get("numeric_per_forward_measured")
        lines.append(
            f"{r['sizes']!s:<24}{r['batch']:>6}{r['parameters']:>10}"
            f"{r['forward_seconds']:>11.3g}{r['backward_per_forward_counted']:>9.2f}"
            f"{r['backward_per_forward_measured']:>9.2f}{r['gradient_per_forward_measured']:>10.2f}"
            f"{r['numeric_per_forward_counted']:>10}"
            f"{'—' if measured is None else f'{measured:.0f}':>10}"
        )
    return "\n".join(lines)
