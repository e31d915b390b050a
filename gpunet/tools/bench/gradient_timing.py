"""Backprop's speed, the notes' point: the numeric gradient against one backprop pass.

For growing networks the numeric gradient costs two cost evaluations per parameter, backprop
one forward and one backward pass (`gpunet gradcheck --timing`, and the benchmark's
`numeric` peer).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...core.checks import check_count
from ...core.gradcheck import numeric_gradient
from ...core.network import Network


@dataclass(frozen=True)
class Timing:
    """Seconds for one backprop gradient and for the numeric one, on one network."""

    sizes: list[int]
    parameters: int
    backprop_seconds: float
    numeric_seconds: float

    @property
    def ratio(self) -> float:
        return self.numeric_seconds / self.backprop_seconds


def time_gradients(
    sizes_list: Sequence[Sequence[int]],
    activations: str | Sequence[str] = "tanh",
    *,
    cost: str | None = None,
    samples: int = 10,
    repeats: int = 3,
    backend: str = "auto",
    seed: int = 0,
) -> list[Timing]:
    """For each network, the best of `repeats` timings of one `gradients` call (BP1–BP4,
    float64, read back to the host) and of `numeric_gradient` (two cost evaluations per
    parameter), on `samples` random examples."""
    samples, repeats = check_count("samples", samples), check_count("repeats", repeats)
    if isinstance(sizes_list, (str, bytes)) or not isinstance(sizes_list, Sequence):
        raise TypeError("sizes_list must be a list of layer-width lists")
    if not sizes_list:
        raise ValueError("sizes_list must hold at least one network's sizes")
    # every network is built (and so checked) before any is timed
    nets = [
        Network(sizes, activations, backend=backend, dtype="float64", seed=seed)
        for sizes in sizes_list
    ]
    rng = np.random.default_rng(seed)
    timings = []
    for net in nets:
        X = rng.standard_normal((samples, net.sizes[0]))
        y = rng.integers(0, net.sizes[-1], samples)

        def backprop(net: Any = net, X: Any = X, y: Any = y) -> None:
            net.backend.to_numpy(net.gradients(X, y, cost)[1][-1])  # the read waits for the device

        def numeric(net: Any = net, X: Any = X, y: Any = y) -> None:
            numeric_gradient(net, X, y, cost)

        timings.append(
            Timing(
                net.sizes, net.n_parameters, _best_of(backprop, repeats), _best_of(numeric, repeats)
            )
        )
    return timings


def _best_of(function: Callable[[], None], repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best
