"""The CUDA sources and the CuPy backend's shape, checked without a GPU.

1. The sources: found (in a checkout and in a wheel), plain ASCII, one name expression per
   kernel instantiation, a cache key that sees the headers.
2. nvcc (skipped without it): every kernels/*.cu compiles for sm_80, sm_90 and sm_100 with
   warnings as errors and every name expression instantiated; float kernels never touch
   double; no kernel spills registers (ptxas -v, whose counts the report records).
3. CupyBackend only dispatches: the same public methods as NumpyBackend, overrides without
   docstrings of their own, and the module imports without CuPy.

tests/test_nvrtc.py compiles the same module with CuPy's NVRTC, as RawModule does;
tests/test_kernels_host.py runs the kernels' math on the host.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from kernel_sources import (
    C_DTYPES,
    KERNELS,
    all_signatures,
    instantiations,
    kernel_signatures,
    split_name,
)

import gpunet
from gpunet.core.activations import ACTIVATIONS
from gpunet.core.backends import Backend, CupyBackend, NumpyBackend, kernels, launches

NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(
    NVCC is None, reason="nvcc is not on PATH: the CUDA compile checks need the CUDA toolkit"
)
ARCHS = ("sm_80", "sm_90", "sm_100")


# --- 1. the sources -------------------------------------------------------------------------


def test_sources_are_found_and_ascii():
    assert (KERNELS / "elementwise.cu").is_file()
    for path in [*KERNELS.glob("*.cu"), *KERNELS.glob("*.cuh")]:
        path.read_bytes().decode("ascii")  # NVRTC and CuPy's cache see plain bytes


def test_name_expressions_cover_every_kernel_and_activation():
    signatures = all_signatures()
    names = kernels.name_expressions()
    assert len(set(names)) == len(names)
    assert {split_name(n)[0] for n in names} == set(signatures)
    for kernel in signatures:
        for c_type in C_DTYPES:
            assert any(
                split_name(n)[0] == kernel and split_name(n)[1][0] == c_type for n in names
            ), (kernel, c_type)
    # every activation but softmax (its own kernels) has an elementwise kernel, and back
    assert set(kernels.ACTIVATION_IDS) == set(ACTIVATIONS) - {"softmax"}
    assert sorted(kernels.ACTIVATION_IDS.values()) == list(range(len(kernels.ACTIVATION_IDS)))
    assert set(signatures) >= kernels.WARP_KERNELS


def test_source_heads_with_a_digest_of_the_headers():
    source = kernels.source()
    assert re.match(r"// headers sha256 [0-9a-f]{64}\n", source)
    assert "__global__ void bias_activation" in source


def test_kernels_dir_inside_an_installed_package(tmp_path):
    # the wheel layout: gpunet/core/backends/kernels.py, the sources in gpunet/kernels/
    backends = tmp_path / "gpunet" / "core" / "backends"
    backends.mkdir(parents=True)
    shutil.copy(kernels.__file__, backends / "kernels.py")
    shutil.copytree(KERNELS, tmp_path / "gpunet" / "kernels")
    spec = importlib.util.spec_from_file_location("wheel_kernels", backends / "kernels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.kernels_dir() == (tmp_path / "gpunet" / "kernels").resolve()
    shutil.rmtree(tmp_path / "gpunet" / "kernels")
    with pytest.raises(FileNotFoundError, match="CUDA sources are missing"):
        module.kernels_dir()


@pytest.mark.parametrize("work", [0, 1, 7, 8, 9, 255, 256, 257, 10_000])
@pytest.mark.parametrize("cap", [1, 2, 1000])
def test_grid_covers_the_work_up_to_the_cap(work, cap):
    for name, per_block in (("bias_activation<float, 1>", 256), ("row_dot<double>", 8)):
        assert kernels.items_per_block(name) == per_block
        blocks = kernels.grid(name, work, cap)
        assert 1 <= blocks <= cap
        # either every item has a thread (warp) of its own, or the grid is at the cap
        assert blocks * per_block >= work or blocks == cap


# --- 2. nvcc ----------------------------------------------------------------------------------

NVCC_FLAGS = (
    "-std=c++17",
    "-Werror",
    "all-warnings",
    "-Xcompiler",
    "-Wall,-Wextra,-Werror",
    "-Xptxas",
    "-Werror",
)


def nvcc(tmp_path: Path, name: str, code: str, *flags: str) -> str:
    source = tmp_path / f"{name}.cu"
    source.write_text(code)
    command = [NVCC, *NVCC_FLAGS, *flags, f"-I{KERNELS}", "-c", str(source)]
    command += ["-o", str(tmp_path / f"{name}.o")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)}\n{output}"
    assert "warning" not in output.lower(), output
    return output


@needs_nvcc
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("cu", sorted(p.name for p in KERNELS.glob("*.cu")))
def test_nvcc_compiles_every_instantiation_without_warnings_or_spills(tmp_path, cu, arch):
    defined = set(kernel_signatures(KERNELS / cu))
    names = [n for n in kernels.name_expressions() if split_name(n)[0] in defined]
    assert names
    code = f'#include "{cu}"\n{instantiations(names)}'
    output = nvcc(tmp_path, "all", code, f"-arch={arch}", "-Xptxas", "-v")
    usage = re.findall(r"Used (\d+) registers", output)
    assert len(usage) == len(names), output  # one line per kernel
    assert all(0 < int(r) <= 255 for r in usage)
    spills = re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", output)
    assert spills and all(s == ("0", "0") for s in spills), output


@needs_nvcc
def test_float_kernels_never_compute_in_double(tmp_path):
    # ptxas flags any double-precision instruction: a float kernel must stay in float
    names = [n for n in kernels.name_expressions() if split_name(n)[1][0] == "float"]
    code = '#include "elementwise.cu"\n' + instantiations(names)
    nvcc(tmp_path, "float_only", code, "-arch=sm_90", "-Xptxas", "-warn-double-usage")


# --- 3. the backends' interface ------------------------------------------------------------


def public_methods(cls) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_cupy_and_numpy_backends_have_the_same_public_methods():
    cupy_methods = public_methods(CupyBackend)
    numpy_methods = public_methods(NumpyBackend)
    assert set(cupy_methods) == set(numpy_methods)
    assert set(public_methods(Backend)) <= set(cupy_methods)
    for name, signature in numpy_methods.items():
        assert cupy_methods[name] == signature, name


STAGES = {"matmul", "bias_activation", "activation_delta", "output_minus_target"}
STAGES |= {"bias_gradient", "sgd_update", "adam_update"}


def test_cupy_backend_overrides_only_dispatch():
    # no docstring of their own (the base's applies), and each stage calls functions of
    # launches.py, or the generic stage
    kernel_functions = {
        name
        for name, f in inspect.getmembers(launches, inspect.isfunction)
        if f.__module__ == launches.__name__ and not name.startswith("_")
    }
    overrides = {
        name
        for name, member in vars(CupyBackend).items()
        if inspect.isfunction(member) and name in vars(Backend)
    }
    assert overrides >= STAGES
    for name in overrides:
        assert vars(CupyBackend)[name].__doc__ is None, f"CupyBackend.{name} repeats a docstring"
    for name in STAGES:
        source = inspect.getsource(vars(CupyBackend)[name])
        called = set(re.findall(r"launches\.(\w+)\(", source))
        assert called and called <= kernel_functions, (name, called)


def test_cupy_backend_module_imports_without_cupy():
    # CuPy hidden (even where it is installed): gpunet imports and falls back to NumPy
    code = (
        "import sys; sys.modules['cupy'] = None; sys.modules['cupyx'] = None\n"
        "import gpunet\n"
        "from gpunet.core.backends.cupy_backend import CupyBackend, cupy_unavailable\n"
        "assert 'not installed' in cupy_unavailable(), cupy_unavailable()\n"
        "assert 'cupy-cuda13x[ctk]' in cupy_unavailable(), cupy_unavailable()\n"
        "net = gpunet.Network([2, 2], backend='auto')\n"
        "assert net.backend.name == 'numpy', net.backend_reason\n"
    )
    root = Path(gpunet.__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_device_launcher_sizes_the_grid_from_occupancy(monkeypatch):
    # CuPy stood in for: 3 blocks of 256 threads resident per SM (what 64+ registers a
    # thread allow), 132 SMs; the grid is asked for once per device and kernel
    asked, launched = [], []

    class Kernel:
        kernel = types.SimpleNamespace(ptr=1234)

        def __call__(self, grid, block, args):
            launched.append((grid, block))

    driver = types.SimpleNamespace(
        occupancyMaxActiveBlocksPerMultiprocessor=lambda ptr, block, smem: asked.append(ptr) or 3
    )
    device = types.SimpleNamespace(attributes={"MultiProcessorCount": 132})
    cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDevice=lambda: 0), driver=driver, Device=lambda i: device
    )
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setattr(kernels, "function", lambda name: Kernel())
    launch = kernels.DeviceLauncher()
    for work in (0, 10, 10**6, 10**6):
        launch("bias_activation<float, 1>", work, ())
    launch("row_dot<float>", 100, ())  # a warp per row: 8 rows per block
    assert launched == [((1,), (256,)), ((396,), (256,)), ((396,), (256,)), ((13,), (256,))]
    assert asked == [1234, 1234] and launch.resident_blocks("row_dot<float>") == 396
    capped = kernels.DeviceLauncher(max_blocks=2)
    capped("bias_activation<float, 1>", 10**6, ())
    assert launched[-1] == ((2,), (256,))
    with pytest.raises(TypeError, match="CuPy arrays"):
        launch("bias_activation<float, 1>", 10, (np.zeros(3),))
