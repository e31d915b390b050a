"""Argument checks, run before any work so that bad input never touches a model.

Each raises a TypeError or ValueError naming the argument and what was expected.
"""

from __future__ import annotations

import numbers
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .io import check_target, temporary_path


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or >= 0), returned as a Python float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return value


def check_unit_interval(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """A number in [0, 1) (or (0, 1)), returned as a Python float."""
    value = check_positive(name, value, allow_zero=allow_zero)
    if value >= 1:
        raise ValueError(f"{name} must be below 1, got {value}")
    return value


def check_count(name: str, value: Any, *, allow_zero: bool = False) -> int:
    """An integer >= 1 (or >= 0), a NumPy integer included, returned as a Python int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < int(not allow_zero):
        bound = "an integer >= 0" if allow_zero else "a positive integer"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def check_seed(name: str, value: Any) -> int | None:
    """None (fresh entropy) or an integer >= 0, as np.random.default_rng takes it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be None or an integer >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be None or an integer >= 0, got {value}")
    return int(value)


def check_flag(name: str, value: Any) -> bool:
    """True or False, nothing else (1 and "yes" are mistakes here, not flags)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return value


def check_output_path(name: str, path: Any, *, suffix: str | tuple[str, ...] | None = None) -> Path:
    """A str or os.PathLike naming a file this process can write, as a Path, ending in
    `suffix` (or one of several) when one is given.

    Not a directory nor a device, in an existing directory where a file can be created: that
    is tried (a temporary is made and removed), since permission bits do not tell for root,
    on a read-only mount or under /proc. The errors are those of io.check_target, and
    the OSError of the try (PermissionError, ...), each naming the argument.
    """
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        raise TypeError(f"{name} must be a str or path, got {type(path).__name__}")
    target = check_target(name, path)
    suffixes = (suffix,) if isinstance(suffix, str) else suffix
    if suffixes is not None and Path(path).suffix.lower() not in suffixes:
        raise ValueError(f"{name} must end in {' or '.join(suffixes)}, got {os.fspath(path)!r}")
    probe = temporary_path(target)
    try:
        probe.open("xb").close()
    except OSError as error:
        raise type(error)(
            f"{name} {os.fspath(path)!r} cannot be written: {error.strerror or error} in "
            f"{os.fspath(target.parent)!r}; choose a directory you can write to"
        ) from None
    probe.unlink()
    return Path(path)


def check_distinct(paths: Sequence[tuple[str, Any]]) -> None:
    """No two of the (argument, path) outputs of one run the same file (through links and
    relative paths): each would overwrite what the other wrote; ValueError naming both."""
    written: dict[str, str] = {}
    for name, path in paths:
        if path is None:
            continue
        key = os.path.realpath(path)
        if key in written:
            raise ValueError(f"{written[key]} and {name} name the same file {os.fspath(path)!r}")
        written[key] = name


def array_module(x: Any) -> Any:
    """numpy, or cupy for a CuPy array (without importing CuPy when it is not in use)."""
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy
    return np


# DLPack device types (dlpack.h): kDLCPU, kDLCUDA, kDLCUDAHost, kDLCUDAManaged
DLPACK_CPU, DLPACK_CUDA = (1,), (2, 3, 13)


def from_dlpack(name: str, value: Any) -> Any:
    """A NumPy or CuPy view (no copy) of a __dlpack__ array: a torch tensor, a JAX array.

    A CUDA tensor stays on the GPU (CuPy), a CPU one becomes NumPy. Refused: tensors that
    require grad (gpunet would drop the graph silently) and dtypes NumPy has no name for.
    """
    if getattr(value, "requires_grad", False):
        raise TypeError(f"{name} requires grad: pass {name}.detach() (gpunet keeps no autograd)")
    dtype = str(getattr(value, "dtype", ""))
    if "bfloat16" in dtype or "float8" in dtype:
        raise TypeError(f"{name} has dtype {dtype}: convert it to float32 first")
    device_type = value.__dlpack_device__()[0]
    if device_type in DLPACK_CPU:
        return np.from_dlpack(value)
    if device_type in DLPACK_CUDA:
        try:
            import cupy
        except ImportError:
            raise TypeError(f"{name} is on a CUDA device, and CuPy is not installed") from None
        return cupy.from_dlpack(value)
    raise TypeError(f"{name} is on DLPack device type {device_type}: gpunet reads CPU and CUDA")


def _as_numeric(name: str, value: Any) -> Any:
    # NumPy and CuPy arrays are taken as they are; any other __dlpack__ array is viewed
    foreign = not isinstance(value, np.ndarray) and array_module(value) is np
    if foreign and hasattr(value, "__dlpack__"):
        value = from_dlpack(name, value)
    xp = array_module(value)
    try:
        array = xp.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a numeric array: {error}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}")
    return array


def check_features(X: Any, n_inputs: int, dtype: Any, name: str = "X") -> Any:
    """X as an (m, n_inputs) array of dtype, with m >= 1 and no NaN or inf after the cast."""
    X = _as_numeric(name, X)
    if X.ndim != 2 or X.shape[1] != n_inputs:
        # one example given as a vector is the usual slip
        hint = f"; one example is {name}.reshape(1, -1)" if X.shape == (n_inputs,) else ""
        raise ValueError(
            f"{name} must have shape (m, {n_inputs}) (one row per example), got {X.shape}{hint}"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: it needs at least one example (row)")
    if X.dtype != dtype:
        with np.errstate(over="ignore"):  # beyond float32's range becomes inf, caught below
            X = X.astype(dtype)
    if not all_finite(X):
        raise ValueError(f"{name} contains NaN or inf (as {np.dtype(dtype).name})")
    return X


# below this many entries a mask is cheaper than the sums of `all_finite`
SMALL_ARRAY = 1 << 16


def all_finite(X: Any) -> bool:
    """No NaN or inf in the float array X (NumPy or CuPy)."""
    xp = array_module(X)
    if X.size <= SMALL_ARRAY:
        return bool(xp.isfinite(X).all())
    # finite sums prove every entry finite without a mask as large as X, so only a NaN or
    # infinite sum (or one that overflowed) takes the entry-by-entry look; on the CPU the
    # row sums are a GEMV, on BLAS's threads
    gemv = xp is np and X.ndim == 2
    with np.errstate(over="ignore", invalid="ignore"):
        sums = np.matmul(X, np.ones(X.shape[1], X.dtype)) if gemv else X.sum()
    return bool(xp.isfinite(sums).all()) or bool(xp.isfinite(X).all())


def check_targets(
    Y: Any, m: int, n_outputs: int, cost: Any, output: str, dtype: Any, name: str = "Y"
) -> tuple[Any, Any]:
    """Y as (targets of shape (m, n_outputs) in dtype, integer labels or None).

    Y may be integer class labels of shape (m,) or targets of shape (m, n_outputs), with
    no NaN or inf after the cast to dtype (as check_features); labels are derived from
    one-hot targets so that accuracy can be reported.
    """
    Y = _as_numeric(name, Y)
    xp = array_module(Y)
    if Y.shape[:1] != (m,):
        raise ValueError(f"{name} has {Y.shape[0] if Y.ndim else 0} rows but X has {m}")
    if Y.ndim == 1:
        if Y.dtype.kind not in "biu":
            raise TypeError(
                f"{name} of shape ({m},) must be integer class labels, got dtype {Y.dtype}; "
                f"give real-valued targets as shape ({m}, {n_outputs})"
            )
        n_classes = max(n_outputs, 2)
        if bool((Y < 0).any()) or bool((n_classes <= Y).any()):
            raise ValueError(
                f"{name} has labels outside 0..{n_classes - 1} "
                f"(the network has {n_outputs} output{'s' * (n_outputs > 1)})"
            )
        labels = Y.astype(np.int64)
        targets = (
            labels[:, None] if n_outputs == 1 else xp.eye(n_outputs, dtype=np.float32)[labels]
        )  # 0 and 1 are exact
    elif Y.ndim == 2 and Y.shape[1] == n_outputs:
        # a float64 beyond float32's range would become inf in a float32 network
        with np.errstate(over="ignore"):
            targets = Y.astype(dtype, copy=False)
        if not bool(xp.isfinite(targets).all()):
            raise ValueError(f"{name} contains NaN or inf (as {np.dtype(dtype).name})")
        binary = bool(((Y == 0) | (Y == 1)).all())
        if binary and n_outputs == 1:
            labels = Y[:, 0].astype(np.int64)
        elif binary and bool((Y.sum(axis=1) == 1).all()):
            labels = Y.argmax(axis=1)
        else:
            labels = None
    else:
        raise ValueError(
            f"{name} must be labels of shape ({m},) or targets of shape ({m}, {n_outputs}), "
            f"got {Y.shape}"
        )
    if cost.name in ("cross_entropy", "log_likelihood") and (
        bool((targets < 0).any()) or bool((targets > 1).any())
    ):
        raise ValueError(f"{name} must lie in [0, 1] for the {cost.name} cost")
    # softmax's fused delta (A − Y)/m holds only for targets that are distributions
    sums = targets.sum(axis=1)
    if cost.name == "log_likelihood" and output == "softmax" and not bool(xp.allclose(sums, 1.0)):
        raise ValueError(
            f"{name} rows must each sum to 1 (probabilities) for softmax + log_likelihood"
        )
    return targets, labels
