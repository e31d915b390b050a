"""gpunet's kernel module compiled by CuPy's NVRTC exactly as RawModule compiles it at run
time (gpunet/core/backends/offline.py), for sm_80, sm_90 and sm_100, without a GPU.

Needs CuPy with NVRTC and the CUDA headers (pip install '.[nvrtc]': no driver, no GPU);
skipped without them, except where GPUNET_REQUIRE_NVRTC=1 (CI) makes that a failure.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from gpunet.core.backends import kernels, probe

ARCHS = ("80", "90", "100")


def _nvrtc_missing() -> str | None:
    found, cupy = probe.check_cupy()
    if cupy is None or found.problem is not None:
        return found.problem
    for check in (probe.check_nvrtc(cupy), probe.check_headers(cupy)):
        if check.problem is not None:
            return check.problem
    return None


MISSING = _nvrtc_missing()
if MISSING is not None and os.environ.get("GPUNET_REQUIRE_NVRTC") == "1":
    raise RuntimeError(f"GPUNET_REQUIRE_NVRTC=1 but CuPy's NVRTC cannot run: {MISSING}")
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"no CuPy NVRTC: {MISSING}")


@pytest.fixture(scope="module")
def compiled():
    from gpunet.core.backends import offline

    return {arch: offline.compile_module(arch) for arch in ARCHS}


@pytest.mark.parametrize("arch", ARCHS)
def test_every_name_expression_maps_to_a_kernel_in_the_cubin(compiled, arch):
    from gpunet.core.backends import offline

    module = compiled[arch]
    names = kernels.name_expressions()
    assert set(module.lowered) == set(names)
    lowered = list(module.lowered.values())
    assert len(set(lowered)) == len(lowered)
    assert all(name.startswith("_Z") for name in lowered)  # mangled: a template instance
    in_binary = offline.register_counts(module.cubin)
    assert set(lowered) <= set(in_binary), set(lowered) - set(in_binary)
    # every kernel fits, and runs with the 256-thread blocks kernels.py launches
    assert all(0 < count <= 255 for count in module.registers().values())
    assert max(module.registers().values()) * kernels.BLOCK <= 65536


@pytest.mark.parametrize("arch", ARCHS)
def test_nvrtc_gets_our_options_cupys_and_the_architecture(compiled, arch):
    options = compiled[arch].options
    for option in kernels.options():
        assert option in options
    assert f"-arch=sm_{arch}" in options  # a cubin for the device, not PTX
    # the flush-to-zero decision rests on CuPy passing -ftz=true last (NVRTC takes the last)
    ftz = [o for o in options if o.startswith("-ftz=")]
    assert ftz[-1] == "-ftz=true"
    assert kernels.FLUSH_DENORMALS[np.dtype("float32")]
    assert not kernels.FLUSH_DENORMALS[np.dtype("float64")]
    assert any(o.startswith("-I") and o.rstrip("/").endswith("include") for o in options)


def test_the_disk_cache_serves_a_second_process(tmp_path):
    # from CuPy 14.2 a module compiled with name expressions is found again on disk
    from gpunet.core.backends import offline

    cold = offline.compile_module("90", str(tmp_path))
    warm = offline.compile_module("90", str(tmp_path))
    assert not cold.from_cache and warm.from_cache
    assert warm.lowered == cold.lowered and warm.cubin == cold.cubin
    assert list(tmp_path.iterdir())


def test_a_compile_error_is_raised_with_nvrtc_log(monkeypatch):
    from cupy.cuda.compiler import CompileException

    from gpunet.core.backends import offline

    monkeypatch.setattr(kernels, "source", lambda: "__global__ void broken( {")
    with pytest.raises(CompileException):
        offline.compile_module("90")
