"""Checkpoints: all that `fit` needs to go on as if it had never stopped.

A checkpoint is a model file (`gpunet.load` reads it) with more entries:
    checkpoint     uint8 array holding UTF-8 JSON: {"epoch": e, "rng": the shuffling
                   generator's state after epoch e, "history": the History's lists so far,
                   "settings": what a resumed run must share (cost, optimizer, batch size,
                   examples, dtype, diagnostics)}
    optimizer.K    the optimizer's per-parameter state K (Optimizer.state)
Written atomically (io.write_arrays); read with allow_pickle=False.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import numpy as np

from ..core.io import READ_ERRORS, check_stored_array, model_arrays, reading, write_arrays

# the History.meta entries a resumed run must match for its results to equal an
# uninterrupted run's (the backend and the number of ranks may change); with diagnostics
# toggled, the History's statistics would cover some epochs only
SETTINGS = ("dtype", "cost", "optimizer", "batch_size", "examples", "diagnostics")
RECORD = ("epoch", "rng", "history", "settings")
PREFIX = "optimizer."


def write_checkpoint(
    path: str | os.PathLike[str],
    net: Any,
    optimizer: Any,
    epoch: int,
    rng: np.random.Generator,
    history: Any,
) -> None:
    """Save net, optimizer state, epoch, generator state and History to path, atomically."""
    record = {
        "epoch": epoch,
        "rng": rng.bit_generator.state,
        "history": dict(history),
        "settings": {key: history.meta[key] for key in SETTINGS},
    }
    arrays = model_arrays(net)
    arrays["checkpoint"] = np.frombuffer(json.dumps(record).encode(), dtype=np.uint8)
    arrays.update({PREFIX + key: value for key, value in optimizer.state(net.backend).items()})
    write_arrays(path, arrays)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint's contents as host data: {'record': ..., 'arrays': {...}}; FileNotFoundError
    naming it when there is none, FileFormatError (a ValueError) for another kind of file."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"checkpoint {os.fspath(path)!r} does not exist: there is nothing to resume "
            "(without resume the run starts afresh and writes it)"
        )
    with reading(path, "a gpunet checkpoint"):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                check_stored_array(archive, member.removesuffix(".npy"), kinds="biuf")
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        if "checkpoint" not in arrays:
            raise ValueError(
                "it holds no training state (a model saved by save?): resume needs a file "
                "that checkpoint= wrote"
            )
        record = json.loads(bytes(arrays.pop("checkpoint")).decode())
        architecture = json.loads(bytes(arrays.pop("architecture")).decode())
    return {"record": record, "architecture": architecture, "arrays": arrays}


def checkpoint_epoch(path: str | os.PathLike[str]) -> int | None:
    """The epoch of the checkpoint at path, read from its record alone; None when there is no
    readable checkpoint there."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open("checkpoint.npy") as file:
            record = json.loads(bytes(np.lib.format.read_array(file, allow_pickle=False)))
        return int(record["epoch"])
    except (*READ_ERRORS, OverflowError):
        return None


def restore(
    contents: dict[str, Any],
    net: Any,
    optimizer: Any,
    rng: np.random.Generator,
    history: Any,
    epochs: int,
) -> int:
    """Load read_checkpoint's contents into net, optimizer, rng and history; return its epoch.

    Everything is checked against this run first (architecture, settings, epoch, arrays,
    optimizer state, generator state, History): a mismatch is a ValueError (a TypeError
    for arrays of the wrong kind) before any change.
    """
    record, architecture, arrays = contents["record"], contents["architecture"], contents["arrays"]
    if not (isinstance(record, dict) and isinstance(architecture, dict)):
        raise ValueError("checkpoint record and architecture must be JSON objects")
    ours = {"sizes": net.sizes, "activations": net.activation_names, "dtype": net.dtype.name}
    theirs = {key: architecture.get(key) for key in ours}
    if theirs != ours:
        raise ValueError(f"checkpoint is of a network {theirs}, this one is {ours}")
    missing = [key for key in RECORD if key not in record]
    if missing or not isinstance(record["settings"], dict):
        raise ValueError(f"checkpoint record lacks {', '.join(missing) or 'settings'}")
    for key in SETTINGS:
        if key not in record["settings"]:
            raise ValueError(f"checkpoint lacks the setting {key!r}: it cannot be resumed")
        if record["settings"][key] != history.meta[key]:
            raise ValueError(
                f"checkpoint was written with {key} {record['settings'][key]!r}, "
                f"this run has {history.meta[key]!r}: resuming would not continue that run"
            )
    epoch = record["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        raise ValueError(f"checkpoint epoch must be a positive integer, got {epoch!r}")
    if epoch > epochs:
        raise ValueError(f"checkpoint is at epoch {epoch}, beyond epochs={epochs}")
    layers = range(1, len(net.sizes))
    names = [f"W{l}" for l in layers] + [f"b{l}" for l in layers]
    absent = [name for name in names if name not in arrays]
    if absent:
        raise ValueError(f"checkpoint lacks the arrays {', '.join(absent)}")
    params = net.checked_params(
        [arrays[f"W{l}"] for l in layers], [arrays[f"b{l}"] for l in layers]
    )
    state = {key[len(PREFIX) :]: value for key, value in arrays.items() if key.startswith(PREFIX)}
    optimizer.check_state(net.params, state)
    try:  # the generator's own checks, on a generator of the same kind that nothing uses
        type(rng.bit_generator)().state = record["rng"]
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"checkpoint holds no valid generator state ({error})") from None
    saved = type(history)()
    if not (
        isinstance(record["history"], dict)
        and all(isinstance(values, list) for values in record["history"].values())
    ):
        raise ValueError("checkpoint history must map each metric to a list")
    saved.update(record["history"])
    saved.check()
    if saved.epochs != epoch:
        raise ValueError(f"checkpoint history has {saved.epochs} epochs, its epoch is {epoch}")

    optimizer.load_state(net.backend, net.params, state)
    net.params[...] = params
    rng.bit_generator.state = record["rng"]
    history.update(saved)
    return epoch
