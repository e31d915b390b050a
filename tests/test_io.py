"""Saving and loading: round trips, atomic writes, and every kind of bad file."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile

import numpy as np
import pytest
from conftest import assert_params_equal, seeded_rng

import gpunet
import gpunet.core.io


def _net(dtype="float32", sizes=(4, 6, 5, 3), activations=("relu", "gelu", "softmax")):
    return gpunet.Network(list(sizes), list(activations), dtype=dtype, seed=3, backend="numpy")


def _fields(**overrides) -> dict:
    """A valid architecture record, with overrides."""
    return {
        "format": "gpunet",
        "version": 1,
        "sizes": [2, 3],
        "activations": ["sigmoid"],
        "dtype": "float64",
    } | overrides


def _architecture(**overrides):
    return np.frombuffer(json.dumps(_fields(**overrides)).encode(), dtype=np.uint8)


def _write_npz(path, **arrays):
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def _valid_arrays():
    return {"W1": np.zeros((3, 2)), "b1": np.zeros(3)}


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip(tmp_path, dtype):
    net = _net(dtype)
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = gpunet.load(path, backend="numpy")
    assert loaded.sizes == net.sizes
    assert loaded.activation_names == net.activation_names
    assert loaded.dtype == net.dtype
    assert_params_equal(net.get_params(), loaded.get_params())
    X = seeded_rng("io", dtype).standard_normal((7, 4))
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_round_trip_with_str_path_and_no_suffix_after_training(tmp_path):
    rng = seeded_rng("io-train")
    X, y = rng.standard_normal((20, 4)), rng.integers(0, 3, size=20)
    net = _net("float64")
    net.fit(X, y, epochs=2, batch_size=5, lr=0.1, progress=False)
    path = str(tmp_path / "model")  # no .npz suffix: the file is exactly this path
    net.save(path)
    assert os.listdir(tmp_path) == ["model"]
    loaded = gpunet.load(path, backend="numpy")
    assert loaded.evaluate(X, y) == net.evaluate(X, y)


def test_saved_file_layout_is_documented_npz(tmp_path):
    """Readable without gpunet: an architecture JSON and arrays W1..WL, b1..bL."""
    net = _net("float64")
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        architecture = json.loads(bytes(data["architecture"]).decode())
        assert architecture["sizes"] == [4, 6, 5, 3]
        assert architecture["activations"] == ["relu", "gelu", "softmax"]
        assert architecture["dtype"] == "float64"
        weights, biases = net.get_params()
        for l in range(1, 4):
            np.testing.assert_array_equal(data[f"W{l}"], weights[l - 1])
            np.testing.assert_array_equal(data[f"b{l}"], biases[l - 1])


# --- atomic writes -------------------------------------------------------------------------


def test_save_leaves_no_temporary_files_and_replaces_existing(tmp_path):
    path = tmp_path / "model.npz"
    first = _net("float64")
    first.save(path)
    assert os.listdir(tmp_path) == ["model.npz"]
    second = gpunet.Network(
        [4, 6, 5, 3], ["relu", "gelu", "softmax"], dtype="float64", seed=99, backend="numpy"
    )
    second.save(path)
    assert os.listdir(tmp_path) == ["model.npz"]
    assert_params_equal(second.get_params(), gpunet.load(path, backend="numpy").get_params())


def test_failed_save_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    old = _net("float64")
    old.save(path)
    original_bytes = path.read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(gpunet.core.io.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        gpunet.Network([2, 2], seed=0, backend="numpy").save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.npz"]
    assert path.read_bytes() == original_bytes
    assert_params_equal(old.get_params(), gpunet.load(path, backend="numpy").get_params())


def test_save_into_missing_directory_fails_cleanly(tmp_path):
    with pytest.raises(OSError):
        _net().save(tmp_path / "missing" / "model.npz")
    assert os.listdir(tmp_path) == []


# --- bad files -------------------------------------------------------------------------------


def _assert_not_a_model(path):
    with pytest.raises(ValueError) as caught:
        gpunet.load(path, backend="numpy")
    message = str(caught.value)
    assert os.fspath(path) in message or "gpunet" in message, message
    return message


def test_load_nonexistent_path(tmp_path):
    with pytest.raises(FileNotFoundError):
        gpunet.load(tmp_path / "nope.npz", backend="numpy")


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_load_truncated_file(tmp_path, keep):
    path = tmp_path / "model.npz"
    _net().save(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    _assert_not_a_model(path)


def test_load_random_bytes(tmp_path):
    path = tmp_path / "random.npz"
    path.write_bytes(seeded_rng("random bytes").bytes(4096))
    _assert_not_a_model(path)


def test_load_a_directory(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises((ValueError, IsADirectoryError, PermissionError)):
        gpunet.load(tmp_path / "dir.npz", backend="numpy")


def test_load_plain_npy(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.zeros(3))
    _assert_not_a_model(path)


def test_load_npz_without_architecture(tmp_path):
    path = tmp_path / "plain.npz"
    _write_npz(path, **_valid_arrays())
    _assert_not_a_model(path)


@pytest.mark.parametrize(
    "architecture",
    [
        _architecture(format="other"),
        _architecture(version=2),
        _architecture(format=None),
        np.frombuffer(b"not json", dtype=np.uint8),
        np.frombuffer(b"\xff\xfe\x00", dtype=np.uint8),
        np.frombuffer(json.dumps([1, 2]).encode(), dtype=np.uint8),
    ],
    ids=["format", "version", "no-format", "not-json", "not-utf8", "json-list"],
)
def test_load_wrong_format_tag_or_architecture(tmp_path, architecture):
    path = tmp_path / "model.npz"
    _write_npz(path, architecture=architecture, **_valid_arrays())
    _assert_not_a_model(path)


def test_load_missing_parameter_array(tmp_path):
    path = tmp_path / "model.npz"
    _write_npz(path, architecture=_architecture(), W1=np.zeros((3, 2)))
    _assert_not_a_model(path)


def test_load_parameter_of_wrong_shape(tmp_path):
    path = tmp_path / "model.npz"
    _write_npz(path, architecture=_architecture(), W1=np.zeros((2, 3)), b1=np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        gpunet.load(path, backend="numpy")


@pytest.mark.parametrize("missing", ["sizes", "activations", "dtype"])
def test_load_architecture_missing_a_field(tmp_path, missing):
    """A file whose architecture lacks a field is 'anything else': ValueError, not KeyError."""
    fields = _fields()
    del fields[missing]
    path = tmp_path / "model.npz"
    _write_npz(
        path, architecture=np.frombuffer(json.dumps(fields).encode(), np.uint8), **_valid_arrays()
    )
    _assert_not_a_model(path)


def test_load_integer_parameters_is_a_value_error(tmp_path):
    """load's contract is ValueError for anything save did not write."""
    path = tmp_path / "model.npz"
    _write_npz(
        path, architecture=_architecture(), W1=np.zeros((3, 2), dtype=np.int64), b1=np.zeros(3)
    )
    _assert_not_a_model(path)


def test_load_non_finite_parameters(tmp_path):
    path = tmp_path / "model.npz"
    _write_npz(path, architecture=_architecture(), W1=np.full((3, 2), np.nan), b1=np.zeros(3))
    with pytest.raises(ValueError):
        gpunet.load(path, backend="numpy")


_UNPICKLED = []


def _record_unpickling():
    _UNPICKLED.append(True)
    return "pwned"


class _Payload:
    def __reduce__(self):
        return (_record_unpickling, ())


@pytest.mark.parametrize("key", ["architecture", "W1"])
def test_object_arrays_are_never_unpickled(tmp_path, monkeypatch, key):
    path = tmp_path / "evil.npz"
    arrays = {"architecture": _architecture(), **_valid_arrays()}
    arrays[key] = np.array([_Payload()], dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # pickles the object array
    path.write_bytes(buffer.getvalue())
    with zipfile.ZipFile(path) as archive:
        assert f"{key}.npy" in archive.namelist()

    calls = []
    real_load = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle", "default"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(gpunet.core.io.np, "load", spy)
    _UNPICKLED.clear()
    _assert_not_a_model(path)
    assert all(flag is False for flag in calls), calls  # refused before np.load, or by it
    assert not _UNPICKLED


@pytest.mark.parametrize("sizes", [[200000, 200000, 10], [20000, 20000, 10]])
def test_a_small_file_declaring_a_huge_network_is_refused_before_allocating(tmp_path, sizes):
    # the architecture claims hundreds of GiB; the arrays in the file are tiny
    arrays = {"architecture": _architecture(sizes=sizes), **_valid_arrays()}
    path = tmp_path / "huge.npz"
    np.savez(path, **arrays)
    tracemalloc.start()  # NumPy reports its allocations to tracemalloc
    try:
        with pytest.raises(ValueError, match=r"is not a gpunet model file.*shape"):
            gpunet.load(path, backend="numpy")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak} bytes allocated to refuse a tiny file"


def test_an_array_header_that_promises_more_data_than_stored_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    gpunet.Network([3, 4, 2], "sigmoid", backend="numpy", seed=0).save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["W1.npy"] = members["W1.npy"][:-8]  # the header still says (4, 3)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match=r"W1 holds .* bytes of data"):
        gpunet.load(path, backend="numpy")
