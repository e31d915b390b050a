"""The library: the network and its equations (BP1–BP4), activations, costs, optimizers,
the numeric gradient check, model files, and the backends they run on. Imports nothing
from `gpunet.train` or `gpunet.tools` (Network.fit's deferred import aside)."""

from .backends import BackendUnavailableError
from .gradcheck import gradcheck
from .network import Network, from_torch, load
from .optimizers import SGD, Adam, Optimizer

__all__ = [
    "SGD",
    "Adam",
    "BackendUnavailableError",
    "Network",
    "Optimizer",
    "from_torch",
    "gradcheck",
    "load",
]
