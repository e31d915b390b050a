"""The `gpunet` command, a thin layer over the library: each command's options sit beside
its handler, one module a group, and COMMANDS lists them in the order --help shows."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ... import __version__
from ...core.backends import BackendUnavailableError
from ...train.history import DivergenceError
from .bench import BENCH
from .check import GRADCHECK
from .common import Command
from .doctor import DOCTOR
from .draw import GRAPH, PLOT
from .explain import EXPLAIN
from .info import INFO
from .jacobians import JACOBIANS
from .passes import PASSES
from .train import TRAIN

# in the order `gpunet --help` lists them
COMMANDS: tuple[Command, ...] = (
    TRAIN,
    GRADCHECK,
    BENCH,
    PLOT,
    GRAPH,
    EXPLAIN,
    JACOBIANS,
    PASSES,
    INFO,
    DOCTOR,
)


def parser() -> argparse.ArgumentParser:
    gpunet = argparse.ArgumentParser(
        prog="gpunet", description="Fully-connected networks trained by explicit backpropagation."
    )
    gpunet.add_argument("--version", action="version", version=f"gpunet {__version__}")
    subparsers = gpunet.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        subparser = subparsers.add_parser(command.name, help=command.help)
        command.add_arguments(subparser)
        subparser.set_defaults(handler=command.handler)
    return gpunet


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.handler(args)
    except (ValueError, TypeError, FileNotFoundError, BackendUnavailableError) as error:
        print(f"gpunet {args.command}: error: {error}", file=sys.stderr)
        return 2
    except DivergenceError as error:
        print(f"gpunet {args.command}: {error}", file=sys.stderr)
        return 1
