"""The profiling scripts of bench/profile still run: each on a tiny epoch, as their README
says to run them (from the checkout, PYTHONPATH=.), each in a process of its own as there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.stem for p in (ROOT / "bench/profile").glob("*.py") if p.stem != "common")
EXTRA = {"whatif": ["--rounds", "1"]}


@pytest.mark.parametrize("script", SCRIPTS)
def test_profile_script_runs(script):
    pytest.importorskip("torch", reason="PyTorch is not installed: the scripts compare with it")
    command = [sys.executable, f"bench/profile/{script}.py", "--batch-sizes", "2"]
    command += ["--examples", "128", *EXTRA.get(script, [])]
    done = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": "."},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "B=2" in done.stdout
