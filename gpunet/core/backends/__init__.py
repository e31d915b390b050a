"""Backend selection: `auto` takes CuPy when a GPU is usable, else NumPy, and says why."""

from __future__ import annotations

from .base import Backend
from .cupy_backend import CupyBackend
from .numpy_backend import NumpyBackend
from .probe import cupy_unavailable

BACKENDS = ("auto", "numpy", "cupy")


class BackendUnavailableError(RuntimeError):
    """The backend asked for cannot run on this machine."""


def select_backend(name: str = "auto") -> tuple[Backend, str]:
    """The backend called `name` and one line on why it was chosen."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    if name == "numpy":
        return NumpyBackend(), "numpy (asked for)"
    why_not = cupy_unavailable()
    if name == "cupy":
        if why_not is not None:
            raise BackendUnavailableError(f"backend 'cupy' asked for, but {why_not}")
        return CupyBackend(), "cupy (asked for)"
    if why_not is not None:
        return NumpyBackend(), f"numpy (auto: {why_not})"
    backend = CupyBackend()
    return backend, f"cupy (auto: found {backend.describe()['device']})"


__all__ = [
    "Backend",
    "BackendUnavailableError",
    "CupyBackend",
    "NumpyBackend",
    "cupy_unavailable",
    "select_backend",
]
