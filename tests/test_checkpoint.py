"""Checkpoints in one process: resuming equals never stopping, the every-N schedule, and
refusals before any change."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_params_equal, seeded_rng

import gpunet
from gpunet.train.checkpoint import read_checkpoint, restore


def _data(m=50):
    rng = seeded_rng("checkpoint")
    return rng.standard_normal((m, 4)), rng.integers(0, 3, m)


def _net():
    return gpunet.Network([4, 6, 3], ["tanh", "softmax"], dtype="float64", seed=1, backend="numpy")


def _fit(net, optimizer, epochs, **options):
    X, y = _data()
    return net.fit(
        X, y, epochs=epochs, batch_size=8, optimizer=optimizer, seed=5, progress=False, **options
    )


@pytest.mark.parametrize(
    "make_optimizer",
    [lambda: gpunet.SGD(0.2, momentum=0.9, nesterov=True), lambda: gpunet.Adam(0.01)],
    ids=["sgd-nesterov", "adam"],
)
def test_resuming_gives_the_uninterrupted_run(make_optimizer, tmp_path):
    path = tmp_path / "run.npz"
    whole = _net()
    expected = _fit(whole, make_optimizer(), 5)

    _fit(_net(), make_optimizer(), 2, checkpoint=path)  # "interrupted" after epoch 2
    resumed = _net()
    history = _fit(resumed, make_optimizer(), 5, checkpoint=path, resume=True)
    assert_params_equal(resumed.get_params(), whole.get_params())
    for key in ("cost", "accuracy"):
        assert history[key] == expected[key]
    assert read_checkpoint(path)["record"]["epoch"] == 5
    # a checkpoint is a model file too
    assert_params_equal(gpunet.load(path, backend="numpy").get_params(), whole.get_params())


def test_checkpoints_every_n_epochs_and_at_the_end(tmp_path):
    path = tmp_path / "run.npz"
    seen = []

    def look(epoch, metrics):  # runs before this epoch's checkpoint is written
        seen.append(read_checkpoint(path)["record"]["epoch"] if path.exists() else None)

    _fit(_net(), gpunet.SGD(0.1), 5, checkpoint=path, checkpoint_every=2, callbacks=[look])
    assert seen == [None, None, 2, 2, 4]
    assert read_checkpoint(path)["record"]["epoch"] == 5


def test_a_callback_stop_is_checkpointed(tmp_path):
    path = tmp_path / "run.npz"
    _fit(
        _net(),
        gpunet.SGD(0.1),
        9,
        checkpoint=path,
        checkpoint_every=5,
        callbacks=[lambda epoch, metrics: epoch == 3],
    )
    assert read_checkpoint(path)["record"]["epoch"] == 3


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"resume": True}, ValueError, "resume=True needs the checkpoint path"),
        ({"checkpoint_every": 0}, ValueError, "checkpoint_every must be a positive integer"),
        ({"checkpoint_every": 1.5}, TypeError, "checkpoint_every must be an integer"),
        ({"checkpoint": 3}, TypeError, "checkpoint must be a str or path, got int"),
        ({"checkpoint": "/no-such-gpunet-dir/run.npz"}, FileNotFoundError, "no directory"),
        ({"checkpoint": "run.npz", "resume": "yes"}, TypeError, "resume must be True or False"),
    ],
)
def test_bad_checkpoint_arguments(options, error, message):
    net = _net()
    before = net.get_params()
    with pytest.raises(error, match=message):
        _fit(net, gpunet.SGD(0.1), 2, **options)
    assert_params_equal(net.get_params(), before)


def test_resuming_a_different_run_is_refused_before_any_change(tmp_path):
    path = tmp_path / "run.npz"
    _fit(_net(), gpunet.SGD(0.1), 2, checkpoint=path)
    cases = [
        (gpunet.SGD(0.3), 4, {}, "optimizer"),
        (gpunet.SGD(0.1), 1, {}, "checkpoint is at epoch 2, beyond epochs=1"),
        (gpunet.SGD(0.1), 4, {"diagnostics": True}, "written with diagnostics False"),
    ]
    for optimizer, epochs, options, message in cases:
        net = _net()
        before = net.get_params()
        with pytest.raises(ValueError, match=message):
            _fit(net, optimizer, epochs, checkpoint=path, resume=True, **options)
        assert_params_equal(net.get_params(), before)
    other = gpunet.Network([4, 5, 3], ["tanh", "softmax"], dtype="float64", seed=1, backend="numpy")
    with pytest.raises(ValueError, match="checkpoint is of a network"):
        _fit(other, gpunet.SGD(0.1), 4, checkpoint=path, resume=True)


def test_resuming_with_diagnostics_gives_the_uninterrupted_history(tmp_path):
    path = tmp_path / "run.npz"
    expected = _fit(_net(), gpunet.SGD(0.2), 4, diagnostics=True)
    _fit(_net(), gpunet.SGD(0.2), 2, checkpoint=path, diagnostics=True)
    history = _fit(_net(), gpunet.SGD(0.2), 4, checkpoint=path, resume=True, diagnostics=True)
    history.check()
    for key in ("cost", "gradient_norm", "delta_norm", "saturation"):
        assert history[key] == expected[key], key


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda c: c["arrays"].pop("W2"), "checkpoint lacks the arrays W2"),
        (lambda c: c["arrays"].update(W1=np.zeros((2, 2))), r"weights\[0\] must have shape"),
        (lambda c: c["arrays"].update(b2=np.full(3, np.nan)), r"biases\[1\] contains NaN"),
        (lambda c: c["arrays"].update({"optimizer.velocity": np.zeros(3)}), "velocity must"),
        (lambda c: c["record"]["settings"].pop("cost"), "checkpoint lacks the setting 'cost'"),
        (lambda c: c["record"].pop("rng"), "checkpoint record lacks rng"),
        (lambda c: c["record"].update(epoch="2"), "epoch must be a positive integer"),
        (lambda c: c["record"]["rng"].update(state={}), "no valid generator state"),
        (lambda c: c["record"]["history"]["cost"].pop(), "'accuracy' has 2 entries for 1 epochs"),
        (lambda c: c["record"]["history"]["gradient_norm"].append([1.0]), "'gradient_norm'"),
    ],
)
def test_a_damaged_checkpoint_is_refused_before_any_change(damage, message, tmp_path):
    path = tmp_path / "run.npz"
    written = _fit(_net(), gpunet.SGD(0.1, momentum=0.5), 2, checkpoint=path)
    contents = read_checkpoint(path)
    contents["record"]["history"]["gradient_norm"] = [[0.5, 0.5]] * 2
    damage(contents)
    net, optimizer, rng = _net(), gpunet.SGD(0.1, momentum=0.5), np.random.default_rng(5)
    history = gpunet.History(**written.meta)
    params, generator = net.get_params(), rng.bit_generator.state
    with pytest.raises(ValueError, match=message):
        restore(contents, net, optimizer, rng, history, 4)
    assert_params_equal(net.get_params(), params)
    assert rng.bit_generator.state == generator and dict(history) == {}
    assert optimizer.state(net.backend) == {}
    optimizer.attach(_small_net().params)  # and it is bound to no network yet


def _small_net():
    return gpunet.Network([4, 3], "softmax", dtype="float64", seed=1, backend="numpy")


def test_files_that_are_not_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError):
        _fit(_net(), gpunet.SGD(0.1), 2, checkpoint=tmp_path / "none.npz", resume=True)
    model = tmp_path / "model.npz"
    _net().save(model)
    with pytest.raises(ValueError, match="is not a gpunet checkpoint"):
        _fit(_net(), gpunet.SGD(0.1), 2, checkpoint=model, resume=True)


def test_checkpoint_record_holds_the_generator_state_and_history(tmp_path):
    path = tmp_path / "run.npz"
    history = _fit(_net(), gpunet.SGD(0.1), 2, checkpoint=path)
    record = read_checkpoint(path)["record"]
    rng = np.random.default_rng(5)
    rng.permutation(50), rng.permutation(50)
    assert record["rng"] == json.loads(json.dumps(rng.bit_generator.state))
    assert record["history"]["cost"] == history["cost"]


@pytest.mark.parametrize(
    ("optimizer", "state", "message"),
    [
        (gpunet.SGD(0.1, momentum=0.5), {"moment": np.zeros(51)}, "must hold velocity or nothing"),
        (gpunet.SGD(0.1, momentum=0.5), {"velocity": np.zeros(50)}, "velocity must have shape"),
        (gpunet.Adam(), {"first_moment": np.zeros(51)}, "must hold first_moment, second_moment"),
    ],
)
def test_optimizer_state_is_checked_before_it_is_taken(optimizer, state, message):
    net = _net()
    assert net.n_parameters == 51
    with pytest.raises(ValueError, match=message):
        optimizer.load_state(net.backend, net.params, state)
    assert optimizer.state(net.backend) == {}
    optimizer.load_state(net.backend, _small_net().params, {})  # still bound to no network
