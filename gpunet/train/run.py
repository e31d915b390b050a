"""fit's arguments, checked once into one frozen Run before anything changes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.checks import check_count, check_flag, check_output_path, check_seed
from ..core.costs import Cost
from ..core.optimizers import Optimizer, make_optimizer
from .extensions import Callback


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
    callbacks: tuple[Callback, ...]
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
        optimizer: str | Optimizer,
        lr: float | None,
        cost: str | None,
        validation: tuple[Any, Any] | None,
        shuffle: bool,
        seed: int | None,
        progress: bool,
        callbacks: Sequence[Callback] | None,
        checkpoint: str | os.PathLike[str] | None,
        checkpoint_every: int,
        resume: bool,
        diagnostics: bool,
    ) -> Run:
        """fit's arguments checked in fit's order (the first bad one raises), changing nothing."""
        epochs = check_count("epochs", epochs)
        batch_size = check_count("batch_size", batch_size)
        optimizer = make_optimizer(optimizer, lr)
        optimizer.check_params(net.params)
        cost_ = net.cost_function(cost)
        X, targets, labels = net.checked_inputs(X, Y, cost_)
        return cls(
            X,
            targets,
            labels,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            cost=cost_,
            validation=_checked_validation(net, validation, cost_),
            shuffle=check_flag("shuffle", shuffle),
            seed=check_seed("seed", seed),
            progress=check_flag("progress", progress),
            callbacks=_checked_callbacks(callbacks),
            checkpoint_every=check_count("checkpoint_every", checkpoint_every),
            resume=check_flag("resume", resume),
            diagnostics=check_flag("diagnostics", diagnostics),
            checkpoint=_checked_checkpoint(checkpoint, resume),
        )


def _checked_validation(net: Any, validation: Any, cost: Cost) -> tuple[Any, Any, Any] | None:
    """The validation pair as checked (X_val, targets, labels) on net's backend, or None."""
    if validation is None:
        return None
    if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
        raise TypeError("validation must be a pair (X_val, Y_val)")
    return net.checked_inputs(*validation, cost, what="validation ")


def _checked_callbacks(callbacks: Any) -> tuple[Callback, ...]:
    """The callbacks as a tuple of callables; TypeError for a lone callable or a non-callable."""
    if callable(callbacks) or isinstance(callbacks, (str, bytes)):
        raise TypeError("callbacks must be a list of callables, e.g. callbacks=[report]")
    callbacks = tuple(callbacks or ())
    for callback in callbacks:
        if not callable(callback):
            raise TypeError(f"callbacks must be callables, got {type(callback).__name__}")
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
