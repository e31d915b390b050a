"""Shared fixtures and helpers for the gpunet test suite.

Everything here is computed independently of gpunet's internals: reference forward passes
and costs are written out with plain NumPy formulas.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared/data/mnist"


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture
def small_data():
    """Six examples with 3 features, integer labels for 2 classes and one-hot targets."""
    X = np.random.default_rng(12345).standard_normal((6, 3))
    y = np.array([0, 1, 1, 0, 1, 0])
    return X, y, np.eye(2)[y]


@pytest.fixture
def shared_mnist() -> Path:
    """The real MNIST directory shared between checkouts, or a skip saying where it was sought."""
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"real MNIST not available: no directory {SHARED_MNIST}")
    return SHARED_MNIST


# --- helpers -------------------------------------------------------------------------


def seeded_rng(*key: object) -> np.random.Generator:
    """A generator seeded from `key` deterministically (str hash() is salted per process)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def sigmoid(z):
    # σ(z) = (1 + tanh(z/2))/2: no overflow, exactly 0 and 1 far out
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def softmax_columns(z):
    shifted = z - z.max(axis=0)
    e = np.exp(shifted)
    return e / e.sum(axis=0)


_erf = np.vectorize(math.erf)

REFERENCE = {
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "identity": lambda z: np.array(z, dtype=np.float64),
    "softplus": lambda z: np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0.0),
    "gelu": lambda z: 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0))),
    "softmax": softmax_columns,
}


def reference_forward(weights, biases, activations, X):
    """A^L for rows X by the textbook loop Z = W A + b, A = g(Z), in float64. Returns (Z^L, A^L)
    as (n_L, m) column matrices."""
    a = np.asarray(X, dtype=np.float64).T
    z = a
    for w, b, name in zip(weights, biases, activations):
        z = np.asarray(w, np.float64) @ a + np.asarray(b, np.float64)[:, None]
        a = REFERENCE[name](z)
    return z, a


def reference_cost(name, output, z, a, y):
    """The batch-mean cost from the output layer's columns z, a = g(z) and target columns y."""
    m = a.shape[1]
    if name == "quadratic":
        return 0.5 * np.sum((a - y) ** 2) / m
    if name == "cross_entropy":
        # −[y ln σ(z) + (1−y) ln(1−σ(z))] = softplus(z) − y z, stable for any z
        return np.sum(np.logaddexp(0.0, z) - y * z) / m
    if name == "log_likelihood":
        if output == "softmax":  # ln softmax(z) = z − logsumexp(z)
            log_a = z - z.max(axis=0) - np.log(np.exp(z - z.max(axis=0)).sum(axis=0))
        else:  # sigmoid outputs: ln σ(z) = −softplus(−z)
            log_a = -np.logaddexp(0.0, -z)
        return -np.sum(y * log_a) / m
    raise AssertionError(name)


def all_arrays(pair) -> list:
    """[*weights, *biases] from a (weights, biases) pair such as get_params() or gradients()."""
    weights, biases = pair
    return [*weights, *biases]


def assert_params_equal(before, after) -> None:
    """Exact equality of two get_params() results."""
    (w0, b0), (w1, b1) = before, after
    assert len(w0) == len(w1) and len(b0) == len(b1)
    for x, y in zip(w0 + b0, w1 + b1):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def valid_pairs() -> list[tuple[str, str]]:
    """Every (output activation, cost) pair the library accepts."""
    from gpunet.activations import ACTIVATIONS
    from gpunet.costs import COSTS

    return [
        (output, cost)
        for output in ACTIVATIONS
        for cost, c in COSTS.items()
        if c.valid_outputs is None or output in c.valid_outputs
    ]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG signature and IHDR chunk; an AssertionError otherwise."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])
