"""Inputs through DLPack: torch tensors (and any __dlpack__ array) go in without a copy."""

import numpy as np
import pytest

import gpunet
from gpunet.core.checks import from_dlpack

torch = pytest.importorskip("torch", reason="PyTorch is not installed")


def test_a_cpu_tensor_is_read_as_numpy_without_a_copy():
    tensor = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    view = from_dlpack("X", tensor)
    assert isinstance(view, np.ndarray)
    tensor[0, 0] = 42.0
    assert view[0, 0] == 42.0  # the same memory


def test_fit_forward_and_predict_take_tensors():
    X, y = gpunet.datasets.digits()
    net = gpunet.Network([64, 16, 10], "sigmoid", backend="numpy", seed=0)
    twin = gpunet.Network([64, 16, 10], "sigmoid", backend="numpy", seed=0)
    net.fit(
        torch.from_numpy(X[:100]),
        torch.from_numpy(y[:100]),
        epochs=1,
        batch_size=10,
        lr=0.5,
        seed=0,
        progress=False,
    )
    twin.fit(X[:100], y[:100], epochs=1, batch_size=10, lr=0.5, seed=0, progress=False)
    np.testing.assert_array_equal(net.forward(torch.from_numpy(X[:20])), twin.forward(X[:20]))
    np.testing.assert_array_equal(net.predict(torch.from_numpy(X[:20])), twin.predict(X[:20]))


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: torch.ones(2, 3, requires_grad=True), r"requires grad.*detach"),
        (lambda: torch.ones(2, 3, dtype=torch.bfloat16), "bfloat16"),
    ],
)
def test_tensors_gpunet_cannot_take_faithfully_are_refused(make, pattern):
    net = gpunet.Network([3, 2], "sigmoid", backend="numpy", seed=0)
    with pytest.raises(TypeError, match=pattern):
        net.forward(make())


def test_a_tensor_on_an_unknown_device_is_refused():
    class Elsewhere:
        def __dlpack__(self, **kwargs):
            raise AssertionError("never read")

        def __dlpack_device__(self):
            return (14, 0)  # kDLOneAPI

    with pytest.raises(TypeError, match="device type 14"):
        from_dlpack("X", Elsewhere())
