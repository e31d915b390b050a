"""Shared fixtures and helpers for the gpunet test suite.

Everything here is computed independently of gpunet's internals: reference forward passes
and costs are written out with plain NumPy formulas.
"""

from __future__ import annotations

import math
import signal
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared/data/mnist"


# --- fixtures ------------------------------------------------------------------------


def usable_backends() -> list[str]:
    """'numpy', and 'cupy' where a GPU is usable: the backends a backend-neutral test runs on."""
    from gpunet.core.backends import cupy_unavailable

    return ["numpy"] if cupy_unavailable() is not None else ["numpy", "cupy"]


@pytest.fixture(params=usable_backends())
def backend(request) -> str:
    """Each usable backend's name in turn: build with Network(..., backend=backend) and
    compare results through to_host(), so that the test passes on a GPU host too."""
    return request.param


def gpu_only() -> list:
    """The marks of a module that needs a CUDA device: `gpu`, and a skip saying why not."""
    from gpunet.core.backends import cupy_unavailable

    why_not = cupy_unavailable()
    return [
        pytest.mark.gpu,
        pytest.mark.skipif(why_not is not None, reason=f"needs a CUDA device: {why_not}"),
    ]


@pytest.fixture(scope="module")
def cupy():
    import cupy

    return cupy


@pytest.fixture(scope="module")
def gpu():
    """A CuPy backend (only in modules marked gpu_only())."""
    from gpunet.core.backends import CupyBackend

    return CupyBackend()


@pytest.fixture(scope="session")
def host(tmp_path_factory):
    """The CUDA kernels built for the host and run thread by thread (tests/host_kernels.py)."""
    import shutil

    from host_kernels import build

    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler (g++ or c++) on PATH for the host build of the kernels")
    return build(tmp_path_factory.mktemp("host_kernels"), compiler)


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


def classification_data(key, m=40, n_in=4, n_classes=3):
    """(X, labels): m seeded normal rows of n_in features and labels 0..n_classes − 1."""
    rng = seeded_rng(key)
    return rng.standard_normal((m, n_in)), rng.integers(0, n_classes, size=m)


def valid_pairs() -> list[tuple[str, str]]:
    """Every (output activation, cost) pair the library accepts."""
    from gpunet.core.activations import ACTIVATIONS
    from gpunet.core.costs import COSTS

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


# --- parity between backends (tests/test_gpu.py on a device, tests/test_kernels_host.py on
# the host-simulated kernels) -------------------------------------------------------------

PARITY_RTOL = {"float64": 1e-10, "float32": 1e-4}


def to_host(x) -> np.ndarray:
    """A NumPy copy of a CuPy array (`.get()`), or the NumPy array or scalar itself."""
    return np.asarray(x.get() if hasattr(x, "get") else x)


def assert_parity(actual, expected, dtype, what: str = "") -> None:
    # normwise: rtol relative to the array's largest entry, so that entries that cancel
    # to near zero (a sum of gradients) are held to the array's scale
    rtol = PARITY_RTOL[str(dtype)]
    actual, expected = to_host(actual), to_host(expected)
    assert actual.dtype == expected.dtype, what
    scale = max(float(np.abs(expected).max()), np.finfo(expected.dtype).tiny)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def parity_data(sizes, m: int, seed: int = 7):
    """m random rows for a network of `sizes`, with class labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, sizes[0]))
    labels = rng.integers(0, max(sizes[-1], 2), size=m)
    return X, labels


def net_pair(backend, sizes, activations, dtype, seed: int = 0):
    """The same network (same seed: same parameters) on NumPy and on `backend`."""
    import gpunet

    return [
        gpunet.Network(sizes, activations, backend=b, dtype=dtype, seed=seed)
        for b in ("numpy", backend)
    ]


def assert_gradients_match(mine, reference, X, labels, cost, dtype) -> None:
    """Every dC/dW^l and dC/db^l of `mine` against `reference`'s, on the same batch."""
    for kind, ours, theirs in zip(
        ("weights", "biases"),
        mine.gradients(X, labels, cost),
        reference.gradients(X, labels, cost),
    ):
        for layer, (g_ours, g_theirs) in enumerate(zip(ours, theirs)):
            assert_parity(g_ours, g_theirs, dtype, f"{kind}[{layer}] gradient")


def interruptible() -> None:
    """preexec_fn for a child that a test sends SIGINT: a shell starts background jobs with
    SIGINT ignored, and Python then keeps ignoring it, so the child restores the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
