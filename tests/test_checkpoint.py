"""Checkpoints in one process: resuming equals never stopping, the every-N schedule, and
refusals before any change."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_params_equal, seeded_rng

import gpunet
from gpunet.checkpoint import read_checkpoint


def _data(m=50):
    rng = seeded_rng("checkpoint")
    return rng.standard_normal((m, 4)), rng.integers(0, 3, m)


def _net():
    return gpunet.Network([4, 6, 3], ["tanh", "softmax"], dtype="float64", seed=1)


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
    assert_params_equal(gpunet.load(path).get_params(), whole.get_params())


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
    ]
    for optimizer, epochs, options, message in cases:
        net = _net()
        before = net.get_params()
        with pytest.raises(ValueError, match=message):
            _fit(net, optimizer, epochs, checkpoint=path, resume=True, **options)
        assert_params_equal(net.get_params(), before)
    other = gpunet.Network([4, 5, 3], ["tanh", "softmax"], dtype="float64", seed=1)
    with pytest.raises(ValueError, match="checkpoint is of a network"):
        _fit(other, gpunet.SGD(0.1), 4, checkpoint=path, resume=True)


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
        optimizer.load_state(net.backend, net._params, state)
    assert optimizer.state(net.backend) == {}
