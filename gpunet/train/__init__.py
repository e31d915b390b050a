"""Training on top of the core: the mini-batch loop and its extensions, the History,
checkpoints, per-layer diagnostics, data-parallel training, and plots of a run."""

from .callbacks import Callback, EarlyStopping, SaveBest
from .distributed import Distributed, DistributedError
from .history import DivergenceError, History
from .loop import fit, train_step

__all__ = [
    "Callback",
    "Distributed",
    "DistributedError",
    "DivergenceError",
    "EarlyStopping",
    "History",
    "SaveBest",
    "fit",
    "train_step",
]
