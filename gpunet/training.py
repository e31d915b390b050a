"""Mini-batch training: shuffle, backpropagate each batch, step the optimizer, record a History."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ._checks import check_count
from .diagnostics import Recorder
from .optimizers import Optimizer, make_optimizer

Callback = Callable[[int, dict], Any]
HISTORY_FORMAT = "gpunet-history-1"


class DivergenceError(FloatingPointError):
    """Training produced a non-finite cost; the parameters are those from before that epoch."""


class History(dict):
    """Per-epoch lists, as Keras keeps them: 'cost', 'accuracy', 'validation_cost',
    'validation_accuracy', 'seconds', 'samples_per_second' (accuracy keys only for
    classification, validation keys only with validation data). The training cost and
    accuracy are means over the epoch's mini-batches, taken as the parameters moved.
    """

    def __init__(self, **meta: Any) -> None:
        super().__init__()
        self.meta = meta

    @property
    def epochs(self) -> int:
        return len(self.get("cost", ()))

    def append(self, metrics: dict[str, float | None]) -> None:
        for key, value in metrics.items():
            if value is not None:
                self.setdefault(key, []).append(value)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the per-epoch lists and the meta as JSON (the input of `gpunet plot`)."""
        text = json.dumps({"format": HISTORY_FORMAT, "meta": self.meta, "metrics": dict(self)})
        Path(path).write_text(text + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> History:
        """A History read from a file written by `save`; ValueError for anything else."""
        try:
            record = json.loads(Path(path).read_text())
            if record.get("format") != HISTORY_FORMAT:
                raise ValueError(f"format {record.get('format')!r}")
            metrics, meta = record["metrics"], record["meta"]
            if not (isinstance(metrics, dict) and isinstance(meta, dict)):
                raise ValueError("metrics and meta must be objects")
            if not all(isinstance(v, list) for v in metrics.values()):
                raise ValueError("every metric must be a list of per-epoch values")
        except FileNotFoundError:
            raise
        except (OSError, AttributeError, KeyError, ValueError) as error:
            raise ValueError(f"{os.fspath(path)} is not a gpunet history file ({error})") from None
        history = cls(**meta)
        history.update(metrics)
        return history

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Draw cost, accuracy and (when recorded) per-layer gradient norms into a PNG."""
        from .plots import plot_histories

        return plot_histories([self], path)


def fit(
    net: Any,
    X: Any,
    Y: Any,
    *,
    epochs: int,
    batch_size: int,
    optimizer: str | Optimizer = "sgd",
    lr: float | None = None,
    cost: str | None = None,
    validation: tuple[Any, Any] | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    progress: bool = True,
    callbacks: Sequence[Callback] | None = None,
    diagnostics: bool = False,
) -> History:
    """Train `net` on rows of X with targets Y (labels (m,) or (m, n_L)); return the History.

    Each epoch visits every example once in mini-batches of batch_size (the last may be
    smaller), shuffled by a generator seeded with `seed`. `validation=(X_val, Y_val)` is
    evaluated after every epoch. Each callback is called as callback(epoch, metrics)
    after every epoch; one that returns True stops training. `diagnostics=True` adds the
    per-layer statistics of gpunet.diagnostics to the History (read back once per epoch).
    """
    # every check first: a bad argument must leave the network untouched
    epochs = check_count("epochs", epochs)
    batch_size = check_count("batch_size", batch_size)
    optimizer = make_optimizer(optimizer, lr)
    optimizer.attach(net._params)
    cost_ = net._cost(cost)
    X, targets, labels = net._inputs(X, Y, cost_)
    if validation is not None:
        if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
            raise TypeError("validation must be a pair (X_val, Y_val)")
        validation = net._inputs(*validation, cost_, what="validation ")
    if callable(callbacks) or isinstance(callbacks, (str, bytes)):
        raise TypeError("callbacks must be a list of callables, e.g. callbacks=[report]")
    callbacks = list(callbacks or ())
    for callback in callbacks:
        if not callable(callback):
            raise TypeError(f"callbacks must be callables, got {type(callback).__name__}")
    if not isinstance(diagnostics, bool):
        raise TypeError(f"diagnostics must be True or False, got {type(diagnostics).__name__}")

    ops, n = net.backend, X.shape[0]
    batch_size = min(batch_size, n)
    rng = np.random.default_rng(seed)
    history = History(
        backend=net.backend.name,
        dtype=net.dtype.name,
        cost=cost_.name,
        optimizer=repr(optimizer),
        batch_size=batch_size,
        examples=n,
        sizes=net.sizes,
        activations=net.activation_names,
    )
    recorder = Recorder(net) if diagnostics else None
    snapshot = ops.empty(net._params.shape, net.dtype)
    bar = tqdm(
        total=epochs * n,
        unit="ex",
        unit_scale=True,
        disable=None if progress else True,  # None: only on a terminal
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    )
    with bar:
        for epoch in range(1, epochs + 1):
            bar.set_description(f"epoch {epoch}/{epochs}")
            ops.xp.copyto(snapshot, net._params)
            order = ops.asarray(rng.permutation(n) if shuffle else np.arange(n))
            started = time.perf_counter()
            total, correct = 0.0, 0
            for start in range(0, n, batch_size):
                batch = order[start : start + batch_size]
                ws = net._workspace(batch.shape[0])
                ops.gather_rows(X, batch, out=ws.x)
                ops.gather_rows(targets, batch, out=ws.y)
                net._backpropagate(ws.x, ws.y, ws, cost_)
                total += net._batch_cost(ws, ws.y, cost_)
                if labels is not None:
                    correct += (net._classify(ws.activation[-1]) == labels[batch]).sum()
                if recorder is None:
                    optimizer.step(ops, net._params, net._grads, net.n_weights)
                else:
                    recorder.step(ws, optimizer)
                bar.update(batch.shape[0])
            # the batch costs were taken before each step: the last step is checked by
            # feeding its batch forward once more
            net._feedforward(ws.x, ws)
            final = net._batch_cost(ws, ws.y, cost_)
            metrics = {
                "cost": float(total) / n,  # the epoch's device-to-host reads
                "accuracy": None if labels is None else float(correct) / n,
            }
            seconds = time.perf_counter() - started
            if not (np.isfinite(metrics["cost"]) and np.isfinite(float(final))):
                ops.xp.copyto(net._params, snapshot)
                raise DivergenceError(
                    f"training diverged in epoch {epoch}: the cost became "
                    f"{metrics['cost'] if not np.isfinite(metrics['cost']) else float(final)} "
                    f"(try a smaller learning rate); parameters restored to the start of the epoch"
                )
            if validation is not None:
                checked = net._evaluate(*validation, cost_)
                metrics.update(
                    validation_cost=checked["cost"], validation_accuracy=checked["accuracy"]
                )
            metrics.update(seconds=seconds, samples_per_second=n / seconds)
            if recorder is not None:
                metrics.update(recorder.epoch())
            history.append(metrics)
            bar.set_postfix(cost=f"{metrics['cost']:.4g}")
            if any([callback(epoch, metrics) is True for callback in callbacks]):
                break
    return history
