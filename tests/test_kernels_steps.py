"""The optimizer kernels, the grid-stride loops, the checks before each launch, and whole
networks trained on the CuPy backend with its kernels run on the host (host_kernels.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_gradients_match, assert_parity, net_pair, parity_data, valid_pairs
from host_kernels import assert_close, simulated_backend, split_name

import gpunet
from gpunet.core.activations import ACTIVATIONS
from gpunet.core.backends import NumpyBackend, kernels
from gpunet.core.costs import COSTS
from gpunet.core.optimizers import SGD, Adam, AdamStep, SGDStep

DTYPES = (np.float32, np.float64)
NUMPY = NumpyBackend()


def random(shape, dtype, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def poisoned(shape, dtype):
    return np.full(shape, np.nan, dtype)


SGD_CASES = [
    dict(lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0),
    dict(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    dict(lr=0.3, momentum=0.0, nesterov=False, weight_decay=0.01),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SGD_CASES)
@pytest.mark.parametrize("size, n_decayed", [(700, 500), (10, 0), (1, 1)])
def test_sgd_update_kernel(host, case, dtype, size, n_decayed):
    ops = simulated_backend(host)
    params = {"numpy": random(size, dtype, 6), "kernel": None}
    params["kernel"] = params["numpy"].copy()
    velocity = {k: (np.zeros(size, dtype) if case["momentum"] else None) for k in params}
    for step in range(3):
        grads = random(size, dtype, 10 + step)
        kept = grads.copy()
        for key, backend in (("numpy", NUMPY), ("kernel", ops)):
            backend.sgd_update(
                params[key],
                grads.copy() if key == "numpy" else grads,
                velocity[key],
                SGDStep(**case, n_decayed=n_decayed),
            )
        np.testing.assert_array_equal(grads, kept)  # the kernel leaves grads alone
        assert_close(params["kernel"], params["numpy"], dtype, 1.0, f"params, step {step}")
        if case["momentum"]:
            assert_close(velocity["kernel"], velocity["numpy"], dtype, 4.0, "velocity")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("size, n_decayed", [(700, 500), (3, 3)])
def test_adam_update_kernel(host, dtype, weight_decay, size, n_decayed):
    ops = simulated_backend(host)
    params = {"numpy": random(size, dtype, 6)}
    params["kernel"] = params["numpy"].copy()
    moments = {k: (np.zeros(size, dtype), np.zeros(size, dtype)) for k in params}
    for step in range(1, 4):
        grads = random(size, dtype, 10 + step)
        for key, backend in (("numpy", NUMPY), ("kernel", ops)):
            rule = AdamStep(1e-2, 0.9, 0.999, 1e-8, step, weight_decay, n_decayed)
            backend.adam_update(params[key], grads.copy(), *moments[key], rule)
        assert_close(params["kernel"], params["numpy"], dtype, 1.0, f"params, step {step}")
        for mine, theirs in zip(moments["kernel"], moments["numpy"]):
            assert_close(mine, theirs, dtype, 4.0, "moments")


@pytest.mark.parametrize("threads", [1, 2, 3, 7, 10, 11, 64, 255, 256, 257, 1000])
def test_grid_stride_loops_cover_each_element_once(host, threads):
    # the row cursor of bias_activation and the fused deltas, for every stride vs m:
    # identity with bias 0 on index-valued Z returns each index exactly once
    ops = simulated_backend(host)
    host.threads = threads
    try:
        for n, m in ((1, 1), (3, 1), (1, 5), (7, 10), (10, 7), (5, 256), (2, 300)):
            z = np.arange(n * m, dtype=np.float64).reshape(n, m)
            a = poisoned((n, m), np.float64)
            b = np.arange(n, dtype=np.float64) * 1000.0
            ops.bias_activation(ACTIVATIONS["identity"], z, b, a)
            expected = np.arange(n * m).reshape(n, m) + 1000.0 * np.arange(n)[:, None]
            np.testing.assert_array_equal(a, expected)
            y = np.arange(n * m, dtype=np.float64).reshape(m, n)  # (m, n) target rows
            out = poisoned((n, m), np.float64)
            COSTS["log_likelihood"].delta(ops, ACTIVATIONS["softmax"], a, a, y.T, out)
            np.testing.assert_array_equal(out, (a - y.T) * (1.0 / m))
    finally:
        host.threads = None


@pytest.mark.parametrize("warps", [1, 2, 3, 8, 9])
def test_warp_loops_cover_each_row_and_column_once(host, warps):
    # a row sum of index-valued rows is exact in float64: each row summed exactly once, by
    # one warp, however many rows each warp takes
    ops = simulated_backend(host)
    host.threads = warps * kernels.WARP
    try:
        for n, m in ((1, 1), (1, 40), (9, 3), (17, 64), (40, 33)):
            delta = np.arange(n * m, dtype=np.float64).reshape(n, m)
            out = poisoned(n, np.float64)
            ops.bias_gradient(delta, out)
            np.testing.assert_array_equal(out, delta.sum(axis=1))
            z = np.zeros((n + 32, m))  # a uniform softmax: every entry exactly 1/(n + 32)
            a = poisoned(z.shape, np.float64)
            ops.bias_activation(ACTIVATIONS["softmax"], z, np.zeros(n + 32), a)
            np.testing.assert_array_equal(a, np.full(z.shape, 1.0 / (n + 32)))
    finally:
        host.threads = None


def test_kernel_checks_raise(host):
    ops = simulated_backend(host)
    launched = list(host.launched)
    g = ACTIVATIONS["sigmoid"]
    z = random((4, 6), np.float32)
    b = random(4, np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.bias_activation(g, np.asfortranarray(z), b, np.empty_like(z))
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.activation_delta(g, z[:, ::2], z[:, ::2], z[:, ::2], np.empty((4, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.activation_delta(ACTIVATIONS["softmax"], z.T, z.T, z.T, np.empty((6, 4), np.float32))
    with pytest.raises(TypeError, match="one dtype"):
        ops.bias_activation(g, z, b.astype(np.float64), np.empty_like(z))
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.bias_activation(g, z.astype(np.float16), b.astype(np.float16), z.astype(np.float16))
    with pytest.raises(ValueError, match="shape"):
        ops.bias_activation(g, z, random(5, np.float32), np.empty_like(z))
    with pytest.raises(ValueError, match="shape"):
        ops.activation_delta(g, z, z, z, np.empty((6, 4), np.float32))
    with pytest.raises(ValueError, match="shape"):
        y = random((5, 4), np.float32)
        COSTS["cross_entropy"].delta(ops, g, z, z, y.T, np.empty_like(z))
    with pytest.raises(ValueError, match="shape"):
        ops.bias_gradient(z, np.empty(5, np.float32))
    with pytest.raises(TypeError, match="one dtype"):
        ops.bias_gradient(z, np.empty(4, np.float64))
    params = random(10, np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.sgd_update(params, random(20, np.float32)[::2], None, SGDStep(0.1, 0.0, False, 0.0, 0))
    with pytest.raises(TypeError, match="one dtype"):
        rule = AdamStep(0.1, 0.9, 0.99, 1e-8, 1, 0.0, 0)
        ops.adam_update(params, params.copy(), np.zeros(10), np.zeros(10), rule)
    with pytest.raises(ValueError, match="n_decayed"):
        ops.sgd_update(params, params.copy(), None, SGDStep(0.1, 0.0, False, 0.1, 11))
    assert host.launched == launched  # every check runs before any launch


# --- whole networks on the simulated backend ----------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("output, cost", valid_pairs())
def test_network_parity_on_simulated_kernels(host, output, cost, dtype):
    sizes = [5, 6, 7, 4]
    activations = ["tanh", "gelu", output]
    X, labels = parity_data(sizes, 37)
    reference, simulated = net_pair(simulated_backend(host), sizes, activations, dtype)
    assert_parity(simulated.forward(X), reference.forward(X), dtype, "forward")
    assert_parity(simulated.cost(X, labels, cost), reference.cost(X, labels, cost), dtype, "cost")
    assert_gradients_match(simulated, reference, X, labels, cost, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("hidden", [*kernels.ACTIVATION_IDS, "softmax"])
def test_hidden_layer_parity_on_simulated_kernels(host, hidden, dtype):
    sizes = [4, 9, 3]
    X, labels = parity_data(sizes, 300)  # more columns than the simulated grid's threads
    reference, simulated = net_pair(simulated_backend(host), sizes, [hidden, "softmax"], dtype)
    assert_parity(simulated.forward(X), reference.forward(X), dtype, "forward")
    assert_gradients_match(simulated, reference, X, labels, None, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_wide_softmax_parity_on_simulated_kernels(host, dtype):
    # an output layer of more classes than a warp has lanes: the warp-per-column kernels
    sizes = [6, 8, 50]
    X, labels = parity_data(sizes, 20)
    reference, simulated = net_pair(simulated_backend(host), sizes, ["relu", "softmax"], dtype)
    host.launched.clear()
    assert_parity(simulated.forward(X), reference.forward(X), dtype, "forward")
    assert "softmax_forward_warp" in {split_name(n)[0] for n in host.launched}
    assert_gradients_match(simulated, reference, X, labels, None, dtype)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_training_parity_on_simulated_kernels(host, optimizer):
    sizes = [6, 8, 3]
    X, labels = parity_data(sizes, 60)
    reference, simulated = net_pair(simulated_backend(host), sizes, ["relu", "softmax"], "float64")
    make = {
        "sgd": lambda: SGD(0.3, weight_decay=1e-3),
        "momentum": lambda: SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        "adam": lambda: Adam(1e-2, weight_decay=1e-3),
    }[optimizer]
    histories = [
        net.fit(X, labels, epochs=3, batch_size=16, optimizer=make(), seed=1, progress=False)
        for net in (reference, simulated)
    ]
    np.testing.assert_allclose(histories[1]["cost"], histories[0]["cost"], rtol=1e-9)
    for mine, theirs in zip(simulated.get_params(), reference.get_params()):
        for p_mine, p_theirs in zip(mine, theirs):
            assert_parity(p_mine, p_theirs, "float64", "parameters after training")


def test_gradcheck_on_simulated_kernels(host):
    sizes = [3, 4, 2]
    X, labels = parity_data(sizes, 5)
    net = gpunet.Network(sizes, ["gelu", "sigmoid"], backend=simulated_backend(host), seed=3)
    assert gpunet.gradcheck(net, X, labels) < 1e-6


@pytest.mark.parametrize(
    "sizes, activations",
    [([5, 1], ["sigmoid"]), ([1, 1], ["identity"]), ([4, 1, 1], ["tanh", "sigmoid"])],
)
@pytest.mark.parametrize("batch", [1, 16])
def test_no_single_element_gemm_reaches_cupy(host, sizes, activations, batch):
    # CuPy computes a 1x1 matrix product (a single-output bias gradient by GEMV, BP4 from
    # one unit to one, a forward pass of one example on one output) by a path that
    # allocates on every call; the backend sends those to its row_dot kernel instead, so
    # that a warm training step allocates nothing (tests/test_gpu.py counts on a device)
    backend = simulated_backend(host)
    net = gpunet.Network(sizes, activations, backend=backend, dtype="float64", seed=0)
    reference = gpunet.Network(sizes, activations, backend="numpy", dtype="float64", seed=0)
    X, labels = parity_data(sizes, batch)
    targets = labels[:, None].astype(np.float64) % 2
    for model in (net, reference):
        optimizer = SGD(0.1, momentum=0.9)
        ws = model.workspace(batch)
        ws.x[...] = X
        ws.y[...] = targets
        cost = model.cost_function("quadratic")
        for _ in range(2):
            model.backpropagate(ws.x, ws.y, ws, cost)
            optimizer.step(model.backend, model.params, model.grads, model.n_weights)
    assert 1 not in backend.xp.products, backend.xp.products
    assert_parity(net.params, reference.params, "float64", "parameters after two steps")
