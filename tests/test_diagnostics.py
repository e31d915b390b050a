"""Per-layer diagnostics: they match a direct NumPy computation and change nothing."""

import json

import numpy as np
import pytest
from conftest import REFERENCE, assert_params_equal, seeded_rng

import gpunet
from gpunet.core.backends.cupy_backend import cupy_unavailable
from gpunet.train.diagnostics import STATISTICS, TAIL, tail_count

DERIVATIVE = {
    "sigmoid": lambda a: a * (1 - a),
    "tanh": lambda a: 1 - a * a,
    "relu": lambda a: (a > 0).astype(float),
}


def reference_statistics(weights, biases, names, X, Y, lr, batch_size):
    """Plain-NumPy SGD over unshuffled batches (quadratic cost), with each step's statistics."""
    weights = [w.astype(np.float64) for w in weights]
    biases = [b.astype(np.float64) for b in biases]
    steps = []
    for start in range(0, len(X), batch_size):
        x, y = X[start : start + batch_size].T, Y[start : start + batch_size].T
        m = x.shape[1]
        activations = [x]
        for w, b, name in zip(weights, biases, names):
            activations.append(REFERENCE[name](w @ activations[-1] + b[:, None]))
        deltas = [(activations[-1] - y) / m * DERIVATIVE[names[-1]](activations[-1])]
        for l in range(len(weights) - 1, 0, -1):
            deltas.insert(0, (weights[l].T @ deltas[0]) * DERIVATIVE[names[l - 1]](activations[l]))
        grads = [d @ a.T for d, a in zip(deltas, activations[:-1])]
        saturation = []
        for name, a in zip(names, activations[1:]):
            if name == "relu":
                saturation.append(np.mean(np.all(a == 0, axis=1)))
            else:
                tanh_scale = 2 * a - 1 if name == "sigmoid" else a
                saturation.append(np.mean(np.abs(tanh_scale) >= TAIL))
        ratios = [lr * np.linalg.norm(g) / np.linalg.norm(w) for g, w in zip(grads, weights)]
        steps.append(
            {
                "delta_norm": [np.linalg.norm(d) for d in deltas],
                "gradient_norm": [np.linalg.norm(g) for g in grads],
                "update_ratio": ratios,
                "saturation": saturation,
            }
        )
        for w, b, g, d in zip(weights, biases, grads, deltas):
            w -= lr * g
            b -= lr * d.sum(axis=1)
    means = {key: np.mean([s[key] for s in steps], axis=0) for key in steps[0]}
    # delta's norm is the root mean square over the batches
    means["delta_norm"] = np.sqrt(np.mean([np.square(s["delta_norm"]) for s in steps], axis=0))
    means["weight_norm"] = [np.linalg.norm(w) for w in weights]
    return means


@pytest.mark.parametrize("batch_size", [8, 3])
def test_statistics_match_a_direct_numpy_computation(batch_size):
    rng = seeded_rng("diagnostics", batch_size)
    names = ["sigmoid", "relu", "tanh"]
    net = gpunet.Network([3, 5, 4, 2], names, backend="numpy", dtype="float64", seed=1)
    weights, biases = net.get_params()
    weights[0] *= 4.0  # saturates some sigmoid units
    weights[1][0], biases[1][0] = -np.abs(weights[1][0]), -5.0  # a relu unit that never fires
    net.set_params(weights, biases)
    X, Y = rng.standard_normal((8, 3)), rng.uniform(-0.9, 0.9, (8, 2))
    want = reference_statistics(weights, biases, names, X, Y, 0.3, batch_size)
    history = net.fit(
        X,
        Y,
        epochs=1,
        batch_size=batch_size,
        lr=0.3,
        cost="quadratic",
        shuffle=False,
        progress=False,
        diagnostics=True,
    )
    for key in STATISTICS:
        assert len(history[key]) == 1 and len(history[key][0]) == 3
        np.testing.assert_allclose(history[key][0], want[key], rtol=1e-10, err_msg=key)
    assert 0 < history["saturation"][0][0] < 1  # the checks above saw saturated units
    assert history["saturation"][0][1] >= 1 / 4  # and the dead relu unit


@pytest.mark.parametrize(
    "optimizer",
    [lambda: "sgd", lambda: gpunet.SGD(0.2, momentum=0.9, nesterov=True), lambda: gpunet.Adam()],
)
def test_recording_changes_no_parameter_and_no_result(optimizer):
    X, y = gpunet.datasets.digits()
    X, y, X_val, y_val = X[:300], y[:300], X[300:400], y[300:400]
    runs = []
    for diagnostics in (False, True):
        net = gpunet.Network([64, 16, 16, 10], ["tanh", "relu", "softmax"], backend="numpy", seed=3)
        opt = optimizer()
        history = net.fit(
            X,
            y,
            epochs=2,
            batch_size=32,
            optimizer=opt,
            lr=0.2 if opt == "sgd" else None,
            validation=(X_val, y_val),
            seed=5,
            progress=False,
            diagnostics=diagnostics,
        )
        runs.append((net.get_params(), history))
    (params_off, off), (params_on, on) = runs
    assert_params_equal(params_off, params_on)
    for key in ("cost", "accuracy", "validation_cost", "validation_accuracy"):
        assert off[key] == on[key]
    assert not set(STATISTICS) & set(off)
    assert set(STATISTICS) <= set(on)


def test_saturation_is_none_for_activations_without_tails_and_lists_have_one_entry_per_layer():
    X, y = gpunet.datasets.digits()
    net = gpunet.Network([64, 8, 8, 10], ["gelu", "sigmoid", "softmax"], backend="numpy", seed=0)
    history = net.fit(
        X[:100], y[:100], epochs=3, batch_size=25, lr=0.1, progress=False, diagnostics=True
    )
    assert len(history["saturation"]) == 3
    for epoch in history["saturation"]:
        assert epoch[0] is None and epoch[2] is None and 0 <= epoch[1] <= 1
    for key in STATISTICS:
        assert all(len(epoch) == 3 for epoch in history[key])
    assert all(v > 0 for epoch in history["update_ratio"] for v in epoch)


def test_deep_sigmoid_network_learns_slower_in_its_first_layer():
    X, y = gpunet.datasets.digits()
    net = gpunet.Network([64, 20, 20, 20, 10], "sigmoid", backend="numpy", seed=0)
    history = net.fit(X, y, epochs=1, batch_size=10, lr=0.1, progress=False, diagnostics=True)
    norms = history["gradient_norm"][0]
    assert norms[0] < norms[1] < norms[2] < norms[3]


def test_diagnostics_must_be_a_bool_and_nothing_changes_before_the_error():
    net = gpunet.Network([2, 3, 1], "sigmoid", backend="numpy", seed=0)
    before = net.get_params()
    with pytest.raises(TypeError, match="diagnostics"):
        net.fit(
            np.zeros((4, 2)),
            np.zeros(4, int),
            epochs=1,
            batch_size=2,
            lr=0.1,
            progress=False,
            diagnostics="yes",
        )
    assert_params_equal(before, net.get_params())


def test_tail_count_rejects_activations_without_tails():
    for name in ("relu", "gelu"):
        with pytest.raises(ValueError, match=name):
            tail_count(np, name, np.zeros((2, 2)))


# --- History files --------------------------------------------------------------------


def trained_history(diagnostics=True):
    X, y = gpunet.datasets.digits()
    net = gpunet.Network([64, 10, 10], "sigmoid", backend="numpy", seed=0)
    return net.fit(
        X[:200],
        y[:200],
        epochs=2,
        batch_size=20,
        lr=0.5,
        progress=False,
        validation=(X[200:300], y[200:300]),
        diagnostics=diagnostics,
    )


def test_history_round_trips_through_json_with_its_meta(tmp_path):
    history = trained_history()
    history.save(tmp_path / "h.json")
    loaded = gpunet.History.load(tmp_path / "h.json")
    assert isinstance(loaded, gpunet.History)
    assert loaded == history and loaded.meta == history.meta and loaded.epochs == 2
    assert loaded.meta["sizes"] == [64, 10, 10]
    assert json.loads((tmp_path / "h.json").read_text())["format"] == "gpunet-history-1"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '{"format": "other", "meta": {}, "metrics": {}}',
        '{"format": "gpunet-history-1", "meta": {}}',
        '{"format": "gpunet-history-1", "meta": [], "metrics": {}}',
        '{"format": "gpunet-history-1", "meta": {}, "metrics": {"cost": 1.0}}',
        '{"format": "gpunet-history-1", "meta": {}, "metrics": {"cost": [1], "seconds": [1, 2]}}',
    ],
)
def test_loading_anything_else_is_a_value_error_naming_the_file(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"bad\.json is not a gpunet history file"):
        gpunet.History.load(path)


def test_history_check_wants_one_entry_per_epoch_in_every_list():
    history = trained_history(diagnostics=False)
    history.check()
    history["gradient_norm"] = [[1.0, 2.0]]  # recorded for one epoch of two
    with pytest.raises(ValueError, match="'gradient_norm' has 1 entries for 2 epochs"):
        history.check()


def test_saving_replaces_the_file_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "h.json"
    path.write_text("the old file")
    history = trained_history(diagnostics=False)

    def interrupted(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(gpunet.core.io.os, "replace", interrupted)
    with pytest.raises(OSError, match="disk full"):
        history.save(path)
    assert path.read_text() == "the old file" and list(tmp_path.iterdir()) == [path]
    monkeypatch.undo()
    history.save(path)
    assert gpunet.History.load(path) == history and list(tmp_path.iterdir()) == [path]


def test_loading_a_missing_history_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        gpunet.History.load(tmp_path / "missing.json")


@pytest.mark.gpu
@pytest.mark.skipif(cupy_unavailable() is not None, reason=f"needs CUDA: {cupy_unavailable()}")
def test_the_cupy_backend_records_the_numpy_statistics():
    X, y = gpunet.datasets.digits()
    histories = []
    for backend in ("numpy", "cupy"):
        net = gpunet.Network(
            [64, 12, 12, 10],
            ["sigmoid", "relu", "softmax"],
            backend=backend,
            dtype="float64",
            seed=2,
        )
        histories.append(
            net.fit(
                X[:200],
                y[:200],
                epochs=2,
                batch_size=20,
                lr=0.3,
                seed=1,
                progress=False,
                diagnostics=True,
            )
        )
    on_host, on_device = histories
    for key in STATISTICS:
        for host_epoch, device_epoch in zip(on_host[key], on_device[key]):
            for h, d in zip(host_epoch, device_epoch):
                assert (h is None) == (d is None), key
                if h is not None:
                    assert d == pytest.approx(h, rel=1e-9, abs=1e-12), key
