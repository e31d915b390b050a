"""The CUDA kernels' math, run on the host (tests/host_kernels.py), against NumPy.

activations.cuh element by element on hard inputs; then every kernel through the CuPy
backend's own Python (checks, argument lists, the kernel it picks), its warp kernels with
their shuffles run lane by lane on threads, float kernels with denormals flushed as
CuPy's -ftz=true flushes them on the GPU (kernels.FLUSH_DENORMALS).

What this cannot check: CUDA's own math library (expf, erf, ... on the device differ
from glibc's by an ulp or two), NVRTC (tests/test_nvrtc.py) and real launches
(tests/test_gpu.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import valid_pairs
from host_kernels import assert_close, flushed, simulated_backend, split_name

from gpunet.core.activations import ACTIVATIONS
from gpunet.core.backends import NumpyBackend, kernels, launches
from gpunet.core.costs import COSTS

DTYPES = (np.float32, np.float64)
ELEMENTWISE = tuple(kernels.ACTIVATION_IDS)
NUMPY = NumpyBackend()


# --- activations.cuh against activations.py ----------------------------------------------


def test_constants_are_those_of_activations_py(host):
    from gpunet.core import activations

    assert host.lib.gpunet_constant(0) == activations.LEAKY_SLOPE
    assert host.lib.gpunet_constant(1) == activations._SQRT_HALF
    assert host.lib.gpunet_constant(2) == activations._INV_SQRT_2PI


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_source_matches_activations_py(host, name):
    from_output = host.lib.gpunet_from_output(kernels.ACTIVATION_IDS[name])
    assert from_output == int(ACTIVATIONS[name].derivative_from_output)


def hard_inputs(dtype) -> np.ndarray:
    info = np.finfo(dtype)
    special = [
        0.0, -0.0, 1e-8, -1e-8, info.tiny / 4, -info.tiny / 4, info.tiny, 1.0, -1.0,
        5.0, -5.0, 20.0, -20.0, 88.0, -88.0, 89.0, -89.0, 710.0, -710.0, 1000.0, -1000.0,
        np.inf, -np.inf, np.nan,
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    normals = np.concatenate([rng.standard_normal(400), 4 * rng.standard_normal(400)])
    return np.concatenate([special, normals]).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_math_matches_numpy(host, name, dtype):
    g = ACTIVATIONS[name]
    z = hard_inputs(dtype)
    # the reference sees what the flushing device sees: denormals in and out are zero
    z_seen = flushed(z)
    with np.errstate(all="ignore"):
        a_ref = flushed(g.forward(NUMPY, z_seen.copy(), np.empty_like(z)))
        ones = np.ones_like(z)
        derivative_ref = flushed(g.backward(NUMPY, ones, z_seen, a_ref, np.empty_like(z)))
    a = host.apply(name, "forward", z)
    assert a.dtype == dtype
    # gelu's z(1 + erf(z/√2))/2 cancels for z << 0: an absolute error of a few ulp of |z|
    finite_z = np.abs(np.nan_to_num(z, posinf=0.0, neginf=0.0))
    assert_close(a, a_ref, dtype, finite_z if name == "gelu" else 0.0, f"{name}(z)")
    # every g' here is O(1) and some are differences of O(1) terms: a few ulp of 1
    x = a_ref if g.derivative_from_output else z
    derivative = host.apply(name, "derivative", x)
    assert_close(derivative, derivative_ref, dtype, 1.0, f"{name}'(z)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_kinks_are_exact(host, dtype):
    z = np.array([0.0, -0.0], dtype)
    for name, slope in (("relu", 0.0), ("leaky_relu", 0.01)):
        a = host.apply(name, "forward", z)
        np.testing.assert_array_equal(a, [0.0, 0.0])
        np.testing.assert_array_equal(host.apply(name, "derivative", a), dtype(slope))
        reference = ACTIVATIONS[name].backward(NUMPY, np.ones_like(z), z, a, np.empty_like(z))
        np.testing.assert_array_equal(host.apply(name, "derivative", a), reference)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_saturates_without_overflow(host, dtype):
    z = np.array([-1000, -710, -88, 88, 710, 1000], dtype)
    a = host.apply("sigmoid", "forward", z)
    assert np.all(np.isfinite(a)) and np.all((a >= 0) & (a <= 1))
    assert a[0] == 0 and a[-1] == 1
    softplus = host.apply("softplus", "forward", z)
    np.testing.assert_array_equal(softplus[-3:], z[-3:])  # log1p(e^-z) vanishes beside z
    assert softplus[0] == 0


def test_denormals_flush_in_float32_only_as_decided(host):
    # NumPy keeps e^-88 (a float32 denormal) in sigmoid(-88); the kernels flush it to zero
    # as CuPy's -ftz=true does on the GPU (tests/test_gpu.py checks the device alike).
    # e^-87 is normal and kept; float64's denormal sigmoid(-709) = e^-709 is kept too.
    ops = simulated_backend(host)
    g = ACTIVATIONS["sigmoid"]
    for dtype, z_small, z_normal in ((np.float32, -88.0, -87.0), (np.float64, -709.0, -700.0)):
        z = np.array([[z_small, z_normal, 0.0]], dtype)
        b = np.zeros(1, dtype)
        expected = NUMPY.bias_activation(g, z.copy(), b, np.empty_like(z))
        assert 0 < expected[0, 0] < np.finfo(dtype).tiny  # NumPy: a denormal
        a = ops.bias_activation(g, z.copy(), b, np.empty_like(z))
        flush = kernels.FLUSH_DENORMALS[np.dtype(dtype)]
        if flush:
            assert a[0, 0] == 0.0, (dtype, a)
        else:  # a denormal has fewer digits: a few ulp of e^-709 are 1e-6 of it
            assert a[0, 0] > 0 and np.isclose(a[0, 0], expected[0, 0], rtol=1e-6, atol=0)
        assert_close(a[0, 1:], expected[0, 1:], dtype, 0.0, f"{dtype.__name__} normal")


# --- the kernels, run on the host ----------------------------------------------------------


def random(shape, dtype, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def poisoned(shape, dtype):
    return np.full(shape, np.nan, dtype)


# shapes bigger than the simulated grid (1 block: 256 threads, 8 warps) in elements,
# columns and rows, small ones where threads outnumber the work, and tall ones (more rows
# than the warp has lanes)
SHAPES = [(3, 5), (13, 50), (4, 300), (1, 1), (33, 9), (70, 40)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_bias_activation_kernel(host, name, dtype, shape):
    ops = simulated_backend(host)
    g = ACTIVATIONS[name]
    z = random(shape, dtype, 1, 3.0)
    b = random(shape[0], dtype, 2)
    expected_z = z.copy()
    expected_a = NUMPY.bias_activation(g, expected_z, b, np.empty_like(z))
    # separate output, poisoned
    z1, a1 = z.copy(), poisoned(shape, dtype)
    assert ops.bias_activation(g, z1, b, a1) is a1
    np.testing.assert_array_equal(z1, expected_z)  # the same one addition
    scale = np.maximum(1.0, np.abs(expected_z))  # gelu's cancellation for z << 0
    assert_close(a1, expected_a, dtype, scale, "a")
    # in place (a hidden layer's shared buffer)
    z2 = z.copy()
    ops.bias_activation(g, z2, b, z2)
    assert_close(z2, expected_a, dtype, scale, "a in place")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_delta_kernel(host, name, dtype, shape):
    ops = simulated_backend(host)
    g = ACTIVATIONS[name]
    z = random(shape, dtype, 1, 3.0)
    a = g.forward(NUMPY, z, np.empty_like(z))
    grad = random(shape, dtype, 3)
    expected = NUMPY.activation_delta(g, grad, z, a, np.empty_like(z))
    out = poisoned(shape, dtype)
    assert ops.activation_delta(g, grad, z, a, out) is out
    assert_close(out, expected, dtype, np.abs(grad))
    in_place = grad.copy()
    ops.activation_delta(g, in_place, z, a, in_place)
    assert_close(in_place, expected, dtype, np.abs(grad), "in place")
    if g.derivative_from_output:  # a hidden layer hands the shared Z/A buffer as both
        shared = grad.copy()
        ops.activation_delta(g, shared, a, a, shared)
        assert_close(shared, expected, dtype, np.abs(grad), "shared Z/A")


@pytest.fixture(params=["thread per column", "warp per column"])
def softmax_kernels(request, monkeypatch):
    """Either softmax kernel on every shape; the names of those the backend must launch."""
    warp = request.param == "warp per column"
    monkeypatch.setattr(launches, "SOFTMAX_WARP_ROWS", 0 if warp else 10**9)
    suffix = "_warp" if warp else ""
    return f"softmax_forward{suffix}", f"softmax_delta{suffix}"


@pytest.mark.parametrize("shape", [*SHAPES, (100, 3)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_kernels(host, softmax_kernels, dtype, shape):
    ops = simulated_backend(host)
    g = ACTIVATIONS["softmax"]
    z = random(shape, dtype, 1, 3.0)
    b = random(shape[0], dtype, 2)
    expected_z = z.copy()
    expected_a = NUMPY.bias_activation(g, expected_z, b, np.empty_like(z))
    z1, a1 = z.copy(), poisoned(shape, dtype)
    host.launched.clear()
    assert ops.bias_activation(g, z1, b, a1) is a1
    np.testing.assert_array_equal(z1, expected_z)
    assert_close(a1, expected_a, dtype, 1.0, "a")
    z2 = z.copy()
    ops.bias_activation(g, z2, b, z2)
    assert_close(z2, expected_a, dtype, 1.0, "a in place")
    grad = random(shape, dtype, 3)
    expected = NUMPY.activation_delta(g, grad, z, expected_a, np.empty_like(z))
    out = poisoned(shape, dtype)
    assert ops.activation_delta(g, grad, z, expected_a, out) is out
    scale = np.abs(grad).max() * max(1, shape[0] // 8)  # the sum's rounding grows with n
    assert_close(out, expected, dtype, scale, "delta")
    ops.activation_delta(g, grad, z, expected_a, grad)
    assert_close(grad, expected, dtype, scale, "delta in place")
    forward, delta = softmax_kernels
    assert [split_name(n)[0] for n in host.launched] == [forward, forward, delta, delta]


def test_softmax_kernel_follows_the_column_height(host):
    ops = simulated_backend(host)
    g = ACTIVATIONS["softmax"]
    for n, kernel in ((launches.SOFTMAX_WARP_ROWS, "softmax_forward"),
                      (launches.SOFTMAX_WARP_ROWS + 1, "softmax_forward_warp")):  # fmt: skip
        host.launched.clear()
        z = random((n, 3), np.float64, 1)
        ops.bias_activation(g, z, np.zeros(n), z)
        assert [split_name(name)[0] for name in host.launched] == [kernel]


def test_softmax_warp_kernel_propagates_nan_and_inf_like_numpy(host, softmax_kernels):
    ops = simulated_backend(host)
    g = ACTIVATIONS["softmax"]
    z = random((40, 4), np.float64, 1)
    z[0, 0] = np.nan  # the element every lane seeds its maximum with
    z[17, 1] = np.nan
    z[5, 2] = np.inf
    z[:, 3] = -np.inf
    b = np.zeros(40)
    with np.errstate(invalid="ignore"):
        expected = NUMPY.bias_activation(g, z.copy(), b, np.empty_like(z))
    a = ops.bias_activation(g, z.copy(), b, poisoned(z.shape, np.float64))
    np.testing.assert_array_equal(np.isnan(a), np.isnan(expected))


def targets_for(shape, dtype, seed=4):
    """One-hot targets: valid for every cost (in [0, 1], rows summing to 1)."""
    n, m = shape
    labels = np.random.default_rng(seed).integers(0, n, size=m)
    return np.eye(n, dtype=dtype)[labels]  # (m, n), the workspace's layout


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output, cost", valid_pairs())
def test_output_delta_kernel(host, output, cost, dtype, shape):
    ops = simulated_backend(host)
    g, c = ACTIVATIONS[output], COSTS[cost]
    z = random(shape, dtype, 1, 3.0)
    a = g.forward(NUMPY, z, np.empty_like(z))
    y = targets_for(shape, dtype)
    expected = c.delta(NUMPY, g, z, a, y.T, np.empty_like(z))
    out = poisoned(shape, dtype)
    assert c.delta(ops, g, z, a, y.T, out) is out
    assert_close(out, expected, dtype, 3.0 * np.abs(expected).max())
    # any target layout: a C-contiguous (n, m) target too
    out = poisoned(shape, dtype)
    c.delta(ops, g, z, a, np.ascontiguousarray(y.T), out)
    assert_close(out, expected, dtype, 3.0 * np.abs(expected).max(), "C-contiguous target")


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_output_deltas_launch_one_kernel(host, dtype):
    ops = simulated_backend(host)
    z = random((4, 9), dtype, 1)
    y = targets_for((4, 9), dtype)
    for output, cost in (("softmax", "log_likelihood"), ("sigmoid", "cross_entropy")):
        host.launched.clear()
        g = ACTIVATIONS[output]
        a = g.forward(NUMPY, z, np.empty_like(z))
        COSTS[cost].delta(ops, g, z, a, y.T, np.empty_like(z))
        assert [split_name(n)[0] for n in host.launched] == ["output_minus_target"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [*SHAPES, (2, 1000), (0, 4), (3, 0)])
def test_bias_gradient(host, dtype, shape):
    ops = simulated_backend(host)
    delta = random(shape, dtype, 5)
    out = poisoned(shape[0], dtype)
    expected = NUMPY.bias_gradient(delta, np.empty(shape[0], dtype))
    assert ops.bias_gradient(delta, out) is out
    assert_close(out, expected, dtype, 4.0 * shape[1])
    assert ops.xp.products == []  # a kernel, never CuPy's GEMV (1x1 for a single output)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 5, 33, 700])
def test_single_element_products_use_the_row_dot_kernel(host, dtype, k):
    # W^l of a layer from one unit to one (BP4), or a batch of one on a single output
    ops = simulated_backend(host)
    a = random((1, k), dtype, 1)
    b_rows = random((3, k), dtype, 2)  # b as the transposed view of a row-major buffer
    for b in (b_rows[1:2].T, np.ascontiguousarray(b_rows[1:2].T), b_rows[1]):
        out = poisoned((1, 1) if b.ndim == 2 else (1,), dtype)
        assert ops.matmul(a, b, out=out) is out
        assert_close(out, a @ b, dtype, 2.0 * k)
    assert ops.xp.products == []
    b = random((k, 2), dtype, 3)
    ops.matmul(a, b, out=np.empty((1, 2), dtype))  # anything larger goes to the GEMM
    assert ops.xp.products == [2]
