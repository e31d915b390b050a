"""Per-layer training diagnostics: how delta, the gradients and the weights evolve, layer by layer.

`fit(..., diagnostics=True)` records, for every layer l = 1..L and every epoch, into the
History (one list per epoch, one entry per layer):

    delta_norm      ‖delta^l‖_F of the batch-mean cost (BP1/BP2), root mean square over
                    the epoch's mini-batches
    gradient_norm   ‖dC/dW^l‖_F (BP4), mean over the epoch's mini-batches
    weight_norm     ‖W^l‖_F at the end of the epoch
    update_ratio    ‖ΔW^l‖_F / ‖W^l‖_F of one optimizer step (ΔW^l: the step's change of W^l,
                    whatever the optimizer), mean over the epoch's steps
    saturation      fraction of saturated units, mean over the epoch's mini-batches (None for
                    activations without flat tails or dead units), where
                      sigmoid, tanh: a (unit, example) pair whose activation is within the tail
                        |tanh(z)| >= TAIL or |2σ(z) − 1| = |tanh(z/2)| >= TAIL, where the
                        slope g'(z) is below 1 − TAIL² ≈ 4% of its peak (¼ for σ, 1 for tanh)
                      relu: a unit whose activation is 0 on every example of the batch (it
                        never fires, so no gradient reaches its weights)

Every statistic is computed on the backend's device with its array module and accumulated
there; the host reads them once per epoch. Recording reads the network's buffers and writes
only its own, so it changes no parameter and no result.

Under distributed training each rank holds a shard of m_r of the batch's m examples, and
the statistics are defined so that the ranks' parts add up exactly, reduced once per epoch:
the batch's delta^l is the ranks' deltas side by side, each scaled by m_r/m (they are of
the shard's mean cost), so ‖delta^l‖² = Σ_r (m_r/m)² ‖delta_r^l‖² (hence the root mean
square over batches, a mean of squares); a tail fraction is the ranks' tail counts summed
over n_l·m; a relu unit is dead on the batch when it fired on no rank's shard, so each rank
keeps one flag per unit and batch (a byte each, steps × relu units per epoch) and the flags
are or-ed across ranks. The gradient, update and weight norms are of the all-reduced
gradient and the parameters, the same on every rank. The History is then the same on every
rank and equals one process's, to round-off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.network import flat_views

Array = Any

TAIL = 0.98
# the History keys, in the order of the accumulator's rows
STATISTICS = ("delta_norm", "gradient_norm", "update_ratio", "saturation", "weight_norm")
TAILED = ("sigmoid", "tanh")
SATURATING = (*TAILED, "relu")
# the rows summed over the ranks: the others are of values every rank shares
RANK_PARTS = (STATISTICS.index("delta_norm"), STATISTICS.index("saturation"))


def tail_count(xp: Any, name: str, activation: Array) -> Array:
    """The number of (unit, example) pairs of A^l (n_l, m) in the flat tails (see TAIL)."""
    if name == "sigmoid":
        return (xp.abs(activation - 0.5) >= 0.5 * TAIL).sum()
    if name == "tanh":
        return (xp.abs(activation) >= TAIL).sum()
    raise ValueError(f"tails are defined for {', '.join(TAILED)}, not {name!r}")


class Recorder:
    """Accumulates the per-layer statistics of one epoch of `steps` steps on the network's
    device; with a Distributed `ctx`, reduces them over its ranks at the epoch's end."""

    def __init__(self, net: Any, steps: int, ctx: Any = None) -> None:
        self.net, self.ctx = net, ctx
        ops, layers = net.backend, len(net.weights)
        names = net.activation_names
        self.saturating = [name in SATURATING for name in names]
        # one row per statistic, one column per layer, in float64 whatever the net's dtype
        self._sums = ops.zeros((len(STATISTICS), layers), np.float64)
        self._before = ops.empty(net.n_weights, net.dtype)
        self._before_layers = flat_views(self._before, [w.shape for w in net.weights])
        self._weight_norms = ops.empty(layers, np.float64)
        # each relu layer's columns in the fired flags, one row per step
        self._relu_columns: dict[int, slice] = {}
        units = 0
        for i, name in enumerate(names):
            if name == "relu":
                self._relu_columns[i] = slice(units, units + net.sizes[i + 1])
                units += net.sizes[i + 1]
        self._fired = ops.zeros((steps, units), np.bool_)
        self._steps = 0

    def step(self, ws: Any, take_step: Callable[[], None], m: int, scale: float = 1.0) -> None:
        """Record the batch just backpropagated into ws, then take_step() (the update).

        ws holds this rank's shard of the global mini-batch of m examples (all of it in
        one process; none of it on a rank whose shard of a small last batch is empty).
        Before the step: delta^l (BP1/BP2), ‖dC/dW^l‖ (BP4) and the saturation of A^l.
        After it: ‖ΔW^l‖ / ‖W^l‖, measured on the weights themselves, since the optimizer
        may use the gradient buffer as scratch. `scale` is the factor the backpropagation
        applied to delta^L and so to every gradient (plain SGD's lr); it is divided out.
        """
        net, sums = self.net, self._sums
        xp, norm = net.backend.xp, net.backend.xp.linalg.norm
        share = ws.x.shape[0] / m
        names = net.activation_names
        for i, (delta, gradient, activation) in enumerate(
            zip(ws.delta, net.grads_w, ws.activation)
        ):
            sums[0, i] += (norm(delta) * share / scale) ** 2
            sums[1, i] += norm(gradient) / scale
            if names[i] in TAILED:
                sums[3, i] += tail_count(xp, names[i], activation) / (activation.shape[0] * m)
            elif i in self._relu_columns:
                self._fired[self._steps, self._relu_columns[i]] = (activation > 0).any(axis=1)
            self._weight_norms[i] = norm(net.weights[i])
        xp.copyto(self._before, net.params[: net.n_weights])
        take_step()
        self._before -= net.params[: net.n_weights]
        for i, change in enumerate(self._before_layers):
            sums[2, i] += norm(change) / self._weight_norms[i]
        self._steps += 1

    def epoch(self) -> dict[str, list[float | None]]:
        """The epoch's statistics, read back to the host in two transfers (the sums and
        the relu flags), reduced over the ranks under a context; resets the sums."""
        ops, sums, steps = self.net.backend, self._sums, self._steps
        for i, w in enumerate(self.net.weights):
            sums[4, i] = ops.xp.linalg.norm(w)
        totals = np.array(ops.to_numpy(sums))  # a copy: the sums are reset below
        fired = np.array(ops.to_numpy(self._fired[:steps]))
        sums[...] = 0.0
        self._fired[...] = False
        self._steps = 0
        if self.ctx is not None:
            rows = list(RANK_PARTS)
            totals[rows] = np.reshape(self.ctx.sum(totals[rows].ravel()), (len(rows), -1))
            fired = self.ctx.any(fired)
        totals[:4] /= steps  # means over the steps; the weight norms are the epoch's last
        totals[0] = np.sqrt(totals[0])
        for i, columns in self._relu_columns.items():
            totals[3, i] = 1.0 - fired[:, columns].mean()  # the mean over steps of dead/n_l
        record = dict(zip(STATISTICS, totals.tolist()))
        record["saturation"] = [
            value if saturating else None
            for value, saturating in zip(record["saturation"], self.saturating)
        ]
        return record
