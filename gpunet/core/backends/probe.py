"""Can CuPy run gpunet's GPU path here? Each piece it needs, checked, with what fixes it.

A CuPy wheel without its `ctk` extra imports fine on a machine that has only the NVIDIA
driver, and even finds the GPU; the first training step then fails deep inside CuPy for
want of NVRTC (the kernels' compiler), cuBLAS (the GEMMs) or the CUDA headers (CuPy's own
kernels include cuda_fp16.h). `checks()` looks at each of them without compiling or
allocating anything, so that `backend="auto"` can fall back to NumPy with one line naming
what is missing and the command that installs it, and `gpunet doctor` can show them all.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from dataclasses import dataclass
from typing import Any

CUPY_MIN_VERSION = (14, 2)  # from 14.2 CuPy's disk cache reuses modules with name expressions


@dataclass(frozen=True)
class Check:
    """One thing the GPU path needs: `problem` is None when it is there."""

    name: str
    problem: str | None
    detail: str = ""


def install_hint(cuda_major: int | None = None) -> str:
    """The command that installs CuPy with NVRTC, cuBLAS and the headers (no CUDA toolkit)."""
    minimum = ".".join(map(str, CUPY_MIN_VERSION))
    if cuda_major is None:
        return (
            f"pip install 'cupy-cuda13x[ctk]>={minimum}' for a CUDA 13 driver, or "
            f"'cupy-cuda12x[ctk]>={minimum}' for CUDA 12 (from a gpunet checkout: "
            f"pip install '.[cuda13x]' or '.[cuda12x]')"
        )
    return (
        f"pip install 'cupy-cuda{cuda_major}x[ctk]>={minimum}' (from a gpunet checkout: "
        f"pip install '.[cuda{cuda_major}x]')"
    )


def _version_tuple(version: str) -> tuple[int, int]:
    """(14, 2) from '14.2.0' or '14.2.0rc1'."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def _cuda_major(version: int) -> int:
    """13 from CUDA's 13020."""
    return version // 1000


def check_cupy() -> tuple[Check, Any]:
    """CuPy imports, and is recent enough; the module too, when it imports."""
    try:
        import cupy
    except ImportError:
        return Check("cupy", f"CuPy is not installed: {install_hint()}"), None
    except Exception as error:  # a broken CUDA install can fail at import with anything
        return Check("cupy", f"CuPy failed to import ({error}): {install_hint()}"), None
    if _version_tuple(cupy.__version__) < CUPY_MIN_VERSION:
        minimum = ".".join(map(str, CUPY_MIN_VERSION))
        problem = (
            f"CuPy {cupy.__version__} is older than {minimum} (its kernel cache misses "
            f"gpunet's compiled kernels in every new process): {install_hint(built_for(cupy))}"
        )
        return Check("cupy", problem, cupy.__version__), cupy
    return Check("cupy", None, cupy.__version__), cupy


def built_for(cupy: Any) -> int | None:
    """The CUDA major version this CuPy wheel was built for (12 or 13), if it says."""
    try:
        from cupy_backends.cuda.api import driver

        return _cuda_major(int(driver.get_build_version()))
    except Exception:  # an unusual build: the hint then names both wheels
        return None


def check_device(cupy: Any) -> Check:
    """A CUDA device this CuPy can use (the driver loaded and new enough)."""
    runtime = cupy.cuda.runtime
    try:
        count = runtime.getDeviceCount()
    except Exception as error:  # CUDARuntimeError without a driver, or no device node
        try:
            driver = int(runtime.driverGetVersion())
        except Exception:
            driver = 0
        built = built_for(cupy)
        if driver == 0:
            why = "no NVIDIA driver is loaded"
        elif built is not None and _cuda_major(driver) < built:
            why = (
                f"the driver supports CUDA {_cuda_major(driver)}, this CuPy needs CUDA {built}: "
                f"{install_hint(_cuda_major(driver))}"
            )
        else:
            why = "the driver cannot be used"
        return Check("device", f"CuPy finds no usable CUDA device ({why}; {error})")
    if count == 0:
        return Check("device", "CuPy finds no CUDA device")
    name = runtime.getDeviceProperties(0)["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return Check("device", None, f"{count} device(s), the first a {name}")


def check_nvrtc(cupy: Any) -> Check:
    """NVRTC, which compiles gpunet's kernels and CuPy's own (libnvrtc)."""
    try:
        major, minor = cupy.cuda.nvrtc.getVersion()
    except Exception as error:
        hint = install_hint(built_for(cupy))
        return Check("nvrtc", f"NVRTC (libnvrtc) is missing ({error}): {hint}")
    return Check("nvrtc", None, f"{major}.{minor}")


def check_cublas(cupy: Any) -> Check:
    """cuBLAS, which runs every GEMM (libcublas and libcublasLt)."""
    try:
        _load_cublas()
    except Exception as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        hint = install_hint(built_for(cupy))
        return Check("cublas", f"cuBLAS (libcublasLt) is missing ({first_line}): {hint}")
    return Check("cublas", None, "loaded")


def check_headers(cupy: Any) -> Check:
    """The CUDA headers CuPy's own kernels include (cuda_fp16.h), where CuPy looks for them."""
    try:
        folders, found_error = _include_dirs(), None
    except Exception as error:  # CuPy found no CUDA root at all
        folders, found_error = [], error
    for folder in folders:
        if os.path.isfile(os.path.join(folder, "cuda_fp16.h")):
            return Check("headers", None, folder)
    because = f" ({found_error})" if found_error else ""
    hint = install_hint(built_for(cupy))
    return Check("headers", f"the CUDA headers (cuda_fp16.h) are missing{because}: {hint}")


def _load_cublas() -> None:
    from cupy_backends.cuda.libs import cublas  # noqa: F401  (loading it loads libcublasLt)


def _include_dirs() -> list[str]:
    """The -I folders CuPy hands NVRTC for every kernel, its own and ours."""
    from cupy._core import core

    options = core.assemble_cupy_compiler_options(())
    return [option[2:] for option in options if option.startswith("-I")]


def check_nccl(cupy: Any) -> Check:
    """NCCL, for GPU ranks of a distributed job only (libnccl)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CuPy warns at import when libnccl is absent
        from cupy.cuda import nccl
    if not getattr(nccl, "available", False):
        major = built_for(cupy) or 13
        return Check(
            "nccl",
            f"NCCL is not available to CuPy (libnccl.so.2 not found): pip install "
            f"'nvidia-nccl-cu{major}>=2.27.7,<3' (from a gpunet checkout: pip install "
            f"'.[nccl-cuda{major}x]')",
        )
    try:
        version = str(nccl.get_version())
    except Exception as error:
        version = f"version unknown ({error})"
    return Check("nccl", None, version)


def checks() -> list[Check]:
    """Every check of the GPU path, in order; those that need CuPy only when it imports."""
    found, cupy = check_cupy()
    if cupy is None:
        return [found]
    return [found, check_device(cupy), check_nvrtc(cupy), check_cublas(cupy), check_headers(cupy)]


@functools.cache
def cupy_unavailable() -> str | None:
    """None when CuPy can run gpunet here, else one line: what is missing, what installs it.

    Computed once per process (`cupy_unavailable.cache_clear()` asks again).
    """
    for check in checks():
        if check.problem is not None:
            return check.problem
    return None
