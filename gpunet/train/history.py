"""The record of a training run: per-epoch lists, saved and loaded as JSON, plotted."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..core.io import reading, write_atomically
from .diagnostics import STATISTICS

HISTORY_FORMAT = "gpunet-history-1"


class DivergenceError(FloatingPointError):
    """Training diverged: an epoch's cost was not finite, or exploded (see
    gpunet.train.extensions.Divergence); the parameters are those from before that epoch.

    Like any exception out of fit, it carries the History of the finished epochs as its
    attribute `history`.
    """


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

    def check(self) -> None:
        """ValueError unless every per-epoch list has one entry per epoch (as 'cost' has)."""
        for key, values in self.items():
            if len(values) != self.epochs:
                raise ValueError(
                    f"history metric {key!r} has {len(values)} entries for {self.epochs} epochs"
                )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the per-epoch lists and the meta as JSON (the input of `gpunet plot`),
        atomically: a temporary file, then a rename."""
        text = json.dumps({"format": HISTORY_FORMAT, "meta": self.meta, "metrics": dict(self)})
        write_atomically(path, lambda file: file.write((text + "\n").encode()))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> History:
        """A History read from a file written by `save`; FileFormatError (a ValueError) for
        anything else, OSError when it cannot be read."""
        with reading(path, "a gpunet history file"):
            record = json.loads(Path(path).read_text())
            if record.get("format") != HISTORY_FORMAT:
                raise ValueError(f"format {record.get('format')!r}")
            metrics, meta = record["metrics"], record["meta"]
            if not (isinstance(metrics, dict) and isinstance(meta, dict)):
                raise ValueError("metrics and meta must be objects")
            for key, values in metrics.items():
                _check_metric(key, values)
            history = cls(**meta)
            history.update(metrics)
            history.check()
        return history

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Draw cost, accuracy and (when recorded) per-layer gradient norms into a PNG."""
        from .plots import plot_histories

        return plot_histories([self], path)


def _check_metric(key: str, values: Any) -> None:
    """ValueError unless values lists one entry per epoch: a number, or for the per-layer
    statistics of diagnostics.py a list of a number (or null) per layer, the same layers
    every epoch."""
    if not isinstance(values, list):
        raise ValueError(f"metric {key!r} must be a list of per-epoch values")
    if key not in STATISTICS:
        if not all(map(_is_number, values)):
            raise ValueError(f"metric {key!r} must list one number per epoch")
    elif not (
        all(isinstance(value, list) for value in values)
        and len({len(value) for value in values}) <= 1
        and all(entry is None or _is_number(entry) for value in values for entry in value)
    ):
        raise ValueError(f"metric {key!r} must list one number per layer, per epoch")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
