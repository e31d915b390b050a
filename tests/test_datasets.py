import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from gpunet import FileFormatError, datasets

REAL_MNIST = Path(__file__).resolve().parents[2] / "shared/data/mnist"


def write_idx(path: Path, magic: int, array: np.ndarray, compress: bool = False) -> None:
    raw = struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def make_mnist_dir(directory: Path, n: int = 5, prefix: str = "train", compress: bool = False):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", 2051, images, compress)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", 2049, labels, compress)
    return images, labels


def make_nielsen_data(sizes=(6, 3, 4)):
    rng = np.random.default_rng(1)
    return tuple(
        (rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, size=n, dtype=np.int64))
        for n in sizes
    )


# --- digits ---


def test_digits_shapes_dtypes_and_range():
    X, y = datasets.digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(range(10))


def test_digits_is_deterministic():
    X1, y1 = datasets.digits()
    X2, y2 = datasets.digits()
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)


# --- MNIST IDX ---


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("split, prefix", [("train", "train"), ("test", "t10k")])
def test_idx_round_trip(tmp_path, compress, split, prefix):
    images, labels = make_mnist_dir(tmp_path, prefix=prefix, compress=compress)
    X, y = datasets.mnist(tmp_path, split=split)
    assert X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(X, images.reshape(5, 784).astype(np.float32) / 255)
    np.testing.assert_array_equal(y, labels)


def test_idx_wrong_magic(tmp_path):
    make_mnist_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", 2051, np.zeros(5))
    with pytest.raises(ValueError, match="magic number 2051, expected 2049"):
        datasets.mnist(tmp_path)


@pytest.mark.parametrize("change", [-1, +1])
def test_idx_truncated_or_oversized(tmp_path, change):
    make_mnist_dir(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    raw = path.read_bytes()
    path.write_bytes(raw[:change] if change < 0 else raw + b"\0")
    with pytest.raises(ValueError, match=f"train-images-idx3-ubyte.*expected {len(raw)} bytes"):
        datasets.mnist(tmp_path)


def test_idx_truncated_gzip(tmp_path):
    make_mnist_dir(tmp_path, compress=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz"):
        datasets.mnist(tmp_path)


def test_idx_count_mismatch(tmp_path):
    make_mnist_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", 2049, np.zeros(4))
    with pytest.raises(ValueError, match=r"5 images but .* 4 labels"):
        datasets.mnist(tmp_path)


def test_idx_label_out_of_range(tmp_path):
    make_mnist_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", 2049, np.array([0, 1, 2, 10, 3]))
    with pytest.raises(ValueError, match=r"0\.\.9"):
        datasets.mnist(tmp_path)


def test_idx_missing_file_names_expected_files(tmp_path):
    make_mnist_dir(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError) as info:
        datasets.mnist(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "train-labels-idx1-ubyte or train-labels-idx1-ubyte.gz" in message


def test_missing_directory_names_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte.*mnist\.pkl\.gz"):
        datasets.mnist(tmp_path / "nowhere", split="test")


def test_idx_bad_split(tmp_path):
    make_mnist_dir(tmp_path)
    with pytest.raises(ValueError, match="'train' or 'test'"):
        datasets.mnist(tmp_path, split="validation")


# --- MNIST pickle ---


def write_pickle(path: Path, obj, opener=gzip.open) -> Path:
    with opener(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)
    return path


@pytest.mark.parametrize("split, index", [("train", 0), ("validation", 1), ("test", 2)])
def test_pickle_round_trip(tmp_path, split, index):
    data = make_nielsen_data()
    X, y = datasets.mnist(write_pickle(tmp_path / "mnist.pkl.gz", data), split=split)
    assert X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(X, data[index][0])
    np.testing.assert_array_equal(y, data[index][1])


def test_pickle_uncompressed(tmp_path):
    data = make_nielsen_data()
    X, _ = datasets.mnist(write_pickle(tmp_path / "mnist.pkl", data, open))
    np.testing.assert_array_equal(X, data[0][0])


def test_pickle_in_python2_format(tmp_path):
    # Nielsen's file comes from Python 2 and NumPy 1.x: byte strings as BINSTRING, which
    # only encoding="latin1" reads back, and globals under numpy.core rather than numpy._core.
    class Py2Pickler(pickle._Pickler):
        dispatch = pickle._Pickler.dispatch.copy()

        def save_bytes(self, obj):
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
            self.memoize(obj)

        dispatch[bytes] = save_bytes

    data = make_nielsen_data()
    with open(tmp_path / "raw", "wb") as f:
        Py2Pickler(f, protocol=2).dump(data)
    raw = (tmp_path / "raw").read_bytes().replace(b"numpy._core.", b"numpy.core.")
    assert b"_codecs" not in raw and b"numpy.core.multiarray" in raw
    (tmp_path / "mnist.pkl.gz").write_bytes(gzip.compress(raw))
    X, y = datasets.mnist(tmp_path / "mnist.pkl.gz", split="test")
    np.testing.assert_array_equal(X, data[2][0])
    np.testing.assert_array_equal(y, data[2][1])


class Hostile:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_hostile_pickle_is_refused(tmp_path, capfd):
    marker = tmp_path / "pwned"
    path = write_pickle(tmp_path / "mnist.pkl.gz", Hostile(f"echo pwned; touch {marker}"))
    with pytest.raises(FileFormatError, match=r"refusing .*\.system"):
        datasets.mnist(path)
    assert not marker.exists()
    assert "pwned" not in capfd.readouterr().out


@pytest.mark.parametrize(
    "obj",
    [
        {"train": 1},
        ((np.zeros((2, 784), np.float32), np.zeros(2)),) * 2,
        ((np.zeros((2, 10), np.float32), np.zeros(2, np.int64)),) * 3,
        ((np.zeros((2, 784), np.float32), np.zeros(3, np.int64)),) * 3,
        ((np.full((2, 784), 255, np.float32), np.zeros(2, np.int64)),) * 3,
        ((np.zeros((2, 784), np.float32), np.array([0, 10])),) * 3,
    ],
    ids=["dict", "two-parts", "wrong-width", "length-mismatch", "unscaled", "bad-label"],
)
def test_foreign_pickle(tmp_path, obj):
    with pytest.raises(ValueError, match=r"mnist\.pkl\.gz"):
        datasets.mnist(write_pickle(tmp_path / "mnist.pkl.gz", obj))


def test_pickle_bad_split(tmp_path):
    path = write_pickle(tmp_path / "mnist.pkl.gz", make_nielsen_data())
    with pytest.raises(ValueError, match="'train', 'validation' or 'test'"):
        datasets.mnist(path, split="valid")


# --- real MNIST test set (only where ../shared/data/mnist exists) ---


def test_real_mnist_test_set():
    if not REAL_MNIST.is_dir():
        pytest.skip(f"real MNIST not available: {REAL_MNIST} does not exist")
    X, y = datasets.mnist(REAL_MNIST, split="test")
    assert X.shape == (10000, 784) and X.dtype == np.float32
    assert y.shape == (10000,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    counts = np.bincount(y, minlength=10)
    assert counts.sum() == 10000
    # The well-known class sizes of MNIST's test set, so no checksum of the .gz files is needed.
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --- train_test_split ---


def test_split_without_shuffle_takes_last_samples():
    X, y = np.arange(20).reshape(10, 2), np.arange(10)
    X_train, y_train, X_test, y_test = datasets.train_test_split(X, y, test_size=3)
    np.testing.assert_array_equal(y_train, np.arange(7))
    np.testing.assert_array_equal(y_test, [7, 8, 9])
    np.testing.assert_array_equal(X_test, X[7:])
    assert len(X_train) == 7


def test_split_fraction():
    X = np.zeros((10000, 3))
    X_train, _, X_test, _ = datasets.train_test_split(X, np.zeros(10000), test_size=0.2)
    assert (len(X_train), len(X_test)) == (8000, 2000)


def test_split_shuffle_is_seeded_and_disjoint():
    X, y = np.arange(100).reshape(50, 2), np.arange(50)
    first = datasets.train_test_split(X, y, test_size=0.3, shuffle=True, seed=7)
    second = datasets.train_test_split(X, y, test_size=0.3, shuffle=True, seed=7)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    _, y_train, X_test, y_test = first
    assert (len(y_train), len(y_test)) == (35, 15)
    assert not set(y_train) & set(y_test)
    assert sorted([*y_train, *y_test]) == list(range(50))
    np.testing.assert_array_equal(X_test[:, 0], 2 * y_test)
    assert y_test.tolist() != list(range(35, 50))


@pytest.mark.parametrize("test_size", [0, 10, 11, -1, 0.0, 1.0, 1.5, 0.01])
def test_split_bad_test_size(test_size):
    with pytest.raises(ValueError, match="test_size"):
        datasets.train_test_split(np.zeros((10, 2)), np.zeros(10), test_size=test_size)


@pytest.mark.parametrize("test_size", [True, "0.2", None])
def test_split_test_size_wrong_type(test_size):
    with pytest.raises(TypeError, match="test_size"):
        datasets.train_test_split(np.zeros((10, 2)), np.zeros(10), test_size=test_size)


def test_split_length_mismatch():
    with pytest.raises(ValueError, match="same length"):
        datasets.train_test_split(np.zeros((10, 2)), np.zeros(9), test_size=2)
