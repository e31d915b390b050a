"""fit's arguments, checked once into one frozen Run before anything changes."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.checks import (
    check_count,
    check_distinct,
    check_flag,
    check_output_path,
    check_seed,
    check_unit_interval,
)
from ..core.costs import Cost
from ..core.optimizers import Optimizer, make_optimizer
from .callbacks import Callback
from .diagnostics import STATISTICS
from .extensions import EpochFunction


@dataclass(frozen=True, eq=False)
class Run:
    """One training run as fit was asked for it: the data on the network's backend, the
    optimizer and cost it trains with, and every setting, each checked."""

    X: Any
    targets: Any
    labels: Any
    epochs: int
    batch_size: int
    optimizer: Optimizer
    cost: Cost
    validation: tuple[Any, Any, Any] | None
    shuffle: bool
    seed: int | None
    progress: bool
    callbacks: tuple[Callback | EpochFunction, ...]
    checkpoint: Path | None
    checkpoint_every: int
    resume: bool
    diagnostics: bool

    @classmethod
    def checked(
        cls,
        net: Any,
        X: Any,
        Y: Any,
        *,
        epochs: int,
        batch_size: int,
        optimizer: str | Optimizer | None,
        lr: float | None,
        cost: str | None,
        validation: tuple[Any, Any] | None,
        shuffle: bool,
        seed: int | None,
        progress: bool,
        callbacks: Sequence[Callback | EpochFunction] | None,
        checkpoint: str | os.PathLike[str] | None,
        checkpoint_every: int,
        resume: bool,
        diagnostics: bool,
        validation_split: float | None = None,
    ) -> Run:
        """fit's arguments checked in fit's order (the first bad one raises), then each
        Callback object's check of the run; nothing changes but the callbacks' settings."""
        epochs = check_count("epochs", epochs)
        batch_size = check_count("batch_size", batch_size)
        if optimizer is None:  # fit's default: Nielsen's SGD at a given rate, else Adam's
            optimizer = "sgd" if lr is not None else "adam"
        optimizer = make_optimizer(optimizer, lr)
        optimizer.check_params(net.params)
        cost_ = net.cost_function(cost)
        data = net.checked_inputs(X, Y, cost_)
        validation_ = _checked_validation(net, validation, cost_)
        if validation_split is not None:
            if validation is not None:
                raise ValueError("give validation=(X_val, Y_val) or validation_split, not both")
            data, validation_ = _held_out(data, validation_split)
        run = cls(
            *data,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            cost=cost_,
            validation=validation_,
            shuffle=check_flag("shuffle", shuffle),
            seed=check_seed("seed", seed),
            progress=check_flag("progress", progress),
            callbacks=_checked_callbacks(callbacks),
            checkpoint_every=check_count("checkpoint_every", checkpoint_every),
            resume=check_flag("resume", resume),
            diagnostics=check_flag("diagnostics", diagnostics),
            checkpoint=_checked_checkpoint(checkpoint, resume),
        )
        objects = [callback for callback in run.callbacks if isinstance(callback, Callback)]
        for callback in objects:
            callback.check(run)
        outputs = [output for callback in objects for output in callback.outputs]
        check_distinct([("checkpoint", run.checkpoint), *outputs])
        return run

    @property
    def metrics(self) -> tuple[str, ...]:
        """The keys of this run's History, in their order (gpunet.train.extensions)."""
        validation = () if self.validation is None else ("validation_cost",)
        if self.validation is not None and self.validation[2] is not None:
            validation += ("validation_accuracy",)
        return (
            "cost",
            *(() if self.labels is None else ("accuracy",)),
            *validation,
            "seconds",
            "samples_per_second",
            *(STATISTICS if self.diagnostics else ()),
        )


def _checked_validation(net: Any, validation: Any, cost: Cost) -> tuple[Any, Any, Any] | None:
    """The validation pair as checked (X_val, targets, labels) on net's backend, or None."""
    if validation is None:
        return None
    if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
        raise TypeError("validation must be a pair (X_val, Y_val)")
    return net.checked_inputs(*validation, cost, what="validation ")


def _held_out(data: tuple[Any, Any, Any], fraction: Any) -> tuple[tuple, tuple]:
    """The checked (X, targets, labels) split as Keras's validation_split splits them:
    (training rows, validation rows), the validation rows the last floor(fraction·m) of
    them, before any shuffle; ValueError unless each side keeps one row at least."""
    fraction = check_unit_interval("validation_split", fraction)
    m = data[0].shape[0]
    # rounded first: 0.29 * 100 is 28.999999999999996 in floating point
    held = math.floor(round(m * fraction, 6))
    if not 0 < held < m:
        raise ValueError(
            f"validation_split={fraction:g} of {m} examples holds out {held}: the training "
            "and the validation rows need one example each at least"
        )
    split = m - held

    def rows(part: slice) -> tuple:
        return tuple(None if array is None else array[part] for array in data)

    return rows(slice(None, split)), rows(slice(split, None))


def _checked_callbacks(callbacks: Any) -> tuple[Callback | EpochFunction, ...]:
    """The callbacks as a tuple of callables and Callback objects; TypeError for a lone
    callback or anything else."""
    if callable(callbacks) or isinstance(callbacks, (str, bytes, Callback)):
        raise TypeError("callbacks must be a list of callbacks, e.g. callbacks=[report]")
    callbacks = tuple(callbacks or ())
    for callback in callbacks:
        if isinstance(callback, type):  # callable, but calling it makes a callback
            raise TypeError(
                f"callbacks must hold callback objects, got the class {callback.__name__}: "
                f"pass {callback.__name__}(...)"
            )
        if not (callable(callback) or isinstance(callback, Callback)):
            raise TypeError(
                "callbacks must be functions f(epoch, metrics) or gpunet.Callback objects, "
                f"got {type(callback).__name__}"
            )
    return callbacks


def _checked_checkpoint(checkpoint: Any, resume: bool) -> Path | None:
    """The checkpoint path, checked writable; ValueError for resume=True without one."""
    if checkpoint is not None:
        path = check_output_path("checkpoint", checkpoint)
        if resume and not path.is_file():
            raise FileNotFoundError(
                f"resume=True: checkpoint {os.fspath(path)!r} does not exist: there is nothing "
                "to resume (without resume the run starts afresh and writes it)"
            )
        return path
    if resume:
        raise ValueError("resume=True needs the checkpoint path to resume from")
    return None
