"""`gpunet doctor`: does the GPU path work here? (exit 0: it works, 1: a check failed, 5: no GPU)"""

from __future__ import annotations

import argparse
import json

from ..doctor import EXIT, doctor, text
from .common import Command


def doctor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def doctor_command(args: argparse.Namespace) -> int:
    """The report on stdout, the exit status from its status."""
    progress = None if args.json else (lambda line: print(f"... {line}", flush=True))
    report = doctor(progress)
    print(json.dumps(report, indent=1) if args.json else text(report))
    return EXIT[report["status"]]


DOCTOR = Command(
    "doctor",
    "check that the GPU path works here (exit 0: it works, 1: a check failed, 5: no usable GPU)",
    doctor_arguments,
    doctor_command,
)
