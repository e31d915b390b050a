"""Model files as .npz: architecture as JSON, parameters as named arrays.

Layout (format version 1):
    architecture   uint8 array holding UTF-8 JSON: {"format": "gpunet", "version": 1,
                   "sizes": [...], "activations": [...], "dtype": "float32"}
    W1 ... WL      weights, W^l of shape (n_l, n_{l-1})
    b1 ... bL      biases, b^l of shape (n_l,)
Read with allow_pickle=False: loading a file never runs code.
"""

from __future__ import annotations

import glob
import json
import math
import os
import pickle
import platform
import signal
import threading
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

FORMAT, VERSION = "gpunet", 1
# an architecture record is a few hundred bytes: anything far larger is not one
MAX_RECORD_BYTES = 1 << 20
# gpunet stores arrays uncompressed, and float data deflates little: a member that inflates
# more than this (and past 16 MiB) is built to exhaust memory
MAX_INFLATION = 100
HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


class FileFormatError(ValueError):
    """A file that is not what it was given as: a model, checkpoint, history or data set that
    is damaged, truncated or of another kind. A ValueError; `path` names the file."""

    def __init__(self, path: str | os.PathLike[str], expected: str, reason: Any) -> None:
        # the arguments as args, so that a copy (pickled, as MPI sends it) is made alike
        super().__init__(os.fspath(path), expected, str(reason))
        self.path = os.fspath(path)

    def __str__(self) -> str:
        path, expected, reason = self.args
        return f"{path} is not {expected} ({reason})"


def model_arrays(net: Any) -> dict[str, np.ndarray]:
    """The file's arrays for `net`: its architecture as JSON, W1..WL and b1..bL."""
    architecture = {
        "format": FORMAT,
        "version": VERSION,
        "sizes": net.sizes,
        "activations": net.activation_names,
        "dtype": net.dtype.name,
    }
    weights, biases = net.get_params()
    arrays = {"architecture": np.frombuffer(json.dumps(architecture).encode(), dtype=np.uint8)}
    arrays.update({f"W{l}": w for l, w in enumerate(weights, 1)})
    arrays.update({f"b{l}": b for l, b in enumerate(biases, 1)})
    return arrays


def write_arrays(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> None:
    """np.savez to path atomically: a temporary file beside it, then a rename."""
    write_atomically(path, lambda file: np.savez(file, **arrays))


def write_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> None:
    """write(file) into a temporary file beside path, then rename it to path.

    No reader sees half a file, and a failed or interrupted write leaves what was at path:
    the temporary is removed on any exception and on SIGTERM or SIGHUP (after which the
    signal is delivered again to the handler that was there before); the temporaries of
    path that writers on this host left when they were killed outright (SIGKILL, a power
    cut) are removed first. A symbolic link is written through; a directory, a device or
    anything else that is not a regular file is refused (check_target).
    """
    given, path = os.fspath(path), check_target("path", path)
    remove_stale_temporaries(path)
    # opened exclusively under a fresh name beside the target: the rename is then atomic,
    # and the file gets the umask's permissions (mkstemp would make it private)
    temporary = temporary_path(path)
    try:
        with terminations_raise():
            with open(temporary, "xb") as file:
                write(file)
            os.replace(temporary, path)
    except Terminated as terminated:
        temporary.unlink(missing_ok=True)
        signal.raise_signal(terminated.signum)  # the previous handler's turn: by default, exit
        raise
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.errno is not None and error.filename in (None, os.fspath(temporary)):
            # the system's error (no permission, no space) named for the file asked for
            raise type(error)(error.errno, error.strerror, given) from None
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def check_target(name: str, path: str | os.PathLike[str]) -> Path:
    """path as a Path to write a file at, symbolic links followed: IsADirectoryError for a
    directory, FileNotFoundError or NotADirectoryError when its directory is missing or is a
    file, ValueError for a device, pipe or socket (a rename would replace it: /dev/null)."""
    given, path = os.fspath(path), Path(os.path.realpath(path))
    if path.is_dir():
        raise IsADirectoryError(
            f"{name} {given!r} is a directory: give the name of a file to write in it"
        )
    if path.exists() and not path.is_file():
        raise ValueError(
            f"{name} {given!r} is not a regular file (a device, pipe or socket): "
            "writing would replace it; give the name of a file"
        )
    directory = path.parent
    if not directory.is_dir():
        blocking = next((p for p in (directory, *directory.parents) if p.exists()), None)
        if blocking is not None and not blocking.is_dir():
            raise NotADirectoryError(
                f"{name} {given!r} cannot be written: {os.fspath(blocking)!r} is a file, "
                "not a directory"
            )
        raise FileNotFoundError(
            f"no directory {os.fspath(Path(given).parent)!r} to write {name} "
            f"{path.name!r} in: create it first, or give another path"
        )
    return path


class Terminated(BaseException):
    """A termination signal arrived inside `terminations_raise` (not an Exception, like
    KeyboardInterrupt: only cleanup code should catch it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"terminated by {signal.Signals(self.signum).name}"


# the signals that end a process politely: `kill`, a closed terminal
TERMINATIONS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextmanager
def terminations_raise() -> Iterator[None]:
    """Within this scope SIGTERM and SIGHUP raise Terminated, so that cleanup runs; the
    previous handlers are back when it ends. Ignored signals stay ignored; outside the
    main thread (where Python cannot set handlers) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated(signum)

    previous = {signum: signal.getsignal(signum) for signum in TERMINATIONS}
    try:
        for signum, before in previous.items():
            if before is not signal.SIG_IGN:
                signal.signal(signum, handler)
        yield
    finally:
        for signum, before in previous.items():
            # None: a handler not set from Python, which cannot be put back; the default
            if before is not signal.SIG_IGN:
                signal.signal(signum, signal.SIG_DFL if before is None else before)


# this host, in temporaries' names: a writer's process id means something only here
HOST = f"{zlib.crc32(platform.node().encode()):08x}"


def temporary_path(path: Path) -> Path:
    """A fresh hidden name beside path for a temporary of this process: .NAME.HOST-PID.UUID.tmp"""
    return path.with_name(f"{_temporary_prefix(path)}{os.getpid()}.{uuid.uuid4().hex}.tmp")


def _temporary_prefix(path: Path) -> str:
    # NAME cut short, so that the temporary of a name near the 255-byte limit fits too
    return f".{path.name[:160]}.{HOST}-"


def remove_stale_temporaries(path: Path) -> None:
    """Remove the temporaries of path whose writer, a process on this host, is gone."""
    prefix = _temporary_prefix(path)
    for candidate in path.parent.glob(glob.escape(prefix) + "*.tmp"):
        pid, _, tag = candidate.name[len(prefix) : -len(".tmp")].partition(".")
        if pid.isdigit() and len(tag) == 32 and not _running(int(pid)):
            candidate.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    """Whether process pid exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def read_model(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list, list]:
    """(architecture, weights, biases) of a file written by `Network.save`; FileFormatError
    (a ValueError) for anything else.

    The architecture is checked against the stored arrays' headers before any array is
    read, so a small hostile file cannot make the reader allocate what it declares.
    """
    with reading(path, "a gpunet model file"):
        with zipfile.ZipFile(path) as archive:
            architecture = _read_architecture(archive)
            layers = range(1, len(architecture["sizes"]))
            for l in layers:
                n, k = architecture["sizes"][l], architecture["sizes"][l - 1]
                check_stored_array(archive, f"W{l}", (n, k))
                check_stored_array(archive, f"b{l}", (n,))
        with np.load(path, allow_pickle=False) as data:
            weights = [data[f"W{l}"] for l in layers]
            biases = [data[f"b{l}"] for l in layers]
    return architecture, weights, biases


def _read_architecture(archive: zipfile.ZipFile) -> dict[str, Any]:
    """The architecture record, its format and its layer widths checked."""
    info = archive.getinfo("architecture.npy")
    if info.file_size > MAX_RECORD_BYTES:
        raise ValueError(f"an architecture record of {info.file_size} bytes")
    with archive.open(info) as file:
        record = np.lib.format.read_array(file, allow_pickle=False)
    architecture = json.loads(bytes(record).decode())
    if not isinstance(architecture, dict):
        raise ValueError("the architecture is not a JSON object")
    if architecture.get("format") != FORMAT or architecture.get("version") != VERSION:
        raise ValueError(
            f"format {architecture.get('format')!r} version {architecture.get('version')!r}"
        )
    sizes = architecture.get("sizes")
    if not (
        isinstance(sizes, list)
        and len(sizes) >= 2
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes)
    ):
        raise ValueError(f"sizes {sizes!r} are not a list of positive layer widths")
    return architecture


def check_stored_array(
    archive: zipfile.ZipFile, name: str, shape: tuple[int, ...] | None = None, kinds: str = "f"
) -> None:
    """The stored array `name` has a dtype of `kinds` ("f": float) and `shape` (any, when
    None), and its member holds exactly the data its header declares: what np.load will
    allocate is then what the file holds, not what a hostile header claims."""
    info = archive.getinfo(f"{name}.npy")
    with archive.open(info) as file:
        version = np.lib.format.read_magic(file)
        read_header = HEADER_READERS.get(version)
        if read_header is None:
            raise ValueError(f"{name} is stored in .npy format {version}, not 1.0 or 2.0")
        stored, _, dtype = read_header(file)
        offset = file.tell()
    if shape is not None and tuple(stored) != shape:
        raise ValueError(f"{name} has shape {tuple(stored)}, the architecture says {shape}")
    if dtype.kind not in kinds:
        raise ValueError(f"{name} has dtype {dtype}, not of the kinds {kinds!r}")
    if info.file_size > max(MAX_INFLATION * info.compress_size, 1 << 24):
        raise ValueError(
            f"{name} inflates {info.compress_size} bytes to {info.file_size}: a zip bomb"
        )
    if info.file_size != offset + math.prod(stored) * dtype.itemsize:
        raise ValueError(
            f"{name} holds {info.file_size - offset} bytes of data, not {tuple(stored)}"
        )


# what a damaged or foreign file raises on its way through zipfile, np.load, json, pickle
READ_ERRORS = (
    OSError,
    EOFError,
    KeyError,
    IndexError,
    RecursionError,
    ValueError,
    TypeError,
    AttributeError,
    zipfile.BadZipFile,
    json.JSONDecodeError,
    UnicodeDecodeError,
    pickle.UnpicklingError,
)


@contextmanager
def reading(path: str | os.PathLike[str], expected: str) -> Iterator[None]:
    """Read path as `expected` ("a gpunet model file") within: what READ_ERRORS a damaged or
    foreign file raises becomes a FileFormatError naming it; an OSError of the system (no
    such file, no permission, a directory) passes as it is, since it says nothing of what
    the file holds. A device, pipe or socket is refused unread: it would block the reader,
    or feed it without end (/dev/zero)."""
    if os.path.exists(path) and not (os.path.isfile(path) or os.path.isdir(path)):
        raise FileFormatError(path, expected, "a device, pipe or socket")
    try:
        yield
    except READ_ERRORS as error:
        if isinstance(error, OSError) and error.errno is not None:
            raise
        raise FileFormatError(path, expected, error) from None
