"""A network's parameters before any backend holds them: widths, dtype, initial values.

Checked and drawn on the host, so a seed gives the same network on every backend.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .checks import check_seed

DTYPES = ("float32", "float64")
INITS = ("normal", "lecun", "xavier", "he")
Array = Any


def check_float_dtype(dtype: Any) -> np.dtype:
    """float32 or float64, named as NumPy users name them ("float32", np.float32, np.dtype)."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in DTYPES or isinstance(dtype, bool):
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return resolved


def flat_views(flat: Array, shapes: Sequence[tuple[int, ...]]) -> list[Array]:
    """Consecutive views of the flat buffer `flat`, one per shape (no copy)."""
    views, offset = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        views.append(flat[offset : offset + size].reshape(shape))
        offset += size
    return views


def check_sizes(sizes: Any) -> list[int]:
    """The layer widths n_0 .. n_L as a list of positive ints (TypeError, ValueError)."""
    try:
        sizes = list(sizes)
    except TypeError:
        raise TypeError(
            f"sizes must be a list of layer widths, got {type(sizes).__name__}"
        ) from None
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output layer, got {sizes}")
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"sizes must be positive integers, got {sizes}")
    sizes = [int(n) for n in sizes]
    check_host_memory(sizes)
    return sizes


def check_host_memory(sizes: list[int]) -> None:
    """MemoryError, before anything is allocated, for widths whose initial parameters (drawn
    in float64 on the host, initial_params) would not fit in the host's physical memory."""
    count = sum(n * k + n for n, k in zip(sizes[1:], sizes[:-1]))  # Python ints: no overflow
    needed, available = 8 * count, host_memory()
    if available is not None and needed > available:
        raise MemoryError(
            f"sizes {sizes} make {count:,} parameters: their initial values (float64, drawn "
            f"on the host) need {needed / 2**30:,.1f} GiB, and this machine has "
            f"{available / 2**30:,.1f} GiB"
        )


def host_memory() -> int | None:
    """The host's physical memory in bytes, None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def initial_params(
    sizes: list[int], init: str, seed: int | None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Weights and biases drawn on the host, so a seed gives the same net on every backend.

    normal: W, b ~ N(0, 1) (Nielsen's large init); lecun: W ~ N(0, 1/n_in), b ~ N(0, 1)
    (Nielsen's default); xavier: W ~ N(0, 2/(n_in + n_out)); he: W ~ N(0, 2/n_in);
    the last two with zero biases.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
    rng = np.random.default_rng(check_seed("seed", seed))
    weights, biases = [], []
    for n_out, n_in in zip(sizes[1:], sizes[:-1]):
        scale = {
            "normal": 1.0,
            "lecun": (1.0 / n_in) ** 0.5,
            "xavier": (2.0 / (n_in + n_out)) ** 0.5,
            "he": (2.0 / n_in) ** 0.5,
        }[init]
        weights.append(rng.standard_normal((n_out, n_in)) * scale)
        nielsen = init in ("normal", "lecun")
        biases.append(rng.standard_normal(n_out) if nielsen else np.zeros(n_out))
    return weights, biases
