"""Callbacks that see the network, and the ready ones Keras users reach for: EarlyStopping and
SaveBest (Keras's ModelCheckpoint(save_best_only=True)).

fit(callbacks=[...]) takes plain functions f(epoch, metrics), True stopping training, and
objects of a Callback subclass, whose hooks the Callbacks extension (extensions.py) calls on
rank 0:

    check(run)                         in fit's checks, before anything changes: raise for a
                                       setting the run cannot have (a metric it lacks)
    on_train_begin(net, history)       before the first epoch; a resumed run's History
                                       already holds the epochs done before the checkpoint
    on_epoch_end(net, epoch, metrics)  after every epoch; True stops training
    on_train_end(net, history)         after the last epoch, unless an exception ended
                                       training; the parameters it leaves in net are kept
                                       (on every rank)

A metric is watched as Keras's callbacks watch one: `monitor` names a key of the History
(default validation_cost with validation data, else cost), `mode` says whether lower
("min") or higher ("max") is better, "auto" taking "max" for accuracies and throughput.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.checks import check_count, check_flag, check_output_path, check_positive
from .diagnostics import STATISTICS

if TYPE_CHECKING:
    from .history import History
    from .run import Run

MODES = ("auto", "min", "max")


class Callback:
    """fit's callback with hooks that get the network: override those needed (see the
    module's docstring); each does nothing by default. `outputs` names the files it writes,
    as (argument, path) pairs: fit refuses two outputs of one run on the same file."""

    outputs: tuple[tuple[str, str | os.PathLike[str]], ...] = ()

    def check(self, run: Run) -> None:
        """Raise (ValueError, TypeError) for a setting the checked `run` cannot have."""

    def on_train_begin(self, net: Any, history: History) -> None:
        """Before the first epoch of this fit (after a resume's restore)."""

    def on_epoch_end(self, net: Any, epoch: int, metrics: dict[str, Any]) -> bool | None:
        """After epoch `epoch` with its metrics (the History's keys); True stops training."""
        return None

    def on_train_end(self, net: Any, history: History) -> None:
        """After the last epoch (all of them, or a stop), unless an exception ended training."""


class Monitor:
    """A per-epoch metric watched for improvement: a value improves on the best so far when
    it is lower (mode "min") or higher ("max") by more than min_delta."""

    def __init__(self, monitor: str | None, mode: str, min_delta: float) -> None:
        if monitor is not None and not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric's name or None, got {monitor!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.min_delta = check_positive("min_delta", min_delta, allow_zero=True)
        self.name, self.lower = "", True  # set by check, for the run
        self.best: float | None = None

    def check(self, metrics: Sequence[str]) -> None:
        """Which of a run's `metrics` is watched, and which way; ValueError naming them all
        unless the monitored one is among them and one number per epoch."""
        name = self.monitor
        if name is None:
            name = "validation_cost" if "validation_cost" in metrics else "cost"
        if name not in metrics or name in STATISTICS:
            numbers = ", ".join(metric for metric in metrics if metric not in STATISTICS)
            raise ValueError(
                f"monitor={name!r} is not a metric of this run's History; it records "
                f"{numbers} (validation_* with validation data, accuracy with class labels)"
            )
        self.name = name
        higher = "accuracy" in name or name.endswith("per_second")
        self.lower = self.mode == "min" or (self.mode == "auto" and not higher)

    def start(self, history: History) -> list[bool]:
        """Forget the best, then watch the epochs `history` holds already (a resumed run's):
        whether each improved."""
        self.best = None
        return [self.improves(value) for value in history.get(self.name, ())]

    def improves(self, value: float) -> bool:
        """Whether value improves on the best so far (any value does on none); it becomes
        the best if so."""
        best, delta = self.best, self.min_delta
        if best is None or (value < best - delta if self.lower else value > best + delta):
            self.best = value
            return True
        return False


class EarlyStopping(Callback):
    """Stops training once the monitored metric has not improved (by more than min_delta)
    for `patience` epochs in a row, as Keras's EarlyStopping: patience=0, the default, and
    patience=1 both stop at the first epoch without improvement.

    restore_best=True (Keras's restore_best_weights) leaves the parameters of the best epoch
    in the network at the end of training, stopped or not. Attributes after fit: best (the
    best value), best_epoch, stopped_epoch (None when it did not stop training).
    """

    def __init__(
        self,
        monitor: str | None = None,
        *,
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        restore_best: bool = False,
    ) -> None:
        self.watched = Monitor(monitor, mode, min_delta)
        self.patience = check_count("patience", patience, allow_zero=True)
        self.restore_best = check_flag("restore_best", restore_best)
        self.wait, self.best_epoch, self.stopped_epoch = 0, None, None
        self.best_params: Any = None

    @property
    def best(self) -> float | None:
        return self.watched.best

    def check(self, run: Run) -> None:
        self.watched.check(run.metrics)
        if self.restore_best and run.resume:
            raise ValueError(
                "EarlyStopping(restore_best=True) cannot follow a resume: the checkpoint "
                "holds the last epoch's parameters, not the best one's (SaveBest keeps those "
                "in a file across runs)"
            )

    def on_train_begin(self, net: Any, history: History) -> None:
        self.wait, self.best_epoch, self.stopped_epoch = 0, None, None
        self.best_params = None
        # a resumed run counts on from where the epochs before the checkpoint left it
        for epoch, improved in enumerate(self.watched.start(history), 1):
            self._count(epoch, improved)

    def on_epoch_end(self, net: Any, epoch: int, metrics: dict[str, Any]) -> bool:
        if self._count(epoch, self.watched.improves(metrics[self.watched.name])):
            if self.restore_best:
                self.best_params = _copy_into(self.best_params, net.params, net.backend.xp)
            return False
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, net: Any, history: History) -> None:
        if self.best_params is not None:
            # in place: the weights and biases are views of the flat buffer
            net.backend.xp.copyto(net.params, self.best_params)

    def _count(self, epoch: int, improved: bool) -> bool:
        """The epochs without improvement since the best; whether epoch is the new best."""
        if improved:
            self.wait, self.best_epoch = 0, epoch
        else:
            self.wait += 1
        return improved


class SaveBest(Callback):
    """Writes the network to `path` with net.save (atomically) after every epoch whose
    monitored metric improves on all earlier ones, as Keras's ModelCheckpoint(path,
    save_best_only=True): the file ends holding the best epoch's parameters. After a
    resume the epochs before the checkpoint count: the file is only overwritten by a better
    one. Attribute after fit: best_epoch (None if no epoch improved in this fit).
    """

    def __init__(
        self, path: str | os.PathLike[str], monitor: str | None = None, *, mode: str = "auto"
    ) -> None:
        if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
            raise TypeError(f"SaveBest path must be a str or path, got {type(path).__name__}")
        self.path = path
        self.outputs = (("SaveBest path", path),)
        self.watched = Monitor(monitor, mode, 0.0)
        self.best_epoch: int | None = None

    @property
    def best(self) -> float | None:
        return self.watched.best

    def check(self, run: Run) -> None:
        self.watched.check(run.metrics)
        check_output_path("SaveBest path", self.path)

    def on_train_begin(self, net: Any, history: History) -> None:
        self.watched.start(history)
        self.best_epoch = None

    def on_epoch_end(self, net: Any, epoch: int, metrics: dict[str, Any]) -> bool:
        if self.watched.improves(metrics[self.watched.name]):
            net.save(self.path)
            self.best_epoch = epoch
        return False


def _copy_into(copy: Any, params: Any, xp: Any) -> Any:
    """params copied into `copy` (made on the first call), on params' device."""
    if copy is None:
        return params.copy()
    xp.copyto(copy, params)
    return copy
