"""Training on top of the core: the mini-batch loop and its extensions, the History,
checkpoints, per-layer diagnostics, data-parallel training, and plots of a run."""

from .distributed import Distributed, DistributedError
from .history import DivergenceError, History
from .loop import fit, train_step

__all__ = ["Distributed", "DistributedError", "DivergenceError", "History", "fit", "train_step"]
