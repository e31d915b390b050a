"""gpunet's CUDA kernels (the `kernels/` folder): found, compiled once per process, launched.

The sources are compiled by NVRTC through `cupy.RawModule` on first use, with one name
expression per template instantiation (`bias_activation<float, 1>`); CuPy caches the
binary on disk (its own kernel cache) and per device. The argument checks below run
before every launch and need only `.dtype`, `.flags`, `.shape` and `.strides`, so they
work (and are tested) on NumPy arrays; CuPy is imported only when a kernel is fetched.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy

# the ActivationId enum of kernels/activations.cuh
ACTIVATION_IDS = {
    "identity": 0,
    "sigmoid": 1,
    "tanh": 2,
    "relu": 3,
    "leaky_relu": 4,
    "softplus": 5,
    "gelu": 6,
}
C_TYPES = {numpy.dtype("float32"): "float", numpy.dtype("float64"): "double"}
SOURCES = ("elementwise.cu",)
OPTIONS = ("-std=c++17",)
BLOCK = 256  # threads per block; every kernel is a grid-stride loop, any size works
BLOCKS_PER_SM = 8  # 8 x 256 = 2048 threads, a full SM on sm_80 / sm_90
_TEMPLATES = ("bias_activation", "activation_delta")
_KERNELS = (
    "softmax_forward",
    "softmax_delta",
    "output_minus_target",
    "sgd_update",
    "adam_update",
)


def kernels_dir() -> Path:
    """The .cu/.cuh sources: `gpunet/kernels` in a wheel, `<repo>/kernels` in a checkout."""
    package = Path(__file__).resolve().parents[2]
    candidates = (package / "kernels", package.parent / "kernels")
    for folder in candidates:
        if all((folder / name).is_file() for name in SOURCES):
            return folder
    raise FileNotFoundError(
        "gpunet's CUDA sources are missing: looked for "
        + " and ".join(str(folder / SOURCES[0]) for folder in candidates)
    )


def name_expressions() -> list[str]:
    """Every kernel instantiation, as NVRTC name expressions and `get_function` keys."""
    names = []
    for c_type in C_TYPES.values():
        for template in _TEMPLATES:
            names += [f"{template}<{c_type}, {i}>" for i in ACTIVATION_IDS.values()]
        names += [f"{kernel}<{c_type}>" for kernel in _KERNELS]
    return names


def kernel_name(kernel: str, dtype: Any, activation: str | None = None) -> str:
    """The name expression of `kernel` for arrays of `dtype` (and `activation`)."""
    c_type = C_TYPES[numpy.dtype(dtype)]
    if activation is None:
        return f"{kernel}<{c_type}>"
    return f"{kernel}<{c_type}, {ACTIVATION_IDS[activation]}>"


def source() -> str:
    """The module's source: the .cu files, headed by a digest of every header.

    CuPy's disk cache keys on the source text and options only, not on files reached
    through #include, so the digest makes an edited .cuh recompile.
    """
    folder = kernels_dir()
    digest = hashlib.sha256()
    for header in sorted(folder.glob("*.cuh")):
        digest.update(header.name.encode() + b"\0" + header.read_bytes())
    texts = [(folder / name).read_text(encoding="utf-8") for name in SOURCES]
    return f"// headers sha256 {digest.hexdigest()}\n" + "\n".join(texts)


@functools.cache
def module() -> Any:
    """The cupy.RawModule of every kernel (compiled on its first get_function)."""
    import cupy

    return cupy.RawModule(
        code=source(),
        options=(*OPTIONS, f"-I{kernels_dir()}"),
        name_expressions=name_expressions(),
    )


@functools.cache
def function(name: str) -> Any:
    """The kernel (a cupy.RawKernel) called `name`, one of name_expressions()."""
    return module().get_function(name)


def launch(name: str, blocks: int, args: tuple) -> None:
    """Run kernel `name` on the current stream with `blocks` blocks of BLOCK threads."""
    for arg in args:
        # CuPy would pass a one-element NumPy array by value and reject the others late
        if isinstance(arg, numpy.ndarray):
            raise TypeError("kernel arguments must be CuPy arrays, not NumPy arrays")
    function(name)((blocks,), (BLOCK,), args)


def grid(work: int, max_blocks: int) -> int:
    """Blocks for `work` items (elements or columns): enough to cover it, at most max_blocks."""
    return max(1, min(-(-work // BLOCK), max_blocks))


# --- checks, run before every launch ---------------------------------------------------


def check_dtype(**arrays: Any) -> numpy.dtype:
    """The one float32/float64 dtype shared by all the arrays, else a TypeError."""
    dtypes = {name: numpy.dtype(array.dtype) for name, array in arrays.items()}
    first = next(iter(dtypes.values()))
    if first not in C_TYPES:
        name = next(iter(dtypes))
        raise TypeError(f"{name} must be float32 or float64 for the CUDA kernels, got {first}")
    for name, dtype in dtypes.items():
        if dtype != first:
            listed = ", ".join(f"{n}: {d}" for n, d in dtypes.items())
            raise TypeError(f"the kernel's arrays must share one dtype, got {listed} ({name})")
    return first


def check_contiguous(**arrays: Any) -> None:
    """Arrays handed to a kernel as raw pointers must be C-contiguous (ValueError)."""
    for name, array in arrays.items():
        if not array.flags.c_contiguous:
            raise ValueError(
                f"{name} must be C-contiguous for the CUDA kernels "
                f"(shape {tuple(array.shape)}, strides {tuple(array.strides)})"
            )


def check_shape(shape: tuple[int, ...], **arrays: Any) -> None:
    """Every array has exactly `shape` (ValueError)."""
    for name, array in arrays.items():
        if tuple(array.shape) != tuple(shape):
            raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(array.shape)}")


def element_strides(name: str, array: Any) -> tuple[int, ...]:
    """The array's strides in elements (ValueError when one is not a whole element)."""
    itemsize = array.dtype.itemsize
    strides = tuple(int(s) for s in array.strides)
    if any(s % itemsize for s in strides):
        raise ValueError(f"{name} has strides {strides} that are not whole elements")
    return tuple(s // itemsize for s in strides)
