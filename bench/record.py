"""What every bench script's JSON record holds beside its results: the command that remakes
it (run from the checkout), the date, and the machine: the CPU, its load, every thread pool
with its BLAS kernel, the library versions. Written as `gpunet bench` writes its records:
no machine's absolute path (`portable`)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info

import gpunet
from gpunet.core.backends.numpy_backend import cpu_model
from gpunet.tools.bench.machine import portable


def header(script: str, argv: Sequence[str]) -> dict:
    """The record's first fields: the benchmark, its command line and the date."""
    return {
        "benchmark": script,
        "command": "PYTHONPATH=. " + shlex.join(["python", f"bench/{script}.py", *argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def machine() -> dict:
    """The CPU, its load, the thread pools (BLAS kernels included) and the libraries."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    flags = next((line for line in lines if line.startswith("flags")), "")
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "simd": [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags],
        "load_average": list(os.getloadavg()),
        "threadpools": [
            {k: v for k, v in pool.items() if k != "filepath"} for pool in threadpool_info()
        ],
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "gpunet": gpunet.__version__,
        },
    }


def write(path: Path | None, record: dict) -> None:
    """The record as JSON at path (nothing without one), paths relative to the checkout."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(portable(record), indent=1) + "\n")
    print(f"wrote {path}")
