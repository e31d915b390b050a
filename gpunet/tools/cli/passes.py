"""`gpunet passes`: backprop's cost in forward passes, FLOPs counted and time measured."""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys

import numpy as np

from ... import __version__
from ...core.backends import BACKENDS
from ...core.io import write_atomically
from ...core.parameters import DTYPES
from ..passes import run_all, table
from .common import Command, int_list


def passes_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--networks",
        type=int_list,
        nargs="+",
        default=[[64, 64, 64], [784, 30, 10], [784, 256, 256, 10], [1024, 1024, 1024, 1024]],
        help="layer widths of each network, e.g. 784,30,10 1024,1024,1024",
    )
    parser.add_argument("--batch-sizes", type=int_list, default=[10, 1000])
    parser.add_argument("--activations", default="sigmoid", help="one name for every layer")
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    parser.add_argument("--dtype", choices=DTYPES, default="float64")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs: the best is kept")
    parser.add_argument("--min-seconds", type=float, default=0.2, help="length of a timed run")
    parser.add_argument(
        "--numeric-max",
        type=int,
        default=10000,
        metavar="P",
        help="also time the numeric gradient for networks of at most P parameters",
    )
    parser.add_argument("--json", metavar="PATH", help="write the records as JSON")


def passes_command(args: argparse.Namespace) -> int:
    """Print the table (and write --json): every network at every batch size."""
    records = run_all(
        args.networks,
        args.batch_sizes,
        activations=args.activations,
        backend=args.backend,
        dtype=args.dtype,
        repeats=args.repeats,
        min_seconds=args.min_seconds,
        numeric_max=args.numeric_max,
    )
    print(
        f"cost of backprop in forward passes ({args.dtype}, best of {args.repeats} runs of "
        f"≥ {args.min_seconds:g} s): backward/forward, the whole gradient, and the numeric one"
    )
    print(table(records))
    if args.json:
        argv = getattr(args, "argv", sys.argv[1:])
        document = {
            "command": " ".join(["gpunet", *map(shlex.quote, argv)]),
            "gpunet": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "machine": platform.platform(),
            "records": records,
        }
        text = json.dumps(document, indent=1) + "\n"
        write_atomically(args.json, lambda file: file.write(text.encode()))
        print(f"wrote {args.json}")
    return 0


PASSES = Command(
    "passes",
    "backprop's cost in forward passes: FLOPs counted, time measured",
    passes_arguments,
    passes_command,
    outputs={"--json": None},
)
