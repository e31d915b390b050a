"""The CuPy backend on a CUDA device, against the NumPy backend.

Every test here needs a usable GPU and is skipped elsewhere with the reason from
`cupy_unavailable()`. The CPU-side checks of the same kernels (compiled for the host,
run thread by thread) are in tests/test_kernels.py.

Parity tolerances: float64 1e-10 and float32 1e-4, relative to each array's largest
entry (a gradient entry that cancels to near zero is held to its array's scale).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import (
    PARITY_RTOL,
    assert_gradients_match,
    assert_parity,
    net_pair,
    parity_data,
    to_host,
    valid_pairs,
)

import gpunet
from gpunet import datasets
from gpunet.core.activations import ACTIVATIONS
from gpunet.core.backends import CupyBackend, NumpyBackend, kernels
from gpunet.core.backends.cupy_backend import cupy_unavailable
from gpunet.core.costs import COSTS
from gpunet.core.optimizers import SGD, Adam

WHY_NOT = cupy_unavailable()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(WHY_NOT is not None, reason=f"needs a CUDA device: {WHY_NOT}"),
]

BACKENDS = ("cupy",)  # the device backends checked against NumPy
DTYPES = ("float64", "float32")
ELEMENTWISE = tuple(kernels.ACTIVATION_IDS)
NUMPY = NumpyBackend()


@pytest.fixture(scope="module")
def cupy():
    import cupy

    return cupy


@pytest.fixture(scope="module")
def gpu() -> CupyBackend:
    return CupyBackend()


# --- the module and the device's settings ---------------------------------------------


def test_every_name_expression_compiles_with_nvrtc():
    for name in kernels.name_expressions():
        kernel = kernels.function(name)
        assert kernel.attributes["max_threads_per_block"] >= kernels.BLOCK, name


def test_tf32_is_off(cupy, gpu):
    # CuPy takes TF32 for float32 GEMMs only when CUPY_TF32 asks for it
    assert os.environ.get("CUPY_TF32", "0") in ("", "0"), "unset CUPY_TF32 for these tests"
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 2048)).astype(np.float32)
    b = rng.standard_normal((2048, 256)).astype(np.float32)
    out = cupy.empty((256, 256), np.float32)
    gpu.matmul(cupy.array(a), cupy.array(b), out=out)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    error = np.abs(to_host(out) - exact).max() / np.abs(exact).max()
    assert error < 1e-5, f"float32 GEMM error {error:.1e}: TF32 (about 1e-3) is on"


# --- parity: outputs, costs and gradients -------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output, cost", valid_pairs())
def test_parity_every_output_and_cost(backend, output, cost, dtype):
    sizes = [5, 16, 12, 4]
    X, labels = parity_data(sizes, 300)
    reference, device = net_pair(backend, sizes, ["tanh", "gelu", output], dtype)
    assert_parity(device.forward(X), reference.forward(X), dtype, "forward")
    np.testing.assert_allclose(
        device.cost(X, labels, cost), reference.cost(X, labels, cost), rtol=PARITY_RTOL[dtype]
    )
    assert_gradients_match(device, reference, X, labels, cost, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", [*ELEMENTWISE, "softmax"])
def test_parity_every_hidden_activation(backend, hidden, dtype):
    sizes = [6, 20, 3]
    X, labels = parity_data(sizes, 500)
    reference, device = net_pair(backend, sizes, [hidden, "sigmoid"], dtype)
    assert_parity(device.forward(X), reference.forward(X), dtype, "forward")
    assert_gradients_match(device, reference, X, labels, None, dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("output, cost", valid_pairs())
def test_gradcheck_float64(backend, output, cost):
    sizes = [4, 5, 3]
    X, labels = parity_data(sizes, 6)
    for hidden in ("tanh", "gelu", "softplus", "softmax"):
        net = gpunet.Network(sizes, [hidden, output], backend=backend, dtype="float64", seed=1)
        assert gpunet.gradcheck(net, X, labels, cost) < 1e-6, (hidden, output, cost)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_reaches_the_same_accuracy(backend, dtype, optimizer):
    X, y = datasets.digits()
    X_train, y_train, X_test, y_test = X[:1400], y[:1400], X[1400:], y[1400:]
    histories = []
    for name in ("numpy", backend):
        net = gpunet.Network(
            [64, 32, 10], ["sigmoid", "softmax"], backend=name, dtype=dtype, seed=0
        )
        opt = SGD(0.5, momentum=0.5) if optimizer == "sgd" else Adam(1e-2, weight_decay=1e-4)
        histories.append(
            net.fit(
                X_train,
                y_train,
                epochs=4,
                batch_size=32,
                optimizer=opt,
                seed=2,
                validation=(X_test, y_test),
                progress=False,
            )
        )
    reference, device = histories
    if dtype == "float64":  # the same path up to rounding
        np.testing.assert_allclose(device["cost"], reference["cost"], rtol=1e-8)
        tolerance = 2 / len(y_test)  # a borderline example or two may flip
    else:  # float32 drifts apart, within noise
        tolerance = 0.03
    for key in ("accuracy", "validation_accuracy"):
        assert abs(device[key][-1] - reference[key][-1]) <= tolerance, (key, device, reference)
    assert device["validation_accuracy"][-1] > 0.8


# --- no allocation once warm ---------------------------------------------------------------


def training_step(cupy, dtype, optimizer):
    """One step of fit()'s loop without the bookkeeping: backprop, then the optimizer."""
    X, y = datasets.digits()
    net = gpunet.Network(
        [64, 48, 32, 10], ["gelu", "relu", "softmax"], backend="cupy", dtype=dtype, seed=0
    )
    m = 128
    ws = net.workspace(m)
    ws.x[...] = cupy.array(X[:m], dtype=dtype)
    ws.y[...] = cupy.array(np.eye(10)[y[:m]], dtype=dtype)
    cost = net.cost_function(None)
    opt = {
        "sgd": SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
        "adam": Adam(1e-3, weight_decay=1e-4),
    }[optimizer]

    def step():
        net.backpropagate(ws.x, ws.y, ws, cost)
        opt.step(net.backend, net.params, net.grads, net.n_weights)

    return step


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_no_pool_growth_after_warm_up(cupy, dtype, optimizer):
    step = training_step(cupy, dtype, optimizer)
    for _ in range(3):
        step()
    cupy.cuda.Device().synchronize()
    pool = cupy.get_default_memory_pool()
    before = (pool.used_bytes(), pool.n_free_blocks(), pool.total_bytes())
    for _ in range(10):
        step()
    cupy.cuda.Device().synchronize()
    assert (pool.used_bytes(), pool.n_free_blocks(), pool.total_bytes()) == before


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_no_allocation_at_all_after_warm_up(cupy, dtype, optimizer):
    # stricter than the pool's totals: not even a temporary taken from the pool and
    # returned within the step (cupy.cuda.MemoryHook sees every pool malloc)
    class CountMallocs(cupy.cuda.MemoryHook):
        name = "gpunet_count_mallocs"

        def __init__(self):
            super().__init__()
            self.sizes = []

        def malloc_preprocess(self, **kwargs):
            self.sizes.append(kwargs.get("size"))

    step = training_step(cupy, dtype, optimizer)
    for _ in range(3):
        step()
    hook = CountMallocs()
    with hook:
        for _ in range(3):
            step()
    assert hook.sizes == [], f"{len(hook.sizes)} pool allocations in 3 steps: {hook.sizes[:10]}"


# --- each kernel: poisoned outputs, sizes beyond one grid ------------------------------------

# rtol, and atol in units of eps times a per-case scale (see tests/test_kernels.py)
KERNEL_RTOL = {"float32": 4e-6, "float64": 1e-12}


def assert_kernel_close(actual, expected, dtype, scale=0.0, what=""):
    actual, expected = to_host(actual).astype(np.float64), to_host(expected).astype(np.float64)
    info = np.finfo(dtype)
    atol = np.maximum(8 * info.eps * np.asarray(scale, dtype=np.float64), info.tiny)
    assert not np.isnan(actual).any() or np.isnan(expected).any(), f"{what}: NaN left"
    with np.errstate(invalid="ignore"):
        same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
        close = np.abs(actual - expected) <= KERNEL_RTOL[dtype] * np.abs(expected) + atol
    bad = ~(same | close)
    if bad.any():
        k = np.flatnonzero(bad)[:5]
        raise AssertionError(
            f"{what}: {bad.sum()} of {bad.size} entries differ: at {k}, "
            f"got {actual.ravel()[k]}, expected {expected.ravel()[k]}"
        )


def poisoned(cupy, shape, dtype):
    return cupy.full(shape, np.nan, dtype=dtype)


def random(shape, dtype, seed, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


@pytest.fixture(params=["device grid", "2 blocks"])
def kernel_backend(request):
    """The device backend at its own grid size, and capped at 2 blocks (many strides)."""
    backend = CupyBackend()
    if request.param == "2 blocks":
        backend._max_blocks = 2
    return backend


def big_shape(backend, rows):
    """(rows, m) with more elements than the grid has threads."""
    threads = backend._max_blocks * kernels.BLOCK
    return rows, max(3 * threads // rows + 7, 11)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [*ELEMENTWISE, "softmax"])
def test_bias_activation_kernel(cupy, kernel_backend, name, dtype):
    g = ACTIVATIONS[name]
    # softmax: one thread per column, so more columns than threads
    shape = big_shape(kernel_backend, 3 if name == "softmax" else 40)
    z = random(shape, dtype, 1, 3.0)
    b = random(shape[0], dtype, 2)
    expected_z = z.copy()
    expected_a = NUMPY.bias_activation(g, expected_z, b, np.empty_like(z))
    z_gpu, a_gpu = cupy.array(z), poisoned(cupy, shape, dtype)
    kernel_backend.bias_activation(g, z_gpu, cupy.array(b), a_gpu)
    scale = np.maximum(1.0, np.abs(expected_z))
    np.testing.assert_array_equal(to_host(z_gpu), expected_z)  # the same one addition
    assert_kernel_close(a_gpu, expected_a, dtype, scale, "a")
    shared = cupy.array(z)
    kernel_backend.bias_activation(g, shared, cupy.array(b), shared)
    assert_kernel_close(shared, expected_a, dtype, scale, "a in place")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [*ELEMENTWISE, "softmax"])
def test_activation_delta_kernel(cupy, kernel_backend, name, dtype):
    g = ACTIVATIONS[name]
    shape = big_shape(kernel_backend, 3 if name == "softmax" else 40)
    z = random(shape, dtype, 1, 3.0)
    a = g.forward(NUMPY, z, np.empty_like(z))
    grad = random(shape, dtype, 3)
    expected = NUMPY.activation_delta(g, grad, z, a, np.empty_like(z))
    scale = np.abs(grad) if name != "softmax" else np.abs(grad).max()
    out = poisoned(cupy, shape, dtype)
    kernel_backend.activation_delta(g, cupy.array(grad), cupy.array(z), cupy.array(a), out)
    assert_kernel_close(out, expected, dtype, scale, "delta")
    in_place = cupy.array(grad)
    kernel_backend.activation_delta(g, in_place, cupy.array(z), cupy.array(a), in_place)
    assert_kernel_close(in_place, expected, dtype, scale, "delta in place")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output, cost", valid_pairs())
def test_output_delta_kernel(cupy, kernel_backend, output, cost, dtype):
    g, c = ACTIVATIONS[output], COSTS[cost]
    shape = big_shape(kernel_backend, 3 if output == "softmax" else 10)
    n, m = shape
    z = random(shape, dtype, 1, 3.0)
    a = g.forward(NUMPY, z, np.empty_like(z))
    y = np.eye(n, dtype=dtype)[np.random.default_rng(4).integers(0, n, size=m)]  # (m, n)
    expected = c.delta(NUMPY, g, z, a, y.T, np.empty_like(z))
    out = poisoned(cupy, shape, dtype)
    y_gpu = cupy.array(y)
    c.delta(kernel_backend, g, cupy.array(z), cupy.array(a), y_gpu.T, out)
    assert_kernel_close(out, expected, dtype, 4.0 * np.abs(expected).max(), "delta")


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_gradient(cupy, kernel_backend, dtype):
    shape = big_shape(kernel_backend, 40)
    delta = random(shape, dtype, 5)
    expected = NUMPY.bias_gradient(delta, np.empty(shape[0], dtype))
    out = poisoned(cupy, shape[0], dtype)
    kernel_backend.bias_gradient(cupy.array(delta), out)
    # summation order differs (cuBLAS vs NumPy's pairwise sum): m ulp of the largest term
    assert_kernel_close(out, expected, dtype, 2.0 * shape[1], "bias gradient")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_update_kernel(cupy, kernel_backend, dtype, momentum, nesterov):
    size = 3 * kernel_backend._max_blocks * kernels.BLOCK + 5
    n_decayed = size // 2
    params = random(size, dtype, 6)
    params_gpu = cupy.array(params)
    velocity = np.zeros(size, dtype) if momentum else None
    velocity_gpu = None if velocity is None else cupy.array(velocity)
    for step in range(3):
        grads = random(size, dtype, 10 + step)
        NUMPY.sgd_update(params, grads.copy(), velocity, 0.1, momentum, nesterov, 1e-3, n_decayed)
        kernel_backend.sgd_update(
            params_gpu,
            cupy.array(grads),
            velocity_gpu,
            0.1,
            momentum,
            nesterov,
            1e-3,
            n_decayed,
        )
        assert_kernel_close(params_gpu, params, dtype, 1.0, f"params, step {step}")
        if momentum:
            assert_kernel_close(velocity_gpu, velocity, dtype, 4.0, "velocity")


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_update_kernel(cupy, kernel_backend, dtype):
    size = 3 * kernel_backend._max_blocks * kernels.BLOCK + 5
    n_decayed = size // 2
    params = random(size, dtype, 6)
    moments = (np.zeros(size, dtype), np.zeros(size, dtype))
    params_gpu = cupy.array(params)
    moments_gpu = tuple(cupy.array(x) for x in moments)
    for step in range(1, 4):
        grads = random(size, dtype, 10 + step)
        args = (1e-2, 0.9, 0.999, 1e-8, step, 1e-3, n_decayed)
        NUMPY.adam_update(params, grads.copy(), *moments, *args)
        kernel_backend.adam_update(params_gpu, cupy.array(grads), *moments_gpu, *args)
        # the step divides by sqrt(v) + eps: a few ulp of the step size in absolute terms
        assert_kernel_close(params_gpu, params, dtype, 4.0, f"params, step {step}")
        for mine, theirs in zip(moments_gpu, moments):
            assert_kernel_close(mine, theirs, dtype, 4.0, "moments")


# --- the checks before each launch ----------------------------------------------------------


def test_non_contiguous_input_is_rejected(cupy, gpu):
    g = ACTIVATIONS["sigmoid"]
    z = cupy.zeros((8, 10), np.float32)
    b = cupy.zeros(8, np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        gpu.bias_activation(g, cupy.asfortranarray(z), b, cupy.empty_like(z))
    with pytest.raises(ValueError, match="C-contiguous"):
        gpu.bias_activation(g, z, cupy.zeros(16, np.float32)[::2], z)
    with pytest.raises(ValueError, match="C-contiguous"):
        half = z[:, ::2]
        gpu.activation_delta(g, half, half, half, cupy.empty((8, 5), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        gpu.activation_delta(ACTIVATIONS["softmax"], z.T, z.T, z.T, cupy.empty((10, 8), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        y = cupy.zeros((10, 8), np.float32)  # (m, n) target rows; y.T is the (n, m) view
        out = cupy.empty((10, 8), np.float32).T  # (8, 10) but F-ordered
        COSTS["cross_entropy"].delta(gpu, g, z, z, y.T, out)
    params = cupy.zeros(10, np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        gpu.sgd_update(params, cupy.zeros(20, np.float32)[::2], None, 0.1, 0.0, False, 0.0, 0)


def test_mismatched_dtypes_and_host_arrays_are_rejected(cupy, gpu):
    g = ACTIVATIONS["tanh"]
    z = cupy.zeros((4, 6), np.float32)
    with pytest.raises(TypeError, match="one dtype"):
        gpu.bias_activation(g, z, cupy.zeros(4, np.float64), z)
    with pytest.raises(TypeError, match="float32 or float64"):
        gpu.bias_activation(
            g, z.astype(np.float16), cupy.zeros(4, np.float16), z.astype(np.float16)
        )
    with pytest.raises(TypeError, match="CuPy arrays"):
        gpu.bias_activation(g, np.zeros((4, 6), np.float32), np.zeros(4, np.float32), z)
