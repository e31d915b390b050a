"""gpunet: fully-connected networks trained by explicit backpropagation (BP1–BP4).

Examples:
    >>> import gpunet
    >>> X, y = gpunet.datasets.digits()
    >>> net = gpunet.Network([64, 30, 10], "sigmoid", backend="numpy", seed=0)
    >>> history = net.fit(X, y, epochs=3, batch_size=10, lr=0.5, seed=0, progress=False)
    >>> history.epochs, sorted(history)
    (3, ['accuracy', 'cost', 'samples_per_second', 'seconds'])
    >>> history["cost"][-1] < history["cost"][0], net.evaluate(X, y)["accuracy"] > 0.9
    (True, True)
"""

from . import datasets
from .core import (
    SGD,
    Adam,
    BackendUnavailableError,
    Network,
    Optimizer,
    from_torch,
    gradcheck,
    load,
)
from .core.annotations import Metrics
from .core.extras import MissingExtraError
from .core.io import FileFormatError
from .train import (
    Callback,
    Distributed,
    DistributedError,
    DivergenceError,
    EarlyStopping,
    History,
    SaveBest,
)

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "Adam",
    "BackendUnavailableError",
    "Callback",
    "Distributed",
    "DistributedError",
    "DivergenceError",
    "EarlyStopping",
    "FileFormatError",
    "History",
    "Metrics",
    "MissingExtraError",
    "Network",
    "Optimizer",
    "SaveBest",
    "__version__",
    "datasets",
    "from_torch",
    "gradcheck",
    "load",
]
