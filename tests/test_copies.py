"""Copies of a network (pickle, copy.deepcopy, joblib's read-only memory maps) still train."""

import copy
import pickle

import numpy as np
import pytest
from conftest import usable_backends

import gpunet


def trained_copy_changes(net, make_copy, backend):
    X, y = gpunet.datasets.digits()
    X, y = X[:200], y[:200]
    before = backend_numpy(net, net.forward(X))
    twin = make_copy(net)
    assert twin.weights[0].base is not None  # a view, as the original's
    np.testing.assert_array_equal(backend_numpy(twin, twin.forward(X)), before)
    twin.fit(X, y, epochs=2, batch_size=20, lr=0.5, seed=0, progress=False)
    after = backend_numpy(twin, twin.forward(X))
    assert np.abs(after - before).max() > 1e-3  # the copy learned
    np.testing.assert_array_equal(backend_numpy(net, net.forward(X)), before)  # not the original
    # the views still read the flat buffer that fit updated
    flat = np.concatenate([twin.backend.to_numpy(w).ravel() for w in twin.weights])
    np.testing.assert_array_equal(flat, twin.backend.to_numpy(twin.params[: twin.n_weights]))


def backend_numpy(net, array):
    return net.backend.to_numpy(array)


@pytest.mark.parametrize("backend", usable_backends())
@pytest.mark.parametrize(
    "make_copy",
    [copy.deepcopy, lambda net: pickle.loads(pickle.dumps(net))],
    ids=["deepcopy", "pickle"],
)
def test_a_copy_trains_and_leaves_the_original_alone(backend, make_copy):
    net = gpunet.Network([64, 16, 10], "sigmoid", backend=backend, seed=0)
    net.forward(np.zeros((3, 64)))  # a workspace exists: it must not travel
    trained_copy_changes(net, make_copy, backend)


def test_a_copy_keeps_what_identifies_the_network():
    net = gpunet.Network([5, 4, 3], ["tanh", "softmax"], backend="numpy", dtype="float64", seed=1)
    twin = pickle.loads(pickle.dumps(net))
    assert repr(twin) == repr(net)
    assert twin.backend_reason == net.backend_reason
    for a, b in zip([*twin.weights, *twin.biases], [*net.weights, *net.biases]):
        np.testing.assert_array_equal(a, b)


def test_read_only_memory_map_of_a_pickled_network_predicts_and_trains(tmp_path):
    # joblib hands large arrays to workers as read-only memory maps
    joblib = pytest.importorskip("joblib", reason="joblib is not installed")
    net = gpunet.Network([64, 30, 10], "sigmoid", backend="numpy", seed=0)
    path = tmp_path / "net.joblib"
    joblib.dump(net, path)
    loaded = joblib.load(path, mmap_mode="r")
    X, y = gpunet.datasets.digits()
    np.testing.assert_array_equal(loaded.predict(X[:50]), net.predict(X[:50]))
    loaded.fit(X[:100], y[:100], epochs=1, batch_size=10, lr=0.5, seed=0, progress=False)
    assert not np.array_equal(loaded.forward(X[:50]), net.forward(X[:50]))


def test_read_only_parameters_are_copied_in():
    net = gpunet.Network([3, 2], "sigmoid", backend="numpy", seed=0)
    state = net.__getstate__()
    state["params"].setflags(write=False)
    twin = gpunet.Network.__new__(gpunet.Network)
    twin.__setstate__(state)
    assert twin.params.flags.writeable
    twin.fit(
        np.ones((4, 3)), np.array([0, 1, 0, 1]), epochs=1, batch_size=2, lr=1.0, progress=False
    )
