"""The CuPy backend on a CUDA device, against the NumPy backend: whole networks, the
device's settings, allocations. tests/test_gpu_kernels.py checks each kernel alone.

Every test here needs a usable GPU and is skipped elsewhere with the reason from
`cupy_unavailable()`. The CPU-side checks of the same kernels (compiled for the host,
run thread by thread) are in tests/test_kernels_host.py and tests/test_kernels_steps.py;
tests/test_nvrtc.py compiles them with CuPy's NVRTC without a device.

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
    gpu_only,
    net_pair,
    parity_data,
    to_host,
    valid_pairs,
)

import gpunet
from gpunet import datasets
from gpunet.core.activations import ACTIVATIONS
from gpunet.core.backends import NumpyBackend, kernels
from gpunet.core.optimizers import SGD, Adam

pytestmark = gpu_only()

DEVICE = "cupy"  # the device backend checked against NumPy
DTYPES = ("float64", "float32")
ELEMENTWISE = tuple(kernels.ACTIVATION_IDS)
NUMPY = NumpyBackend()


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


def test_grid_is_sized_from_the_occupancy_api(cupy, gpu):
    sms = cupy.cuda.Device().attributes["MultiProcessorCount"]
    for name in kernels.name_expressions():
        kernel = kernels.function(name).kernel
        per_sm = cupy.cuda.driver.occupancyMaxActiveBlocksPerMultiprocessor(
            kernel.ptr, kernels.BLOCK, 0
        )
        assert per_sm >= 1, name
        assert gpu.launcher.resident_blocks(name) == per_sm * sms, name


def test_offline_compile_matches_the_loaded_module(cupy):
    # offline.py (CI's NVRTC check) reads the same registers the driver reports
    from gpunet.core.backends import offline

    arch = cupy.cuda.Device().compute_capability
    registers = offline.compile_module(arch).registers()
    for name in kernels.name_expressions():
        assert registers[name] == kernels.function(name).attributes["num_regs"], name


def test_denormals_flush_in_float32_only_as_decided(cupy, gpu):
    # CuPy compiles with -ftz=true: sigmoid(-88) = e^-88, a float32 denormal on NumPy, is
    # 0 on the device (kernels.FLUSH_DENORMALS); float64 keeps e^-709
    g = ACTIVATIONS["sigmoid"]
    for dtype, z_small in ((np.float32, -88.0), (np.float64, -709.0)):
        z = np.array([[z_small, 0.0]], dtype)
        b = np.zeros(1, dtype)
        expected = NUMPY.bias_activation(g, z.copy(), b, np.empty_like(z))
        assert 0 < expected[0, 0] < np.finfo(dtype).tiny
        out = cupy.empty_like(cupy.asarray(z))
        a = to_host(gpu.bias_activation(g, cupy.asarray(z), cupy.asarray(b), out))
        if kernels.FLUSH_DENORMALS[np.dtype(dtype)]:
            assert a[0, 0] == 0.0
        else:
            assert a[0, 0] > 0 and np.isclose(a[0, 0], expected[0, 0], rtol=1e-6, atol=0)


# --- parity: outputs, costs and gradients -------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output, cost", valid_pairs())
def test_parity_every_output_and_cost(output, cost, dtype):
    sizes = [5, 16, 12, 4]
    X, labels = parity_data(sizes, 300)
    reference, device = net_pair(DEVICE, sizes, ["tanh", "gelu", output], dtype)
    assert_parity(device.forward(X), reference.forward(X), dtype, "forward")
    np.testing.assert_allclose(
        device.cost(X, labels, cost), reference.cost(X, labels, cost), rtol=PARITY_RTOL[dtype]
    )
    assert_gradients_match(device, reference, X, labels, cost, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", [*ELEMENTWISE, "softmax"])
def test_parity_every_hidden_activation(hidden, dtype):
    sizes = [6, 20, 3]
    X, labels = parity_data(sizes, 500)
    reference, device = net_pair(DEVICE, sizes, [hidden, "sigmoid"], dtype)
    assert_parity(device.forward(X), reference.forward(X), dtype, "forward")
    assert_gradients_match(device, reference, X, labels, None, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_parity_wide_softmax_output(dtype):
    # more classes than a warp has lanes: the warp-per-column softmax kernels
    sizes = [20, 30, 1000]
    X, labels = parity_data(sizes, 64)
    reference, device = net_pair(DEVICE, sizes, ["relu", "softmax"], dtype)
    assert_parity(device.forward(X), reference.forward(X), dtype, "forward")
    assert_gradients_match(device, reference, X, labels, None, dtype)


@pytest.mark.parametrize("output, cost", valid_pairs())
def test_gradcheck_float64(backend, output, cost):
    # `backend` is conftest's fixture: every usable backend, NumPy too
    sizes = [4, 5, 3]
    X, labels = parity_data(sizes, 6)
    for hidden in ("tanh", "gelu", "softplus", "softmax"):
        net = gpunet.Network(sizes, [hidden, output], backend=backend, dtype="float64", seed=1)
        assert gpunet.gradcheck(net, X, labels, cost) < 1e-6, (hidden, output, cost)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_reaches_the_same_accuracy(dtype, optimizer):
    X, y = datasets.digits()
    X_train, y_train, X_test, y_test = X[:1400], y[:1400], X[1400:], y[1400:]
    histories = []
    for name in ("numpy", DEVICE):
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


# every layer width: a single output (CuPy's 1x1 GEMV for BP3), one unit to one (a 1x1
# GEMM for BP4), a batch of one, and softmax columns taller than a warp
LAYOUTS = {
    "10 classes": ([64, 48, 32, 10], ["gelu", "relu", "softmax"], 128),
    "one output": ([64, 16, 1], ["relu", "sigmoid"], 128),
    "one unit to one": ([64, 1, 1], ["tanh", "sigmoid"], 128),
    "batch of one": ([64, 16, 1], ["relu", "sigmoid"], 1),
    "1000 classes": ([64, 32, 1000], ["relu", "softmax"], 64),
}


def training_step(cupy, dtype, optimizer, layout="10 classes"):
    """One step of fit()'s loop without the bookkeeping: backprop, then the optimizer."""
    sizes, activations, m = LAYOUTS[layout]
    X, y = datasets.digits()
    net = gpunet.Network(sizes, activations, backend="cupy", dtype=dtype, seed=0)
    ws = net.workspace(m)
    ws.x[...] = cupy.array(X[:m], dtype=dtype)
    labels = y[:m] % max(sizes[-1], 2)
    targets = (labels[:, None] == 1) if sizes[-1] == 1 else np.eye(sizes[-1])[labels]
    ws.y[...] = cupy.array(targets, dtype=dtype)
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


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_no_allocation_at_all_after_warm_up(cupy, dtype, optimizer, layout):
    # stricter than the pool's totals: not even a temporary taken from the pool and
    # returned within the step (cupy.cuda.MemoryHook sees every pool malloc)
    class CountMallocs(cupy.cuda.MemoryHook):
        name = "gpunet_count_mallocs"

        def __init__(self):
            super().__init__()
            self.sizes = []

        def malloc_preprocess(self, **kwargs):
            self.sizes.append(kwargs.get("size"))

    step = training_step(cupy, dtype, optimizer, layout)
    for _ in range(3):
        step()
    hook = CountMallocs()
    with hook:
        for _ in range(3):
            step()
    assert hook.sizes == [], f"{len(hook.sizes)} pool allocations in 3 steps: {hook.sizes[:10]}"
