"""`gpunet doctor`: the report on this machine (whatever it has), its parts on stand-ins."""

from __future__ import annotations

import json

import numpy as np
import pytest
from host_kernels import simulated_backend

from gpunet.core.backends import NumpyBackend, probe
from gpunet.tools import doctor
from gpunet.tools.cli import main


@pytest.fixture(scope="module")
def report():
    return doctor.doctor()


def test_the_report_says_what_this_machine_has(report):
    why_not = probe.cupy_unavailable()
    assert report["probe"][0]["name"] == "cupy"
    assert all(c["detail"] for c in report["probe"] if not c["ok"])  # each problem named
    if why_not is None:
        assert report["status"] in ("ok", "failed") and "device" in report
        assert {"step_float64", "step_float32", "gemm_float32", "allocations"} <= set(
            report["checks"]
        )
    else:
        assert report["status"] == "no_gpu", report
        assert report["summary"] == f"no usable GPU: {why_not}"
        assert report["backend"] == f"numpy (auto: {why_not})"
        assert not any(name.startswith("step") for name in report["checks"])


def test_the_kernels_compile_cold_then_from_the_cache(report):
    ready = {c["name"]: c["ok"] for c in report["probe"]}
    if not all(ready.get(name) for name in ("cupy", "nvrtc", "headers")):
        assert "kernels" not in report["checks"]
        pytest.skip("no CuPy NVRTC here: the compile is not checked")
    kernels = report["checks"]["kernels"]
    assert kernels["ok"] and kernels["from_cache"], kernels
    assert kernels["cached_seconds"] < kernels["cold_seconds"]
    assert kernels["kernels"] > 0 and ":" in kernels["most_registers"]


def test_run_prints_json_and_exits_by_status(capsys):
    code = main(["doctor", "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert code == doctor.EXIT[printed["status"]]
    assert printed["summary"] and printed["probe"]


def test_run_prints_one_line_per_check(capsys, report, monkeypatch):
    monkeypatch.setattr(doctor, "doctor", lambda progress=None: report)
    code = main(["doctor"])
    out = capsys.readouterr().out
    assert code == doctor.EXIT[report["status"]]
    assert out.splitlines()[-1] == f"{report['status']}: {report['summary']}"
    for check in report["probe"]:
        assert f"{check['name']}: {check['detail']}" in out


def test_verdict():
    assert doctor.verdict({"a": {"ok": True}}, None) == ("ok", "the GPU path works")
    assert doctor.verdict({}, "no driver") == ("no_gpu", "no usable GPU: no driver")
    status, summary = doctor.verdict({"a": {"ok": True}, "kernels": {"ok": False}}, None)
    assert status == "failed" and summary.endswith("kernels")


def test_a_raising_section_is_recorded_not_fatal():
    def broken():
        raise RuntimeError("NVRTC_ERROR_COMPILATION")

    section = doctor._timed(broken)
    assert section["ok"] is False and "NVRTC_ERROR_COMPILATION" in section["error"]
    assert section["seconds"] >= 0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_step_parity_on_the_simulated_kernels(host, dtype):
    result = doctor.step_parity(simulated_backend(host), dtype)
    assert result["ok"] and result["relative_difference"] <= doctor.STEP_TOLERANCE[dtype]


def test_step_parity_sees_a_wrong_step():
    class Off(NumpyBackend):
        def sgd_update(self, params, *args, **kwargs):
            super().sgd_update(params, *args, **kwargs)
            params *= 1.001

    result = doctor.step_parity(Off(), "float64")
    assert not result["ok"] and result["relative_difference"] > 1e-4


def test_gemm_rate_on_numpy():
    result = doctor.gemm_rate(np, lambda: None, "float64", n=64)
    assert result["ok"] and result["gflops"] > 0
