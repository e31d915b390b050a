"""Model files as .npz: architecture as JSON, parameters as named arrays.

Layout (format version 1):
    architecture   uint8 array holding UTF-8 JSON: {"format": "gpunet", "version": 1,
                   "sizes": [...], "activations": [...], "dtype": "float32"}
    W1 ... WL      weights, W^l of shape (n_l, n_{l-1})
    b1 ... bL      biases, b^l of shape (n_l,)
Read with allow_pickle=False: loading a file never runs code.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

FORMAT, VERSION = "gpunet", 1
# an architecture record is a few hundred bytes: anything far larger is not one
MAX_RECORD_BYTES = 1 << 20
HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


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

    No reader sees half a file, and a failed write leaves what was at path.
    """
    path = Path(path)
    # a fresh name beside the target, opened exclusively: the rename is then atomic, and
    # the file gets the umask's permissions (mkstemp would make it private)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as file:
            write(file)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_model(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list, list]:
    """(architecture, weights, biases) of a file written by `Network.save`; ValueError else.

    The architecture is checked against the stored arrays' headers before any array is
    read, so a small hostile file cannot make the reader allocate what it declares.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            architecture = _read_architecture(archive)
            layers = range(1, len(architecture["sizes"]))
            for l in layers:
                n, k = architecture["sizes"][l], architecture["sizes"][l - 1]
                _check_member(archive, f"W{l}", (n, k))
                _check_member(archive, f"b{l}", (n,))
        with np.load(path, allow_pickle=False) as data:
            weights = [data[f"W{l}"] for l in layers]
            biases = [data[f"b{l}"] for l in layers]
    except FileNotFoundError:
        raise
    except READ_ERRORS as error:
        raise ValueError(f"{os.fspath(path)} is not a gpunet model file ({error})") from None
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


def _check_member(archive: zipfile.ZipFile, name: str, shape: tuple[int, ...]) -> None:
    """The stored array `name` is a float array of `shape`, and holds that much data."""
    info = archive.getinfo(f"{name}.npy")
    with archive.open(info) as file:
        version = np.lib.format.read_magic(file)
        read_header = HEADER_READERS.get(version)
        if read_header is None:
            raise ValueError(f"{name} is stored in .npy format {version}, not 1.0 or 2.0")
        stored, _, dtype = read_header(file)
        offset = file.tell()
    if tuple(stored) != shape:
        raise ValueError(f"{name} has shape {tuple(stored)}, the architecture says {shape}")
    if dtype.kind != "f":
        raise ValueError(f"{name} has dtype {dtype}, not a float dtype")
    if info.file_size != offset + int(np.prod(shape)) * dtype.itemsize:
        raise ValueError(f"{name} holds {info.file_size - offset} bytes of data, not {shape}")


# what a damaged or foreign file raises on its way through np.load and json
READ_ERRORS = (
    OSError,
    EOFError,
    KeyError,
    ValueError,
    TypeError,
    AttributeError,
    zipfile.BadZipFile,
    json.JSONDecodeError,
    UnicodeDecodeError,
)
