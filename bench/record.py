"""What every bench script's JSON record holds beside its results: the command that remakes
it (run from the checkout, no machine's absolute path), the date, and the machine: the CPU,
its load, every thread pool with its BLAS kernel, the library versions."""

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


def local(argv: Sequence[str]) -> list[str]:
    """The arguments as given, an absolute path by its last part."""
    return [Path(a).name if os.path.isabs(a) else a for a in argv]


def header(script: str, argv: Sequence[str]) -> dict:
    """The record's first fields: the benchmark, its command line and the date."""
    return {
        "benchmark": script,
        "command": "PYTHONPATH=. " + shlex.join(["python", f"bench/{script}.py", *local(argv)]),
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
    """The record as JSON at path (nothing without one)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")
