"""The data the commands read (`--data`): the bundled digits, MNIST, or a file of arrays.

The array files hold numbers only, and nothing in them is unpickled:
- .npy: one 2-D array, a row of features per example (no labels);
- .npz: the array X (features, 2-D) and optionally y, class labels (m,) or targets (m, n_L);
- .csv: comma-separated numbers (quoted or not; UTF-8, a byte-order mark ignored), a row per
  example, optionally under one header line;
  where labels are wanted they are the last column, or the one `target_column` names.
"""

from __future__ import annotations

import csv
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import datasets
from ..core.io import FileFormatError, check_stored_array, reading

SPLITS = ("train", "test")
# what each array file is expected to be, by suffix, as FileFormatError says it
ARRAY_FILES = {
    ".npy": "a .npy file of features (one 2-D numeric array)",
    ".npz": "an .npz file of numeric arrays X and y",
    ".csv": "a CSV file of comma-separated numbers",
}
# the files labels can be read from
LABELLED = "give an .npz with arrays X and y, or a .csv with a label column"


@dataclass(frozen=True)
class Examples:
    """Rows of features X with their labels or targets y (None when not read), the data set
    they come from and the part of it they are (None: all of it)."""

    X: np.ndarray
    y: np.ndarray | None
    source: str
    part: str | None = None

    @property
    def description(self) -> str:
        return self.source if self.part is None else f"{self.source}, {self.part} part"


def is_array_file(spec: str) -> bool:
    return Path(spec).suffix.lower() in ARRAY_FILES


def read_splits(
    spec: str, test_size: float, seed: int, target_column: int | None = None
) -> tuple[Examples, Examples]:
    """The (train, test) parts of the data `spec` names, as `gpunet train` learns and tests
    on them: MNIST's own two sets; else a shuffled split (seed) holding test_size out of
    the digits or an array file, or the last test_size of an MNIST test set alone."""
    if target_column is not None and not is_array_file(spec):
        raise ValueError(f"--target-column applies to a .csv file, not to {spec!r}")
    if spec == "digits":
        X, y = datasets.digits()
        return _split(X, y, test_size, seed, "digits (8x8)")
    path = Path(spec)
    if is_array_file(spec):
        whole = read_array_file(path, labels=True, target_column=target_column)
        if whole.y.ndim != 1:
            raise ValueError(
                f"--data {spec!r} holds real-valued targets of shape {whole.y.shape}: "
                "training here needs class labels (integers, one per row)"
            )
        return _split(whole.X, whole.y, test_size, seed, whole.source)
    if path.is_dir():
        try:
            train = datasets.mnist(path, "train")
        except FileNotFoundError:
            # only the 10k test set at hand (as under ../shared): train on its first part
            X, y = datasets.mnist(path, "test")
            parts = datasets.train_test_split(X, y, test_size=test_size)
            return _parts(parts, f"MNIST test set at {path}, last {test_size:g} held out")
        return _parts((*train, *datasets.mnist(path, "test")), f"MNIST at {path}")
    return _parts(
        (*datasets.mnist(path, "train"), *datasets.mnist(path, "test")), f"MNIST pickle {path}"
    )


def read_examples(
    spec: str,
    *,
    split: str | None,
    test_size: float,
    seed: int,
    labels: bool,
    target_column: int | None = None,
) -> Examples:
    """The examples a saved model is used on: all the rows of an array file, else the
    `split` part (by default the test part) of `read_splits`, the split train made."""
    if is_array_file(spec):
        if split is not None:
            raise ValueError(
                f"--split applies to the digits and MNIST, not to {spec!r}: "
                "an array file is read whole"
            )
        return read_array_file(Path(spec), labels=labels, target_column=target_column)
    train, test = read_splits(spec, test_size, seed, target_column)
    return train if split == "train" else test


def read_array_file(path: Path, *, labels: bool, target_column: int | None = None) -> Examples:
    """The examples in a .npy, .npz or .csv file (the module's docstring says what each
    holds); y when `labels` (FileFormatError if the file has none), else None, a CSV's
    target_column then left out of the features when one is named."""
    suffix = path.suffix.lower()
    expected = ARRAY_FILES[suffix]
    if target_column is not None and suffix != ".csv":
        raise ValueError(f"--target-column applies to a .csv file, not to {str(path)!r}")
    with reading(path, expected):
        if suffix == ".npy":
            X, y = _read_npy(path), None
        elif suffix == ".npz":
            X, y = _read_npz(path)
        else:
            X, y = _read_csv(path), None  # its columns are parted below
        if X.ndim != 2 or X.dtype.kind not in "biuf":
            raise ValueError(f"its features are of shape {X.shape} and dtype {X.dtype}")
        if X.shape[0] == 0:
            raise ValueError("it holds no rows")
        if y is not None and y.shape[:1] != X.shape[:1]:
            raise ValueError(f"{y.shape[0] if y.ndim else 0} labels for {X.shape[0]} rows")
    if suffix == ".csv" and (labels or target_column is not None):
        X, y = _target_column(X, -1 if target_column is None else target_column, path)
    if labels and y is None:
        raise FileFormatError(path, "labelled data", "it holds features only: " + LABELLED)
    return Examples(X, y if labels else None, str(path))


def _split(X: np.ndarray, y: np.ndarray, test_size: float, seed: int, source: str):
    parts = datasets.train_test_split(X, y, test_size=test_size, shuffle=True, seed=seed)
    return _parts(parts, f"{source}, shuffled split with seed {seed}")


def _parts(parts: tuple[np.ndarray, ...], source: str) -> tuple[Examples, Examples]:
    X_train, y_train, X_test, y_test = parts
    return Examples(X_train, y_train, source, "train"), Examples(X_test, y_test, source, "test")


def _read_npy(path: Path) -> np.ndarray:
    # memory-mapped first: a header declaring more than the file holds fails before any
    # allocation; the copy is then what the file holds
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if not isinstance(array, np.ndarray):
        raise ValueError("it is an archive of several arrays (an .npz file?), not one array")
    return np.array(array)


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    with zipfile.ZipFile(path) as archive:
        names = [name for name in ("X", "y") if f"{name}.npy" in archive.namelist()]
        if "X" not in names:
            raise ValueError("it has no array X")
        for name in names:
            # each member's header checked against its data before np.load allocates
            check_stored_array(archive, name, kinds="biuf")
    with np.load(path, allow_pickle=False) as data:
        return data["X"], data["y"] if "y" in names else None


def _read_csv(path: Path) -> np.ndarray:
    # utf-8-sig: a spreadsheet's byte-order mark is no part of the first field
    with open(path, encoding="utf-8-sig") as file:
        first = file.readline()
    header = not _numbers(first)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "input contained no data": said below
        try:
            table = np.loadtxt(
                path,
                delimiter=",",
                quotechar='"',
                skiprows=int(header),
                ndmin=2,
                encoding="utf-8-sig",
            )
        except ValueError as error:  # without NumPy's advice (usecols) to the programmer
            raise ValueError(str(error).split("; use `usecols`")[0]) from None
    if header and table.shape[0] == 0:
        # one line that is not numbers: a header over nothing, or numbers not comma-separated
        raise ValueError(f"it holds no rows of comma-separated numbers, only {first.strip()!r}")
    return table


def _target_column(table: np.ndarray, column: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(the other columns, the column's labels): whole numbers are class labels, anything
    else a real-valued target per row."""
    if not -table.shape[1] <= column < table.shape[1]:
        raise ValueError(f"--target-column {column}: {path} has {table.shape[1]} columns")
    if table.shape[1] == 1:
        raise ValueError(f"{path} has 1 column: its labels, and no features beside them")
    y = table[:, column]
    # whole numbers a float64 holds exactly (|y| < 2**53) are labels; a cast of any larger
    # one to int64 would overflow into another label
    whole = np.array_equal(y, np.round(y)) and bool((np.abs(y) < 2**53).all())
    labels = y.astype(np.int64) if whole else y[:, None]
    return np.delete(table, column, axis=1), labels


def _numbers(line: str) -> bool:
    """Whether a CSV line is all numbers, quoted or not (else it is taken as a header)."""
    try:
        [float(field) for field in next(csv.reader([line]), [""])]
    except ValueError:
        return False
    return True
