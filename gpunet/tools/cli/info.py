"""`gpunet info`: the backend chosen and why, versions, the device."""

from __future__ import annotations

import argparse
import platform

from ... import __version__
from ...core.backends import select_backend
from .common import Command, add_backend


def info_command(args: argparse.Namespace) -> int:
    print(f"gpunet {__version__} on Python {platform.python_version()} ({platform.platform()})")
    backend, reason = select_backend(args.backend)
    print(f"backend: {reason}")
    for key, value in backend.describe().items():
        print(f"  {key}: {value}")
    return 0


INFO = Command("info", "backend chosen and why, versions, device", add_backend, info_command)
