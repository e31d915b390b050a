"""The GPU probe: `auto` falls back to NumPy with one line naming what is missing and the
command that installs it; each piece CuPy needs is checked on its own."""

from __future__ import annotations

import sys
import types

import pytest

from gpunet.core.backends import BackendUnavailableError, probe, select_backend


@pytest.fixture(autouse=True)
def fresh_probe():
    probe.cupy_unavailable.cache_clear()
    yield
    probe.cupy_unavailable.cache_clear()


def fake_cupy(version="14.2.0", count=1, driver=13000, nvrtc=(13, 0), build=13000):
    """A stand-in for the cupy module, with the runtime answers the probe asks for."""

    def device_count():
        if isinstance(count, Exception):
            raise count
        return count

    def nvrtc_version():
        if isinstance(nvrtc, Exception):
            raise nvrtc
        return nvrtc

    runtime = types.SimpleNamespace(
        getDeviceCount=device_count,
        driverGetVersion=lambda: driver,
        getDeviceProperties=lambda i: {"name": b"Fake GPU"},
    )
    cuda = types.SimpleNamespace(
        runtime=runtime, nvrtc=types.SimpleNamespace(getVersion=nvrtc_version)
    )
    return types.SimpleNamespace(__version__=version, cuda=cuda, build=build)


@pytest.fixture
def built_for(monkeypatch):
    monkeypatch.setattr(probe, "built_for", lambda cupy: cupy.build // 1000)


def test_the_probe_on_this_machine_is_one_line():
    why = probe.cupy_unavailable()
    backend, reason = select_backend("auto")
    if why is None:
        assert backend.name == "cupy" and reason.startswith("cupy (auto: found ")
    else:
        assert "\n" not in why
        assert "pip install" in why or "device" in why
        assert backend.name == "numpy" and reason == f"numpy (auto: {why})"
        with pytest.raises(BackendUnavailableError, match="asked for, but"):
            select_backend("cupy")


def test_install_hint_names_commands_that_work_here():
    for hint in (probe.install_hint(), probe.install_hint(12), probe.install_hint(13)):
        assert "[ctk]>=14.2'" in hint and "pip install '." in hint
        assert "gpunet[" not in hint  # no release on an index to install from
    assert "cupy-cuda12x[ctk]" in probe.install_hint(12)
    assert "cupy-cuda12x" not in probe.install_hint(13)


def test_cupy_missing_and_too_old(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    found, module = probe.check_cupy()
    assert module is None and found.problem.startswith("CuPy is not installed: pip install")
    assert probe.cupy_unavailable() == found.problem
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(version="13.6.0"))
    found, module = probe.check_cupy()
    assert module is not None and "13.6.0 is older than 14.2" in found.problem
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(version="14.2.0rc1"))
    assert probe.check_cupy()[0].problem is None


def test_device_problems_name_the_cause(built_for):
    error = RuntimeError("cudaErrorInsufficientDriver")
    no_driver = probe.check_device(fake_cupy(count=error, driver=0))
    assert "no NVIDIA driver is loaded" in no_driver.problem
    old_driver = probe.check_device(fake_cupy(count=error, driver=12040, build=13000))
    assert "supports CUDA 12, this CuPy needs CUDA 13" in old_driver.problem
    assert "cupy-cuda12x[ctk]" in old_driver.problem
    assert probe.check_device(fake_cupy(count=0)).problem == "CuPy finds no CUDA device"
    found = probe.check_device(fake_cupy(count=2))
    assert found.problem is None and "Fake GPU" in found.detail


def test_missing_libraries_are_named_with_their_fix(monkeypatch, built_for):
    cupy = fake_cupy(nvrtc=OSError("libnvrtc.so.12: cannot open shared object file"), build=12080)
    nvrtc = probe.check_nvrtc(cupy)
    assert nvrtc.problem.startswith("NVRTC (libnvrtc) is missing")
    assert "cupy-cuda12x[ctk]>=14.2" in nvrtc.problem

    def no_cublas():
        raise ImportError('Failure finding "libcublasLt.so.12"\n  listdir(...)')

    monkeypatch.setattr(probe, "_load_cublas", no_cublas)
    cublas = probe.check_cublas(cupy)
    assert "cuBLAS (libcublasLt) is missing" in cublas.problem and "\n" not in cublas.problem
    monkeypatch.setattr(probe, "_load_cublas", lambda: None)
    assert probe.check_cublas(cupy).problem is None


def test_headers_are_sought_where_cupy_looks(monkeypatch, tmp_path, built_for):
    cupy = fake_cupy()
    monkeypatch.setattr(probe, "_include_dirs", lambda: [str(tmp_path)])
    assert "cuda_fp16.h" in probe.check_headers(cupy).problem
    (tmp_path / "cuda_fp16.h").write_text("// the header\n")
    found = probe.check_headers(cupy)
    assert found.problem is None and found.detail == str(tmp_path)

    def no_root():
        raise RuntimeError("Failed to auto-detect CUDA root directory")

    monkeypatch.setattr(probe, "_include_dirs", no_root)
    assert "auto-detect" in probe.check_headers(cupy).problem


def test_the_first_problem_decides_auto(monkeypatch, built_for):
    cupy = fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setattr(probe, "_load_cublas", lambda: None)
    monkeypatch.setattr(probe, "_include_dirs", lambda: [])
    assert [c.name for c in probe.checks()] == ["cupy", "device", "nvrtc", "cublas", "headers"]
    assert "cuda_fp16.h" in probe.cupy_unavailable()
    backend, reason = select_backend("auto")
    assert backend.name == "numpy" and "cuda_fp16.h" in reason
