"""What a benchmark ran on, and the settings that put gpunet and its peers on the same footing.

Every record is written without the absolute paths of the machines that built or ran it
(`portable`): a results file is read on other machines, beside a checkout of its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import gc
import glob
import hashlib
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ... import __version__
from ...core.backends import select_backend
from ...core.backends.numpy_backend import cpu_model

PACKAGE = Path(__file__).resolve().parents[2]  # gpunet/, whose sources are measured
# two or more /segments, not inside a word, a relative path or a ratio like 1/K
ABSOLUTE_PATH = re.compile(r"(?<![\w.~/)\]-])(?:/[\w.+@-]+){2,}/?")


def portable(tree: Any, root: str | os.PathLike[str] | None = None) -> Any:
    """`tree` (a record: dicts, lists, strings) with each absolute path in its strings
    written relative to `root` (default: the working directory) when under it, else as
    its last part."""
    base = Path.cwd() if root is None else Path(root)

    def relative(match: re.Match[str]) -> str:
        path = Path(match.group())
        return os.path.relpath(path, base) if path.is_relative_to(base) else path.name

    if isinstance(tree, str):
        return ABSOLUTE_PATH.sub(relative, tree)
    if isinstance(tree, dict):
        return {key: portable(value, base) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(portable(value, base) for value in tree)
    return tree


def openblas() -> tuple[Any, str, str] | None:
    """NumPy's bundled OpenBLAS (ctypes handle, symbol prefix and suffix), or None."""
    libs = Path(np.__file__).parent.parent / "numpy.libs"
    for path in sorted(glob.glob(str(libs / "*openblas*"))):
        lib = ctypes.CDLL(path)
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                if hasattr(lib, f"{prefix}get_num_threads{suffix}"):
                    return lib, prefix, suffix
    return None


def blas_threads() -> int:
    """The threads NumPy's BLAS runs GEMMs on (peers on the CPU are given as many)."""
    found = openblas()
    if found is not None:
        lib, prefix, suffix = found
        return int(getattr(lib, f"{prefix}get_num_threads{suffix}")())
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            return int(os.environ[var])
    return os.cpu_count() or 1


def blas_info() -> dict[str, Any]:
    """The BLAS NumPy was built with and what it runs as (threads, kernel)."""
    config = np.show_config(mode="dicts")
    info: dict[str, Any] = {
        "build": portable(config.get("Build Dependencies", {}).get("blas", {})),
        "threads": blas_threads(),
    }
    found = openblas()
    if found is not None:
        lib, prefix, suffix = found
        for name in ("get_corename", "get_config"):
            fn = getattr(lib, f"{prefix}{name}{suffix}", None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                info[name.removeprefix("get_")] = fn().decode()
    return info


def gpunet_source() -> dict[str, Any]:
    """Which gpunet was measured: its path, a hash of its sources, and the git state."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode())
        digest.update(path.read_bytes())
    record: dict[str, Any] = {"path": portable(str(PACKAGE)), "sources_sha256": digest.hexdigest()}
    try:
        run = {"cwd": PACKAGE.parent, "capture_output": True, "text": True, "timeout": 10}
        head = subprocess.run(["git", "rev-parse", "HEAD"], **run)
        if head.returncode == 0:
            record["git_head"] = head.stdout.strip()
            status = ["git", "--no-optional-locks", "status", "--porcelain", "--", str(PACKAGE)]
            record["git_status_gpunet"] = subprocess.run(status, **run).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        pass
    return record


def environment(backend_name: str) -> dict[str, Any]:
    """CPU, threads, GPU, driver, CUDA and library versions, recorded with every result."""
    record: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "blas": blas_info(),
        "gpunet": __version__,
        "gpunet_source": gpunet_source(),
    }
    try:
        import torch

        record["torch"] = torch.__version__
        record["torch_cuda"] = torch.version.cuda
        record["torch_threads"] = torch.get_num_threads()
    except ImportError:
        record["torch"] = None
    if backend_name == "cupy":
        backend, _ = select_backend("cupy")
        record["gpu"] = backend.describe()
    return record


def memory_available(backend_name: str) -> int:
    """Bytes a benchmark may use: half the free host memory, or 80% of the free device memory."""
    if backend_name == "cupy":
        import cupy

        free, _ = cupy.cuda.runtime.memGetInfo()
        return int(0.8 * free)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    return 8 << 30


def release_memory(backend_name: str) -> None:
    """Hand cached device blocks back, so that the next cell's memory check sees them free."""
    gc.collect()
    if backend_name != "cupy":
        return
    import cupy

    cupy.get_default_memory_pool().free_all_blocks()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def same_footing(backend_name: str, tf32: bool) -> Iterator[None]:
    """PyTorch on as many threads as NumPy's BLAS, and cuBLAS's float32 GEMMs in TF32 (or
    full float32) for CuPy and PyTorch alike; every global setting restored afterwards."""
    undo: list[Callable[[], None]] = []
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        # the current precision API (allow_tf32 is deprecated, and mixing the two raises)
        matmul = torch.backends.cuda.matmul
        threads, precision = torch.get_num_threads(), matmul.fp32_precision
        undo.append(lambda: torch.set_num_threads(threads))
        undo.append(lambda: setattr(matmul, "fp32_precision", precision))
        if backend_name == "numpy":
            torch.set_num_threads(blas_threads())
        matmul.fp32_precision = "tf32" if tf32 else "ieee"
    if backend_name == "cupy":
        from cupy._core import _routines_linalg as linalg

        previous = linalg.get_compute_type(np.float32)
        undo.append(lambda: linalg.set_compute_type(np.float32, previous))
        mode = linalg.COMPUTE_TYPE_TF32 if tf32 else linalg.COMPUTE_TYPE_DEFAULT
        linalg.set_compute_type(np.float32, mode)
    try:
        yield
    finally:
        for restore in reversed(undo):
            restore()
