"""Small image-classification datasets as NumPy arrays: digits (bundled) and MNIST (from disk)."""

import gzip
import math
import numbers
import os
import pickle
import struct
from importlib.resources import files
from pathlib import Path

import numpy as np

_IDX_IMAGES_MAGIC = 2051
_IDX_LABELS_MAGIC = 2049
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_PICKLE_SPLITS = ("train", "validation", "test")

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


def digits() -> tuple[np.ndarray, np.ndarray]:
    """Return scikit-learn's 8x8 digits as X float32 (1797, 64) in [0, 1] and y int64 (1797,)."""
    resource = files(__package__) / "data" / "digits.csv.gz"
    with resource.open("rb") as raw, gzip.open(raw, "rt") as text:
        data = np.loadtxt(text, delimiter=",", dtype=np.int64)
    return (data[:, :-1] / 16).astype(np.float32), data[:, -1].copy()


def mnist(path: str | os.PathLike[str], split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST from a directory of IDX files or Nielsen's mnist.pkl.gz as X float32, y int64."""
    path = Path(path)
    if path.is_dir():
        return _mnist_idx(path, split)
    if path.is_file():
        return _mnist_pickle(path, split)
    raise FileNotFoundError(
        f"{path} does not exist: expected a directory holding train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte "
        "(each optionally .gz), or the file mnist.pkl.gz"
    )


def train_test_split(
    X: np.ndarray,
    y: np.ndarray,
    *,
    test_size: float,
    shuffle: bool = False,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split into (X_train, y_train, X_test, y_test); unshuffled, the last samples are the test."""
    for name, value in (("X", X), ("y", y)):
        if not hasattr(value, "__len__"):
            raise TypeError(f"{name} must be an array, got {type(value).__name__}")
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
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if np.any(labels > 9):
        raise ValueError(f"{labels_path}: labels must lie in 0..9, found {labels.max()}")
    return images.reshape(len(images), -1).astype(np.float32) / 255, labels.astype(np.int64)


def _find(directory: Path, name: str, what: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no MNIST {what} in {directory}: expected {name} or {name}.gz")


def _read_idx(path: Path, magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (gzip.BadGzipFile, EOFError) as exc:
            raise ValueError(f"{path}: corrupt gzip data ({exc})") from exc
    ndim = 1 + len(item_shape)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: {len(raw)} bytes, too short for a {header}-byte IDX header")
    (found,) = struct.unpack_from(">I", raw)
    if found != magic:
        raise ValueError(f"{path}: magic number {found}, expected {magic}")
    dims = struct.unpack_from(f">{ndim}I", raw, 4)
    if dims[1:] != item_shape:
        raise ValueError(f"{path}: items of shape {dims[1:]}, expected {item_shape}")
    expected = header + math.prod(dims)
    if len(raw) != expected:
        raise ValueError(
            f"{path}: header gives dimensions {dims}, so expected {expected} bytes, "
            f"found {len(raw)}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


class _ArrayUnpickler(pickle.Unpickler):
    # A pickle can call any global it names; admitting only NumPy's array constructors
    # means a hostile file fails here instead of running code.
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from pickle")
        return super().find_class(module, name)


def _mnist_pickle(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    if split not in _PICKLE_SPLITS:
        raise ValueError(
            f"split must be 'train', 'validation' or 'test' for mnist.pkl.gz, got {split!r}"
        )
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            # latin1 lets Python 3 read the Python 2 byte strings that hold the array data.
            data = _ArrayUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, gzip.BadGzipFile, ValueError) as exc:
        # an IDX file given in place of its directory lands here too
        raise ValueError(
            f"{path}: not a pickled MNIST (mnist.pkl.gz) nor a directory of IDX files ({exc})"
        ) from exc
    if not (isinstance(data, (tuple, list)) and len(data) == 3):
        raise ValueError(f"{path}: expected a (training, validation, test) tuple")
    part = data[_PICKLE_SPLITS.index(split)]
    if not (isinstance(part, (tuple, list)) and len(part) == 2):
        raise ValueError(f"{path}: expected the {split} set as an (images, labels) pair")
    X, y = part
    if not (
        isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == 784 and X.dtype.kind == "f"
    ):
        raise ValueError(f"{path}: expected {split} images as a float array of shape (n, 784)")
    if not (isinstance(y, np.ndarray) and y.shape == (len(X),) and y.dtype.kind in "iu"):
        raise ValueError(f"{path}: expected {split} labels as an int array of shape ({len(X)},)")
    if X.size and (X.min() < 0 or X.max() > 1):
        raise ValueError(f"{path}: {split} images must lie in [0, 1]")
    if np.any((y < 0) | (y > 9)):
        raise ValueError(f"{path}: {split} labels must lie in 0..9")
    return X.astype(np.float32), y.astype(np.int64)
