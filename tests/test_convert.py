"""PyTorch and ONNX: the same outputs as gpunet's forward, on every activation and dtype."""

import numpy as np
import pytest
from conftest import seeded_rng

import gpunet
from gpunet.core.activations import ACTIVATIONS

TOLERANCE = {"float32": 1e-6, "float64": 1e-12}
CASES = [
    (hidden, output) for hidden in ACTIVATIONS if hidden != "softmax" for output in ACTIVATIONS
]


def network(hidden, output, dtype):
    return gpunet.Network(
        [6, 5, 4, 3], [hidden, hidden, output], backend="numpy", dtype=dtype, seed=3
    )


def inputs(dtype, *key):
    return seeded_rng("convert", *key).standard_normal((9, 6)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("hidden", "output"), CASES)
def test_to_torch_and_back_give_gpunets_outputs(hidden, output, dtype):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    net, X = network(hidden, output, dtype), inputs(dtype, hidden, output)
    module = net.to_torch()
    with torch.no_grad():
        theirs = module(torch.from_numpy(X)).numpy()
    assert theirs.dtype == np.dtype(dtype)
    np.testing.assert_allclose(theirs, net.forward(X), rtol=0, atol=TOLERANCE[dtype])
    back = gpunet.from_torch(module, backend="numpy")
    assert back.activation_names == net.activation_names and back.dtype == net.dtype
    np.testing.assert_array_equal(back.forward(X), net.forward(X))


def test_state_dict_names_are_linears_between_activations():
    pytest.importorskip("torch", reason="PyTorch is not installed")
    net = gpunet.Network([4, 3, 2], ["relu", "identity"], backend="numpy", seed=0)
    state = net.to_torch().state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    np.testing.assert_array_equal(state["0.weight"].numpy(), net.weights[0])  # (n_1, n_0)


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda nn: nn.Linear(3, 2), "Sequential"),
        (lambda nn: nn.Sequential(nn.ReLU(), nn.Linear(3, 2)), "before the first Linear"),
        (lambda nn: nn.Sequential(nn.Linear(3, 2, bias=False)), "without bias"),
        (lambda nn: nn.Sequential(nn.Linear(3, 2), nn.Linear(3, 2)), "takes 3 inputs, not 2"),
        (lambda nn: nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Tanh()), "second activation"),
        (lambda nn: nn.Sequential(nn.Linear(3, 2), nn.ELU()), "ELU has no gpunet activation"),
        (lambda nn: nn.Sequential(nn.Linear(3, 2), nn.LeakyReLU(0.2)), "slope 0.01"),
        (lambda nn: nn.Sequential(nn.Linear(3, 2), nn.GELU("tanh")), "approximate='none'"),
        (lambda nn: nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=0)), "dim=1"),
        (lambda nn: nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2).double()), "mixes dtypes"),
        (lambda nn: nn.Sequential(), "no Linear"),
    ],
)
def test_from_torch_refuses_what_gpunet_cannot_hold(build, pattern):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    with pytest.raises(TypeError, match=pattern):
        gpunet.from_torch(build(torch.nn), backend="numpy")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("hidden", "output"), CASES)
def test_onnx_export_runs_in_onnxruntime_with_gpunets_outputs(tmp_path, hidden, output, dtype):
    pytest.importorskip("onnx", reason="onnx is not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    net, X = network(hidden, output, dtype), inputs(dtype, "onnx", hidden, output)
    path = tmp_path / "net.onnx"
    net.to_onnx(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (theirs,) = session.run(None, {"X": X})
    assert theirs.dtype == np.dtype(dtype)
    # onnxruntime has no double GELU or erf: a float64 export computes GELU in float32
    single = "gelu" in (hidden, output)
    tolerance = TOLERANCE["float32" if single else dtype]
    np.testing.assert_allclose(theirs, net.forward(X), rtol=0, atol=tolerance)
