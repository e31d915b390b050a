"""Hostile and odd files and names: nothing in a file runs code, no size a file declares is
allocated beyond what it holds, and every odd input is a named error, not a traceback from
deep inside NumPy, pickle or matplotlib."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import signal
import struct
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import gpunet
from gpunet import FileFormatError, datasets
from gpunet.core.io import model_arrays, write_atomically

X, Y = gpunet.datasets.digits()
X, Y = X[:200], Y[:200]
OPTIONS = {"epochs": 4, "batch_size": 10, "lr": 0.5, "seed": 0, "progress": False}


def network() -> gpunet.Network:
    return gpunet.Network([64, 16, 10], backend="numpy", seed=0)


# --- data sets: pickles and bombs -----------------------------------------------------------


class Call:
    """A pickle of function(argument): what a hostile file would have the reader run."""

    def __init__(self, function, argument) -> None:
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


def _global_call(module: str, name: str, argument: str) -> bytes:
    """Protocol-2 opcodes calling module.name(argument), as a hand-made file would."""
    text = argument.encode()
    return (
        f"\x80\x02c{module}\n{name}\n".encode("latin1")
        + b"X"
        + struct.pack("<I", len(text))
        + text
        + b"\x85R."
    )


def _hostile_pickles(marker: Path) -> dict[str, bytes]:
    touch = f"touch {marker}"
    python = f"open({str(marker)!r}, 'w')"
    payloads = {
        "os.system": _global_call("os", "system", touch),
        "posix.system": _global_call("posix", "system", touch),
        "builtins.eval": _global_call("builtins", "eval", python),
        "builtins.exec": _global_call("builtins", "exec", python),
        "subprocess.getoutput": _global_call("subprocess", "getoutput", touch),
        "numpy.load": _global_call("numpy", "load", str(marker)),
        "codec": _global_call("_codecs", "encode", "x")[:-3] + b"X\x05\x00\x00\x00rot13\x86R.",
        "huge bytes": b"\x80\x04\x8e" + struct.pack("<Q", 1 << 50) + b"tiny",
        "huge text": b"\x80\x04\x8d" + struct.pack("<Q", 1 << 50) + b"tiny",
        "truncated": pickle.dumps((1, 2, 3))[:-3],
    }
    images = np.zeros((2, 784), np.float32)
    nested = ((images, Call(os.system, touch)), None, None)  # deep in a well-formed tuple
    payloads["nested"] = pickle.dumps(nested, protocol=2)
    nan = ((np.full((2, 784), np.nan, np.float32), np.zeros(2, np.int64)),) * 3
    payloads["nan images"] = pickle.dumps(nan, protocol=2)
    return payloads


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_hostile_pickles_never_run_and_never_exhaust_memory(tmp_path, compress):
    marker = tmp_path / "pwned"
    for name, payload in _hostile_pickles(marker).items():
        path = tmp_path / ("mnist.pkl.gz" if compress else "mnist.pkl")
        path.write_bytes(gzip.compress(payload) if compress else payload)
        with pytest.raises(FileFormatError, match=r"mnist\.pkl"):
            datasets.mnist(path)
        assert not marker.exists(), name


def test_a_gzip_bomb_stops_at_the_size_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_DATA_BYTES", 1 << 20)
    bomb = b"\x80\x04\x8e" + struct.pack("<Q", 4 << 20) + bytes(4 << 20)  # 4 MB of zeros
    (tmp_path / "mnist.pkl.gz").write_bytes(gzip.compress(bomb))
    with pytest.raises(FileFormatError, match="more than 1048576 bytes"):
        datasets.mnist(tmp_path / "mnist.pkl.gz")


def test_a_checkpoint_declaring_huge_arrays_is_refused_before_allocating(tmp_path):
    path = tmp_path / "c.npz"
    network().fit(X, Y, **{**OPTIONS, "epochs": 1}, checkpoint=path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    header = io.BytesIO()  # a W1 of 10^11 float64 (800 GB) in a few bytes
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**11,)}
    )
    members["W1.npy"] = header.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(FileFormatError, match="W1 holds 0 bytes"):
        network().fit(X, Y, **OPTIONS, checkpoint=path, resume=True)


def test_a_device_or_pipe_given_as_data_is_named(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    for path in [tmp_path / "fifo", *([Path("/dev/zero")] if Path("/dev/zero").exists() else [])]:
        with pytest.raises(FileFormatError, match="not a directory or a regular file"):
            datasets.mnist(path)


# --- models and histories ---------------------------------------------------------------------


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_a_zip_bomb_model_is_refused_before_inflating(tmp_path):
    architecture = {"format": "gpunet", "version": 1, "sizes": [3, 10**8]}
    architecture.update(activations=["sigmoid"], dtype="float32")
    header = io.BytesIO()  # W1 of 3·10^8 float32 zeros: 1.2 GB deflating to about 1 MB
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**8, 3)}
    )
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("architecture.npy", _npy(np.frombuffer(json.dumps(architecture).encode(), "u1")))
        with z.open("W1.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            for _ in range(72):
                member.write(bytes(1 << 24))
    with pytest.raises(FileFormatError, match="zip bomb"):
        gpunet.load(tmp_path / "bomb.npz", backend="numpy")


@pytest.mark.parametrize(
    "change",
    [{"dtype": "float16"}, {"activations": ["nope"]}, {"sizes": [64, True]}, {"version": 2}],
)
def test_a_model_with_a_foreign_architecture_is_a_format_error(tmp_path, change):
    net = gpunet.Network([64, 10], backend="numpy", seed=0)
    arrays = model_arrays(net)
    architecture = json.loads(bytes(arrays["architecture"]).decode()) | change
    arrays["architecture"] = np.frombuffer(json.dumps(architecture).encode(), np.uint8)
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(FileFormatError, match=r"m\.npz is not a gpunet model file"):
        gpunet.load(tmp_path / "m.npz", backend="numpy")


@pytest.mark.parametrize(
    "metrics",
    [
        {"cost": ["a", "b"]},
        {"cost": [1.0, True]},
        {"cost": [1.0, 2.0], "gradient_norm": [3.0, 4.0]},
        {"cost": [1.0, 2.0], "gradient_norm": [[3.0], [4.0, 5.0]]},
        {"cost": 1.0},
        {"cost": [[[[[[1.0]]]]]]},
    ],
    ids=["text", "bool", "flat-per-layer", "ragged", "scalar", "nested"],
)
def test_a_history_with_odd_metrics_is_a_format_error(tmp_path, metrics):
    record = {"format": "gpunet-history-1", "meta": {}, "metrics": metrics}
    (tmp_path / "h.json").write_text(json.dumps(record))
    with pytest.raises(FileFormatError, match=r"h\.json is not a gpunet history file"):
        gpunet.History.load(tmp_path / "h.json")


def test_a_deeply_nested_history_is_a_format_error(tmp_path):
    (tmp_path / "h.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(FileFormatError, match=r"h\.json"):
        gpunet.History.load(tmp_path / "h.json")


def test_odd_meta_in_a_history_still_plots(tmp_path):
    history = network().fit(X, Y, **{**OPTIONS, "epochs": 1})
    history.meta.update(activations=[1, 2], cost=3, sizes="many")
    history.save(tmp_path / "h.json")
    assert gpunet.History.load(tmp_path / "h.json").plot(tmp_path / "h.png").stat().st_size


# --- odd names and settings for writes --------------------------------------------------------


@pytest.mark.parametrize("name", ["n" * 240 + ".npz", "[a]*?.npz", "spaced out.npz", "ünï.npz"])
def test_odd_file_names_save_and_leave_no_temporary(tmp_path, name):
    network().save(tmp_path / name)
    network().save(tmp_path / name)  # over the first, through the stale-temporary scan
    assert os.listdir(tmp_path) == [name]


def test_a_symbolic_link_is_written_through_and_kept(tmp_path):
    (tmp_path / "link.npz").symlink_to("real.npz")
    network().save(tmp_path / "link.npz")
    assert (tmp_path / "link.npz").is_symlink() and (tmp_path / "real.npz").is_file()
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "real.npz"]


def test_a_write_from_another_thread_leaves_the_signal_handlers_alone(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=network().save, args=(tmp_path / "n.npz",))
    thread.start()
    thread.join()
    assert (tmp_path / "n.npz").is_file() and signal.getsignal(signal.SIGTERM) is before


def test_an_ignored_sigterm_stays_ignored_during_a_write(tmp_path):
    def write(file):
        file.write(b"one ")
        signal.raise_signal(signal.SIGTERM)
        file.write(b"two")

    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        write_atomically(tmp_path / "out", write)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (tmp_path / "out").read_bytes() == b"one two"
