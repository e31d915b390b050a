"""Per-layer training diagnostics: how delta, the gradients and the weights evolve, layer by layer.

`fit(..., diagnostics=True)` records, for every layer l = 1..L and every epoch, into the
History (one list per epoch, one entry per layer):

    delta_norm      ‖delta^l‖_F of the batch (BP1/BP2), mean over the epoch's mini-batches
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
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = Any

TAIL = 0.98
# the History keys, in the order of the accumulator's rows
STATISTICS = ("delta_norm", "gradient_norm", "update_ratio", "saturation", "weight_norm")
SATURATING = ("sigmoid", "tanh", "relu")


def saturated_fraction(xp: Any, name: str, activation: Array) -> Array:
    """The fraction of saturated units in a batch of activations A^l (n_l, m), on the device.

    sigmoid/tanh: pairs (unit, example) in the flat tails (see TAIL); relu: units that
    are 0 on every example of the batch.
    """
    if name == "sigmoid":
        return (xp.abs(activation - 0.5) >= 0.5 * TAIL).mean()
    if name == "tanh":
        return (xp.abs(activation) >= TAIL).mean()
    if name == "relu":
        return (activation.max(axis=1) <= 0.0).mean()
    raise ValueError(f"saturation is defined for {', '.join(SATURATING)}, not {name!r}")


class Recorder:
    """Accumulates the per-layer statistics of one epoch on the network's device."""

    def __init__(self, net: Any) -> None:
        self.net = net
        ops, layers = net.backend, len(net.weights)
        self.saturating = [g.name in SATURATING for g in net.activations]
        # one row per statistic, one column per layer, in float64 whatever the net's dtype
        self._sums = ops.zeros((len(STATISTICS), layers), np.float64)
        self._before = ops.empty(net.n_weights, net.dtype)
        self._before_layers = net._views(self._before, [w.shape for w in net.weights])
        self._weight_norms = ops.empty(layers, np.float64)
        self._steps = 0

    def step(self, ws: Any, optimizer: Any) -> None:
        """Record the batch just backpropagated into ws, then take the optimizer's step.

        Before the step: ‖delta^l‖ (BP1/BP2), ‖dC/dW^l‖ (BP4) and the saturation of A^l.
        After it: ‖ΔW^l‖ / ‖W^l‖, measured on the weights themselves, since the optimizer
        may use the gradient buffer as scratch.
        """
        net, sums = self.net, self._sums
        xp, norm = net.backend.xp, net.backend.xp.linalg.norm
        for i, (delta, gradient, activation) in enumerate(
            zip(ws.delta, net.grads_w, ws.activation)
        ):
            sums[0, i] += norm(delta)
            sums[1, i] += norm(gradient)
            if self.saturating[i]:
                sums[3, i] += saturated_fraction(xp, net.activations[i].name, activation)
            self._weight_norms[i] = norm(net.weights[i])
        xp.copyto(self._before, net._params[: net.n_weights])
        optimizer.step(net.backend, net._params, net._grads, net.n_weights)
        self._before -= net._params[: net.n_weights]
        for i, change in enumerate(self._before_layers):
            sums[2, i] += norm(change) / self._weight_norms[i]
        self._steps += 1

    def epoch(self) -> dict[str, list[float | None]]:
        """The epoch's statistics, read back to the host in one transfer; resets the sums."""
        xp, sums = self.net.backend.xp, self._sums
        sums[:4] /= max(self._steps, 1)
        for i, w in enumerate(self.net.weights):
            sums[4, i] = xp.linalg.norm(w)
        host = self.net.backend.to_numpy(sums).tolist()
        sums[...] = 0.0
        self._steps = 0
        record = dict(zip(STATISTICS, host))
        record["saturation"] = [
            value if saturating else None
            for value, saturating in zip(record["saturation"], self.saturating)
        ]
        return record
