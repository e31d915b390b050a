"""The `gpunet` command, a thin layer over the library: each command's options sit beside
its handler, one module a group, and COMMANDS lists them in the order --help shows.

main() is where faults meet the user: every output path a command declares is checked
before its handler runs, and an exception of the user's making (FAULTS: a bad argument,
a file that cannot be read or written or is not what it should be, a backend that is not
there, an optional extra not installed, memory, divergence, Ctrl-C) becomes one line on
stderr and an exit code. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from ... import __version__
from ...core.backends import BackendUnavailableError
from ...core.checks import check_distinct, check_output_path
from ...core.extras import require
from ...core.io import FileFormatError
from ...train.history import DivergenceError
from .bench import BENCH
from .check import GRADCHECK
from .common import Command, MissingExtraError
from .doctor import DOCTOR
from .draw import GRAPH, PLOT
from .explain import EXPLAIN
from .info import INFO
from .jacobians import JACOBIANS
from .model import EVALUATE, EXPORT, PREDICT
from .passes import PASSES
from .train import TRAIN

# in the order `gpunet --help` lists them
COMMANDS: tuple[Command, ...] = (
    TRAIN,
    PREDICT,
    EVALUATE,
    EXPORT,
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


@dataclass(frozen=True)
class Fault:
    """A kind of failure the user can act on: its exit code, the exceptions, what it means."""

    code: int
    errors: tuple[type[BaseException], ...]
    meaning: str


# matched in this order, the more specific first (a FileFormatError is a ValueError)
FAULTS = (
    Fault(4, (FileFormatError,), "a file is not what it should be (damaged, truncated, foreign)"),
    Fault(
        3,
        (OSError,),
        "a file cannot be read or written (missing, no permission, a directory, no space)",
    ),
    Fault(5, (BackendUnavailableError,), "the backend asked for cannot run on this machine"),
    Fault(6, (MemoryError,), "out of memory"),
    Fault(7, (MissingExtraError,), "an optional package is not installed (the error names it)"),
    Fault(
        1,
        (DivergenceError,),
        "the run failed: training diverged, or gradcheck is above its tolerance",
    ),
    Fault(2, (ValueError, TypeError), "a bad argument"),
)
FAILED, INTERRUPTED = 1, 130  # 130 = 128 + SIGINT, as shells report a Ctrl-C
INTERRUPTED_MEANING = "interrupted (Ctrl-C); train says where its last checkpoint is"

# what to do about a system error, by its errno
HINTS = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions, or choose another path",
    errno.EPERM: "check its permissions, or choose another path",
    errno.EISDIR: "give the name of a file, not a directory",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.ENOSPC: "free some space, or write elsewhere",
    errno.EDQUOT: "free some space, or write elsewhere",
    errno.EFBIG: "the file is over a size limit: write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
}


def exit_codes() -> str:
    """The exit codes as `gpunet --help` ends with them."""
    lines = [f"  {0:>3}  success"]
    lines += [f"  {f.code:>3}  {f.meaning}" for f in sorted(FAULTS, key=lambda f: f.code)]
    lines.append(f"  {INTERRUPTED:>3}  {INTERRUPTED_MEANING}")
    return "exit codes:\n" + "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    gpunet = argparse.ArgumentParser(
        prog="gpunet",
        description="Fully-connected networks trained by explicit backpropagation.",
        epilog=exit_codes(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gpunet.add_argument("--version", action="version", version=f"gpunet {__version__}")
    subparsers = gpunet.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        subparser = subparsers.add_parser(
            command.name,
            help=command.help,
            epilog=exit_codes(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(subparser)
        subparser.set_defaults(handler=command.handler)
    return gpunet


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    command = next(command for command in COMMANDS if command.name == args.command)
    stdout = sys.stdout
    try:
        if stdout is None:  # started with stdout closed (>&-): nowhere to report
            raise OSError(errno.EBADF, "stdout is closed: redirect it (>/dev/null) instead")
        sys.stdout = Stdout(stdout)
        check_outputs(command, args)
        return args.handler(args)
    except KeyboardInterrupt:
        said = command.interrupted(args) if command.interrupted else ""
        _say(args, "interrupted" + (f"; {said}" if said else ""))
        return INTERRUPTED
    except Exception as error:
        fault = next((f for f in FAULTS if isinstance(error, f.errors)), None)
        if fault is None:
            raise  # a bug: its traceback is what a report needs
        said = describe(error, args) or fault.meaning  # a bare MemoryError says nothing
        _say(args, ("" if fault.code == FAILED else "error: ") + said)
        return fault.code
    finally:
        if isinstance(sys.stdout, Stdout):
            sys.stdout.flush()
        sys.stdout = stdout


class Stdout:
    """sys.stdout while a command runs: when its reader stops early (| head), what follows
    goes nowhere and the command carries on (train still saves its model), no error."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._reader_gone()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        # what is still buffered would fail again on every flush, and as Python exits
        os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def check_outputs(command: Command, args: argparse.Namespace) -> None:
    """Every output path the command was given, checked writable before any work (a typo
    must not cost a training run or a benchmark sweep), no two of them the same file, and
    none a file the command reads; a PNG asked for needs the plot extra, checked then too."""
    paths = [
        (option, getattr(args, option.lstrip("-").replace("-", "_"))) for option in command.outputs
    ]
    for option, path in paths:
        if path is not None:
            if command.outputs[option] == ".png":
                require("matplotlib")
            check_output_path(option, path, suffix=command.outputs[option])
    check_distinct(paths)
    # the files it reads: any other argument naming an existing file (--data, a model)
    read = {
        os.path.realpath(value): key
        for key, value in vars(args).items()
        if isinstance(value, str)
        and f"--{key.replace('_', '-')}" not in command.outputs
        and os.path.isfile(value)
    }
    for option, path in paths:
        if path is not None and os.path.realpath(path) in read:
            raise ValueError(
                f"{option} {path!r} is also the {read[os.path.realpath(path)]} read: writing "
                "it would replace that input; choose another file"
            )


def describe(error: BaseException, args: argparse.Namespace) -> str:
    """The error in one line: a system error as the option and file it concerns, what went
    wrong and what to do; any other as its message."""
    if not (isinstance(error, OSError) and error.errno is not None and error.strerror):
        return " ".join(str(error).split())
    where = ""
    if error.filename is not None:
        filename = os.fspath(error.filename)
        # the option that named the file, as the user wrote it (a positional has none)
        given = set(getattr(args, "argv", ()))
        options = [
            f"{option} "
            for key, value in vars(args).items()
            if isinstance(value, (str, os.PathLike)) and os.fspath(value) == filename
            for option in (f"--{key.replace('_', '-')}",)
            if option in given
        ]
        where = f"{options[0] if options else ''}{filename!r}"
    hint = HINTS.get(error.errno)
    return ": ".join(part for part in (where, error.strerror, hint) if part)


def _say(args: argparse.Namespace, message: str) -> None:
    if sys.stderr is not None:  # closed (2>&-): print would write it into stdout's data
        print(f"gpunet {args.command}: {message}", file=sys.stderr)
