"""The `gpunet` command, a thin layer over the library: each command's options sit beside
its handler, one module a group, and COMMANDS lists them in the order --help shows."""

from __future__ import annotations

import argparse
import gzip
import os
import pickle
import sys
from collections.abc import Sequence

from ... import __version__
from ...core.backends import BackendUnavailableError
from ...core.checks import check_output_path
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


EXIT_CODES = """exit status:
  0    success
  1    training diverged (a non-finite cost)
  2    a usage error: a bad argument, or a file that cannot be read or written
  130  interrupted (Ctrl-C); train says where its last checkpoint is"""

# a user's fault, not gpunet's: one line on stderr and exit 2, no traceback
USER_ERRORS = (
    OSError,
    ValueError,
    TypeError,
    EOFError,
    pickle.UnpicklingError,
    gzip.BadGzipFile,
    BackendUnavailableError,
)


def parser() -> argparse.ArgumentParser:
    gpunet = argparse.ArgumentParser(
        prog="gpunet",
        description="Fully-connected networks trained by explicit backpropagation.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gpunet.add_argument("--version", action="version", version=f"gpunet {__version__}")
    subparsers = gpunet.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        subparser = subparsers.add_parser(
            command.name,
            help=command.help,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(subparser)
        subparser.set_defaults(handler=command.handler, outputs=command.outputs)
    return gpunet


def _message(error: BaseException) -> str:
    """The error in one line, naming the file when the OS error carries one."""
    filename = getattr(error, "filename", None)
    if isinstance(error, OSError) and error.strerror and filename is not None:
        return f"{os.fspath(filename)!r}: {error.strerror}"
    return " ".join(str(error).split()) or type(error).__name__


def _interrupted(args: argparse.Namespace) -> str:
    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint and os.path.exists(checkpoint):
        return f"interrupted; the last checkpoint is {checkpoint} (continue with --resume)"
    return "interrupted"


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        # where the results go is checked first: a typo must not cost a training run
        for dest in args.outputs:
            path = getattr(args, dest)
            if path is not None:
                check_output_path(f"--{dest}", path)
        return args.handler(args)
    except DivergenceError as error:
        print(f"gpunet {args.command}: {_message(error)}", file=sys.stderr)
        return 1
    except USER_ERRORS as error:
        print(f"gpunet {args.command}: error: {_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gpunet {args.command}: {_interrupted(args)}", file=sys.stderr)
        return 130
