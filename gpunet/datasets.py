"""Small image-classification datasets as NumPy arrays: digits (bundled) and MNIST (from disk)."""

import gzip
import math
import numbers
import os
import pickle
import struct
from importlib.resources import files
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np
from numpy.typing import NDArray

from .core.checks import check_flag, check_seed
from .core.io import FileFormatError, reading

_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049
_IDX_MAGICS = {struct.pack(">I", magic) for magic in (_IDX_IMAGES_MAGIC, _IDX_LABELS_MAGIC)}
# the most a data file may hold uncompressed: MNIST's largest, as IDX or pickle, is 220 MB
MAX_DATA_BYTES = 1 << 31
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_PICKLE_SPLITS = ("train", "validation", "test")

# (X float32 of shape (m, 784) or (m, 64), y int64 of shape (m,))
Images = tuple[NDArray[np.float32], NDArray[np.int64]]
# the element types of a split's X and y, kept by the split
FeatureT = TypeVar("FeatureT", bound=np.generic)
TargetT = TypeVar("TargetT", bound=np.generic)

# Everything a pickled tuple of NumPy arrays refers to, under NumPy 1.x and 2.x module names.
# _codecs.encode is how Python 3 writes bytes at protocol 2; it only converts str to bytes.
_PICKLE_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


def digits() -> Images:
    """Return scikit-learn's 8x8 digits as X float32 (1797, 64) in [0, 1] and y int64 (1797,).

    Examples:
        >>> X, y = digits()
        >>> X.shape, X.dtype, y.shape, y.dtype
        ((1797, 64), dtype('float32'), (1797,), dtype('int64'))
        >>> float(X.min()), float(X.max()), y[:10].tolist()
        (0.0, 1.0, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    """
    resource = files(__package__) / "data" / "digits.csv.gz"
    with resource.open("rb") as raw, gzip.open(raw, "rt") as text:
        data = np.loadtxt(text, delimiter=",", dtype=np.int64)
    return (data[:, :-1] / 16).astype(np.float32), data[:, -1].copy()


def mnist(path: str | os.PathLike[str], split: str = "train") -> Images:
    """Load MNIST from a directory of IDX files or Nielsen's mnist.pkl.gz as X float32, y int64.

    A file that is not what it should be (damaged, truncated, of another kind, an IDX file
    given instead of its directory, a pickle naming anything but NumPy's array
    constructors) raises gpunet.FileFormatError, a ValueError naming it; nothing in a
    pickle runs, and it is read at most MAX_DATA_BYTES (2 GiB, Nielsen's is 220 MB
    uncompressed) however large the sizes it declares.
    """
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        raise TypeError(f"path must be a str or path, got {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        return _mnist_idx(path, split)
    if path.is_file():
        return _mnist_pickle(path, split)
    if path.exists():
        raise FileFormatError(path, "a directory or a regular file", "a device, pipe or socket")
    raise FileNotFoundError(
        f"{path} does not exist: expected a directory holding train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte "
        "(each optionally .gz), or the file mnist.pkl.gz"
    )


def train_test_split(
    X: NDArray[FeatureT],
    y: NDArray[TargetT],
    *,
    test_size: float,
    shuffle: bool = False,
    seed: int | None = None,
) -> tuple[NDArray[FeatureT], NDArray[TargetT], NDArray[FeatureT], NDArray[TargetT]]:
    """Split into (X_train, y_train, X_test, y_test); unshuffled, the last samples are the test.

    `test_size` is a fraction of the samples or a count.

    Examples:
        >>> X, y = digits()
        >>> X_train, y_train, X_test, y_test = train_test_split(
        ...     X, y, test_size=0.2, shuffle=True, seed=0
        ... )
        >>> X_train.shape, X_test.shape
        ((1438, 64), (359, 64))
        >>> [part.tolist() for part in train_test_split(np.arange(5), np.arange(5), test_size=2)]
        [[0, 1, 2], [0, 1, 2], [3, 4], [3, 4]]
    """
    for name, samples in (("X", X), ("y", y)):
        if not (hasattr(samples, "__len__") and hasattr(samples, "__getitem__")) or (
            np.ndim(samples) == 0
        ):
            raise TypeError(f"{name} must be an array of samples, got {type(samples).__name__}")
    shuffle, seed = check_flag("shuffle", shuffle), check_seed("seed", seed)
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X and y must have the same length, got {n} and {len(y)}")
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"test_size must be an int or a float, got {test_size!r}")
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
    elif 0 < test_size < 1:
        n_test = round(test_size * n)
    else:
        raise ValueError(f"test_size as a fraction must lie in (0, 1), got {test_size}")
    if not 1 <= n_test <= n - 1:
        raise ValueError(
            f"test_size={test_size!r} gives {n_test} test samples out of {n}: "
            "both sides of the split need at least one"
        )
    if shuffle:
        order = np.random.default_rng(seed).permutation(n)
        X, y = X[order], y[order]
    cut = n - n_test
    return X[:cut], y[:cut], X[cut:], y[cut:]


def _mnist_idx(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in _IDX_PREFIX:
        raise ValueError(f"split must be 'train' or 'test' for IDX files, got {split!r}")
    prefix = _IDX_PREFIX[split]
    kind = "training" if split == "train" else "test"
    images_path = _find(directory, f"{prefix}-images-idx3-ubyte", f"{kind} images")
    labels_path = _find(directory, f"{prefix}-labels-idx1-ubyte", f"{kind} labels")
    images = _read_idx(images_path, _IDX_IMAGES_MAGIC, (28, 28))
    labels = _read_idx(labels_path, _IDX_LABELS_MAGIC, ())
    with reading(labels_path, "the MNIST labels of its images"):
        if len(images) != len(labels):
            raise ValueError(
                f"{images_path.name} holds {len(images)} images but "
                f"{labels_path.name} holds {len(labels)} labels"
            )
        if np.any(labels > 9):
            raise ValueError(f"labels must lie in 0..9, found {labels.max()}")
    return images.reshape(len(images), -1).astype(np.float32) / 255, labels.astype(np.int64)


def _find(directory: Path, name: str, what: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no MNIST {what} in {directory}: expected {name} or {name}.gz")


def _read_idx(path: Path, magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    with reading(path, "an MNIST IDX file"), _open(path) as file:
        raw = _Bounded(file).read()
        ndim = 1 + len(item_shape)
        header = 4 + 4 * ndim
        if len(raw) < header:
            raise ValueError(f"{len(raw)} bytes, too short for a {header}-byte IDX header")
        (found,) = struct.unpack_from(">I", raw)
        if found != magic:
            raise ValueError(f"magic number {found}, expected {magic}")
        dims = struct.unpack_from(f">{ndim}I", raw, 4)
        if dims[1:] != item_shape:
            raise ValueError(f"items of shape {dims[1:]}, expected {item_shape}")
        expected = header + math.prod(dims)
        if len(raw) != expected:
            raise ValueError(
                f"header gives dimensions {dims}, so expected {expected} bytes, found {len(raw)}"
            )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _open(path: Path) -> BinaryIO:
    """path opened for reading, decompressed as it is read when it ends in .gz."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


class _Bounded:
    """A file read in chunks, MAX_DATA_BYTES at most: a size that a hostile header or pickle
    declares is allocated only as far as the file holds it, and a gzip bomb stops early."""

    CHUNK = 1 << 24

    def __init__(self, file: BinaryIO) -> None:
        self.file, self.total = file, 0

    def read(self, size: int = -1) -> bytes:
        wanted = MAX_DATA_BYTES + 1 if size < 0 else size
        chunks = []
        while wanted > 0:
            chunk = self.file.read(min(wanted, self.CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
            self._count(len(chunk))
        return b"".join(chunks)

    def readline(self) -> bytes:
        line = self.file.readline(self.CHUNK)
        self._count(len(line))
        return line

    def _count(self, size: int) -> None:
        self.total += size
        if self.total > MAX_DATA_BYTES:
            raise ValueError(f"it holds more than {MAX_DATA_BYTES} bytes (uncompressed)")


def _latin1(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """_codecs.encode as pickles of bytes use it (text, "latin1"), and no other codec."""
    if encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"refusing the codec {encoding!r} in a pickle")
    return text.encode("latin1", errors)


class _ArrayUnpickler(pickle.Unpickler):
    # A pickle can call any global it names; admitting only NumPy's array constructors
    # means a hostile file fails here instead of running code.
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from pickle")
        if (module, name) == ("_codecs", "encode"):
            return _latin1
        return super().find_class(module, name)


PICKLE = "Nielsen's mnist.pkl.gz, a pickled (training, validation, test) tuple"


def _mnist_pickle(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in _PICKLE_SPLITS:
        raise ValueError(
            f"split must be 'train', 'validation' or 'test' for mnist.pkl.gz, got {split!r}"
        )
    with reading(path, PICKLE), _open(path) as file:
        if file.read(4) in _IDX_MAGICS:
            raise ValueError(f"it is an IDX file: give the directory that holds it, {path.parent}")
        file.seek(0)
        try:
            # latin1 lets Python 3 read the Python 2 byte strings that hold the array data.
            data = _ArrayUnpickler(_Bounded(file), encoding="latin1").load()
        except MemoryError:  # the unpickler allocates a declared length before reading it
            raise ValueError(
                "it declares a length beyond memory (hostile, or memory is short here)"
            ) from None
        X, y = _pickled_split(data, split)
    return X.astype(np.float32), y.astype(np.int64)


def _pickled_split(data: object, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The (images, labels) of split in an unpickled (training, validation, test) tuple,
    checked; ValueError saying what is wrong."""
    if not (isinstance(data, (tuple, list)) and len(data) == 3):
        raise ValueError("expected a (training, validation, test) tuple")
    part = data[_PICKLE_SPLITS.index(split)]
    if not (isinstance(part, (tuple, list)) and len(part) == 2):
        raise ValueError(f"expected the {split} set as an (images, labels) pair")
    X, y = part
    if not (
        isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == 784 and X.dtype.kind == "f"
    ):
        raise ValueError(f"expected {split} images as a float array of shape (n, 784)")
    if not (isinstance(y, np.ndarray) and y.shape == (len(X),) and y.dtype.kind in "iu"):
        raise ValueError(f"expected {split} labels as an int array of shape ({len(X)},)")
    if X.size and not (X.min() >= 0 and X.max() <= 1):  # NaN fails too
        raise ValueError(f"{split} images must lie in [0, 1]")
    if np.any((y < 0) | (y > 9)):
        raise ValueError(f"{split} labels must lie in 0..9")
    return X, y
