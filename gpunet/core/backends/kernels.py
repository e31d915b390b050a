"""gpunet's CUDA kernels (the `kernels/` folder): found, compiled once per process, launched.

The sources are compiled by NVRTC through `cupy.RawModule` on first use, with one name
expression per template instantiation (`bias_activation<float, 1>`); CuPy caches the
binary on disk (its own kernel cache) and per device. `launches.py` holds one function per
kernel (its checks, its argument list, its launch); the checks below need only `.dtype`,
`.flags`, `.shape` and `.strides`, so they work (and are tested) on NumPy arrays. CuPy is
imported only when a kernel is fetched.

Flush to zero: CuPy compiles every RawModule with `-ftz=true` (appended after our options,
and NVRTC takes the last), as it does its own elementwise kernels. gpunet keeps that:
float32 denormals (|x| < 1.18e-38) are zero in and out of every float kernel, so
sigmoid(-88) is 0 in float32 on the GPU where NumPy gives 6.1e-39. float64 keeps its
denormals (`-ftz` applies to single precision only). FLUSH_DENORMALS records the decision
for the tests (the host build reproduces it) and for `gpunet doctor`.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any, Protocol

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
FLUSH_DENORMALS = {numpy.dtype("float32"): True, numpy.dtype("float64"): False}
BLOCK = 256  # threads per block, a multiple of the warp; every kernel loops over any size
WARP = 32
_TEMPLATES = ("bias_activation", "activation_delta")
_KERNELS = (
    "softmax_forward",
    "softmax_delta",
    "softmax_forward_warp",
    "softmax_delta_warp",
    "output_minus_target",
    "sgd_update",
    "adam_update",
    "row_dot",
)
# kernels that give each work item (a column or row) a warp rather than a thread
WARP_KERNELS = frozenset({"softmax_forward_warp", "softmax_delta_warp", "row_dot"})


class Launch(Protocol):
    """Runs kernel `name` (a name expression) over `work` items with `args`.

    `DeviceLauncher` on a GPU; tests pass a host simulator in its place (CupyBackend's
    `launcher` argument).
    """

    def __call__(self, name: str, work: int, args: tuple) -> None: ...


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


def base_name(name: str) -> str:
    """'bias_activation<float, 1>' -> 'bias_activation'."""
    return name.partition("<")[0]


def items_per_block(name: str) -> int:
    """Work items one block of BLOCK threads covers at once: a thread's or a warp's each."""
    return BLOCK // WARP if base_name(name) in WARP_KERNELS else BLOCK


def grid(name: str, work: int, max_blocks: int) -> int:
    """Blocks for `work` items of kernel `name`: enough to cover them, at most max_blocks."""
    return max(1, min(-(-work // items_per_block(name)), max_blocks))


def options() -> tuple[str, ...]:
    """The options gpunet hands RawModule (CuPy adds its own: see offline.py)."""
    return (*OPTIONS, f"-I{kernels_dir()}")


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

    return cupy.RawModule(code=source(), options=options(), name_expressions=name_expressions())


@functools.cache
def function(name: str) -> Any:
    """The kernel (a cupy.RawKernel) called `name`, one of name_expressions()."""
    return module().get_function(name)


class DeviceLauncher:
    """Launches kernels on the current device, each with the grid the device can keep busy.

    A kernel's grid is capped at what the occupancy API says stays resident at once
    (blocks per SM at BLOCK threads, times the SMs), asked at the kernel's first launch on
    each device: the grid-stride loops cover any size with that grid. `max_blocks` caps it
    lower (the GPU tests use 2, to run many strides).
    """

    def __init__(self, max_blocks: int | None = None) -> None:
        import cupy

        self._cupy = cupy
        self.max_blocks = max_blocks
        self.resident: dict[tuple[int, str], int] = {}  # (device, name) -> blocks

    def resident_blocks(self, name: str) -> int:
        """Blocks of kernel `name` resident at once on the current device."""
        cuda = self._cupy.cuda
        key = (cuda.runtime.getDevice(), name)
        if key not in self.resident:
            kernel = function(name).kernel
            per_sm = cuda.driver.occupancyMaxActiveBlocksPerMultiprocessor(kernel.ptr, BLOCK, 0)
            sms = cuda.Device(key[0]).attributes["MultiProcessorCount"]
            self.resident[key] = max(1, int(per_sm)) * int(sms)
        return self.resident[key]

    def __call__(self, name: str, work: int, args: tuple) -> None:
        for arg in args:
            # CuPy would pass a one-element NumPy array by value and reject the others late
            if isinstance(arg, numpy.ndarray):
                raise TypeError("kernel arguments must be CuPy arrays, not NumPy arrays")
        if work <= 0:
            return
        cap = self.resident_blocks(name)
        if self.max_blocks is not None:
            cap = min(cap, self.max_blocks)
        function(name)((grid(name, work, cap),), (BLOCK,), args)


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


def matrix_shape(name: str, array: Any) -> tuple[int, int]:
    """(n, m) of a 2-D array (ValueError otherwise)."""
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, m) array, got shape {tuple(array.shape)}")
    return int(array.shape[0]), int(array.shape[1])


def element_strides(name: str, array: Any) -> tuple[int, ...]:
    """The array's strides in elements (ValueError when one is not a whole element)."""
    itemsize = array.dtype.itemsize
    strides = tuple(int(s) for s in array.strides)
    if any(s % itemsize for s in strides):
        raise ValueError(f"{name} has strides {strides} that are not whole elements")
    return tuple(s // itemsize for s in strides)
