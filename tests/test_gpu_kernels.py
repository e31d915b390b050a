"""Each CuPy kernel on a CUDA device against the NumPy backend: poisoned outputs, sizes
beyond one grid (the occupancy-sized grid and a grid capped at 2 blocks), both softmax
kernels, the checks before each launch. Skipped without a usable GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import gpu_only, to_host, valid_pairs

from gpunet.core.activations import ACTIVATIONS
from gpunet.core.backends import CupyBackend, NumpyBackend, kernels, launches
from gpunet.core.backends.kernels import DeviceLauncher
from gpunet.core.costs import COSTS
from gpunet.core.optimizers import AdamStep, SGDStep

pytestmark = gpu_only()

DTYPES = ("float64", "float32")
ELEMENTWISE = tuple(kernels.ACTIVATION_IDS)
NUMPY = NumpyBackend()


# --- each kernel: poisoned outputs, sizes beyond one grid ------------------------------------

# rtol, and atol in units of eps times a per-case scale (see tests/host_kernels.py)
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
    """The device backend at its occupancy-sized grid, and capped at 2 blocks (many strides)."""
    return CupyBackend(DeviceLauncher(max_blocks=2 if request.param == "2 blocks" else None))


def grid_threads(backend, name: str) -> int:
    """Threads of the grid `backend` launches kernel `name` with, for large work."""
    blocks = backend.launcher.resident_blocks(name)
    if backend.launcher.max_blocks is not None:
        blocks = min(blocks, backend.launcher.max_blocks)
    return blocks * kernels.BLOCK


def big_shape(backend, name: str, rows: int = 40) -> tuple[int, int]:
    """An (n, m) shape with three times more work items than kernel `name`'s grid takes at
    once: elements for an elementwise kernel, columns for softmax's, rows for row_dot."""
    base = kernels.base_name(name)
    per_pass = grid_threads(backend, name) // (kernels.WARP if base in kernels.WARP_KERNELS else 1)
    if base == "row_dot":
        return 3 * per_pass + 7, rows
    if base.startswith("softmax"):
        return rows, 3 * per_pass + 7
    return rows, 3 * per_pass // rows + 7


def forward_kernel(name: str) -> str:
    """The kernel the backend runs for activation `name` at big_shape's default height."""
    return "softmax_forward<float>" if name == "softmax" else "bias_activation<float, 1>"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [*ELEMENTWISE, "softmax"])
def test_bias_activation_kernel(cupy, kernel_backend, name, dtype):
    g = ACTIVATIONS[name]
    shape = big_shape(kernel_backend, forward_kernel(name), 3 if name == "softmax" else 40)
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
    shape = big_shape(kernel_backend, forward_kernel(name), 3 if name == "softmax" else 40)
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
    shape = big_shape(kernel_backend, forward_kernel(output), 3 if output == "softmax" else 10)
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
    shape = big_shape(kernel_backend, "row_dot<float>")
    delta = random(shape, dtype, 5)
    expected = NUMPY.bias_gradient(delta, np.empty(shape[0], dtype))
    out = poisoned(cupy, shape[0], dtype)
    kernel_backend.bias_gradient(cupy.array(delta), out)
    # summation order differs (cuBLAS vs NumPy's pairwise sum): m ulp of the largest term
    assert_kernel_close(out, expected, dtype, 2.0 * shape[1], "bias gradient")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_update_kernel(cupy, kernel_backend, dtype, momentum, nesterov):
    size = 3 * grid_threads(kernel_backend, "sgd_update<float>") + 5
    n_decayed = size // 2
    params = random(size, dtype, 6)
    params_gpu = cupy.array(params)
    velocity = np.zeros(size, dtype) if momentum else None
    velocity_gpu = None if velocity is None else cupy.array(velocity)
    for step in range(3):
        grads = random(size, dtype, 10 + step)
        rule = SGDStep(0.1, momentum, nesterov, 1e-3, n_decayed)
        NUMPY.sgd_update(params, grads.copy(), velocity, rule)
        kernel_backend.sgd_update(params_gpu, cupy.array(grads), velocity_gpu, rule)
        assert_kernel_close(params_gpu, params, dtype, 1.0, f"params, step {step}")
        if momentum:
            assert_kernel_close(velocity_gpu, velocity, dtype, 4.0, "velocity")


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_update_kernel(cupy, kernel_backend, dtype):
    size = 3 * grid_threads(kernel_backend, "sgd_update<float>") + 5
    n_decayed = size // 2
    params = random(size, dtype, 6)
    moments = (np.zeros(size, dtype), np.zeros(size, dtype))
    params_gpu = cupy.array(params)
    moments_gpu = tuple(cupy.array(x) for x in moments)
    for step in range(1, 4):
        grads = random(size, dtype, 10 + step)
        rule = AdamStep(1e-2, 0.9, 0.999, 1e-8, step, 1e-3, n_decayed)
        NUMPY.adam_update(params, grads.copy(), *moments, rule)
        kernel_backend.adam_update(params_gpu, cupy.array(grads), *moments_gpu, rule)
        # the step divides by sqrt(v) + eps: a few ulp of the step size in absolute terms
        assert_kernel_close(params_gpu, params, dtype, 4.0, f"params, step {step}")
        for mine, theirs in zip(moments_gpu, moments):
            assert_kernel_close(mine, theirs, dtype, 4.0, "moments")


@pytest.fixture(params=["thread per column", "warp per column"])
def softmax_kernel(request, monkeypatch):
    """Either softmax kernel on any column height (the backend picks by height)."""
    warp = request.param == "warp per column"
    monkeypatch.setattr(launches, "SOFTMAX_WARP_ROWS", 0 if warp else 10**9)
    return "softmax_forward_warp<float>" if warp else "softmax_forward<float>"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [3, 33, 1000])
def test_softmax_kernels(cupy, kernel_backend, softmax_kernel, rows, dtype):
    g = ACTIVATIONS["softmax"]
    shape = (rows, min(big_shape(kernel_backend, softmax_kernel, rows)[1], 4_000_000 // rows))
    z = random(shape, dtype, 1, 3.0)
    b = random(rows, dtype, 2)
    expected_z = z.copy()
    expected_a = NUMPY.bias_activation(g, expected_z, b, np.empty_like(z))
    z_gpu, a_gpu = cupy.array(z), poisoned(cupy, shape, dtype)
    kernel_backend.bias_activation(g, z_gpu, cupy.array(b), a_gpu)
    np.testing.assert_array_equal(to_host(z_gpu), expected_z)
    assert_kernel_close(a_gpu, expected_a, dtype, 1.0, "a")
    grad = random(shape, dtype, 3)
    expected = NUMPY.activation_delta(g, grad, z, expected_a, np.empty_like(z))
    out = poisoned(cupy, shape, dtype)
    kernel_backend.activation_delta(g, cupy.array(grad), z_gpu, cupy.array(expected_a), out)
    scale = np.abs(grad).max() * max(1, rows // 8)  # the sum's rounding grows with n
    assert_kernel_close(out, expected, dtype, scale, "delta")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 33, 5000])
def test_single_element_products(cupy, gpu, dtype, k):
    a = random((1, k), dtype, 1)
    b = random((k, 1), dtype, 2)
    out = poisoned(cupy, (1, 1), dtype)
    assert gpu.matmul(cupy.array(a), cupy.array(b), out=out) is out
    assert_kernel_close(out, a @ b, dtype, 2.0 * k, "a @ b")


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
        rule = SGDStep(0.1, 0.0, False, 0.0, 0)
        gpu.sgd_update(params, cupy.zeros(20, np.float32)[::2], None, rule)


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
