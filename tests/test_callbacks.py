"""fit's Keras habits: validation_split, Callback objects that see the network, EarlyStopping and
SaveBest, the defaults of fit(X, y), and `gpunet train --validation-split --patience`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import mpi_callbacks_worker
import mpi_worker
import numpy as np
import pytest
from conftest import seeded_rng
from test_distributed import mpirun, needs_mpi

import gpunet
from gpunet.train.history import History

ROOT = Path(__file__).resolve().parents[1]


def _data(m=40):
    rng = seeded_rng("callbacks")
    return rng.standard_normal((m, 4)), rng.integers(0, 3, m)


def _net():
    return gpunet.Network([4, 6, 3], ["tanh", "softmax"], dtype="float64", seed=3, backend="numpy")


OPTIONS = {"batch_size": 8, "lr": 0.1, "seed": 0, "progress": False}


def scripted(name, values):
    """A callback (put before the one under test) that makes metrics[name] the scripted
    value of each epoch: the epochs' real parameters, with a known best epoch."""

    def script(epoch, metrics):
        metrics[name] = values[epoch - 1]

    return script


def snapshots(net, taken):
    """A callback that keeps a copy of net's parameters after every epoch."""

    def snapshot(epoch, metrics):
        taken.append(net.params.copy())

    return snapshot


def _watch(callback, values, metrics=("cost", "accuracy"), name="cost"):
    """Drive a Callback's hooks with a fake run and net over the scripted values of `name`;
    the epochs it saw, up to and including the one where it stopped."""
    net = SimpleNamespace(params=np.zeros(3), backend=SimpleNamespace(xp=np), save=print)
    callback.check(SimpleNamespace(metrics=metrics, resume=False))
    callback.on_train_begin(net, History())
    for epoch, value in enumerate(values, 1):
        if callback.on_epoch_end(net, epoch, {name: value}):
            return epoch
    return len(values)


COSTS = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1, 2.0, 2.5]


@pytest.mark.parametrize(("patience", "stop"), [(0, 4), (1, 4), (2, 5), (3, 6), (4, 8)])
def test_early_stopping_stops_after_patience_epochs_without_improvement(patience, stop):
    early = gpunet.EarlyStopping(patience=patience)
    assert _watch(early, COSTS) == stop
    assert early.stopped_epoch == (stop if patience < 4 else None)
    assert early.best_epoch == (3 if patience < 4 else 7)


def test_min_delta_is_the_improvement_that_counts():
    slow = [5.0, 4.6, 4.2, 3.9, 3.0, 2.9]
    assert _watch(gpunet.EarlyStopping(patience=1), slow) == 6  # always improving
    early = gpunet.EarlyStopping(patience=1, min_delta=0.5)
    assert _watch(early, slow) == 2 and early.best == 5.0
    early = gpunet.EarlyStopping(patience=2, min_delta=0.5)
    # 4.6 is not below 5 - 0.5; 4.2 is, and becomes the best; 3.9 is not below 3.7; 3.0 is
    assert _watch(early, slow) == 6 and early.best == 3.0 and early.best_epoch == 5


def test_accuracies_are_maximised_and_mode_overrides():
    accuracies = [0.5, 0.6, 0.55, 0.54]
    early = gpunet.EarlyStopping("accuracy", patience=2)
    assert _watch(early, accuracies, name="accuracy") == 4 and early.best_epoch == 2
    early = gpunet.EarlyStopping("accuracy", patience=1, mode="min")
    assert _watch(early, accuracies, name="accuracy") == 2 and early.best == 0.5


def test_early_stopping_in_fit_stops_at_the_scripted_epoch():
    X, y = _data()
    early = gpunet.EarlyStopping(patience=2)
    history = _net().fit(X, y, epochs=20, callbacks=[scripted("cost", COSTS), early], **OPTIONS)
    assert history.epochs == 5 and early.stopped_epoch == 5 and early.best_epoch == 3


@pytest.mark.parametrize("stops", [True, False])
def test_restore_best_leaves_the_best_epochs_parameters(stops):
    X, y = _data()
    net, taken = _net(), []
    costs = [3.0, 1.0, 2.0, 2.5, 2.6, 2.7]
    early = gpunet.EarlyStopping("validation_cost", patience=4 if stops else 9, restore_best=True)
    callbacks = [scripted("validation_cost", costs), snapshots(net, taken), early]
    history = net.fit(X, y, epochs=6, validation=(X, y), callbacks=callbacks, **OPTIONS)
    assert history.epochs == 6 and early.best_epoch == 2
    assert early.stopped_epoch == (6 if stops else None)
    np.testing.assert_array_equal(net.params, taken[1])
    assert not np.array_equal(taken[1], taken[-1])
    # in place: the layers' views show the best parameters too
    assert np.shares_memory(net.weights[0], net.params)
    np.testing.assert_array_equal(net.weights[0].ravel(), taken[1][: net.weights[0].size])


def test_restore_best_is_skipped_when_training_fails():
    X, y = _data()
    net, taken = _net(), []

    def fail(epoch, metrics):
        if epoch == 3:
            raise RuntimeError("callback failed")

    early = gpunet.EarlyStopping(patience=5, restore_best=True)
    callbacks = [scripted("cost", [1.0, 2.0, 3.0]), snapshots(net, taken), early, fail]
    with pytest.raises(RuntimeError, match="callback failed") as caught:
        net.fit(X, y, epochs=5, callbacks=callbacks, **OPTIONS)
    # the documented rule for any exception: the parameters of the last finished epoch
    assert caught.value.history.epochs == 3
    np.testing.assert_array_equal(net.params, taken[2])


def test_save_best_writes_the_best_epoch_and_only_on_improvement(tmp_path):
    X, y = _data()
    net, taken, written = _net(), [], []
    path = tmp_path / "best.npz"

    def look(epoch, metrics):
        written.append(path.is_file() and path.stat().st_mtime_ns)

    costs = [3.0, 2.0, 2.5, 1.0, 1.5]
    save = gpunet.SaveBest(path)
    callbacks = [scripted("cost", costs), snapshots(net, taken), save, look]
    net.fit(X, y, epochs=5, callbacks=callbacks, **OPTIONS)
    assert save.best_epoch == 4 and save.best == 1.0
    # written at epochs 1, 2 and 4: the file's time changes there and nowhere else
    changed = [written[i] != (written[i - 1] if i else False) for i in range(5)]
    assert changed == [True, True, False, True, False]
    best = gpunet.load(path, backend="numpy")
    np.testing.assert_array_equal(best.params, taken[3])
    assert best.sizes == net.sizes and not np.array_equal(best.params, net.params)


def test_validation_split_holds_out_the_last_rows_before_shuffling():
    X, y = _data(m=40)
    split = _net().fit(X, y, epochs=3, validation_split=0.25, **OPTIONS)
    net = _net()
    given = net.fit(X[:30], y[:30], epochs=3, validation=(X[30:], y[30:]), **OPTIONS)
    assert split.meta["examples"] == 30
    for key in ("cost", "accuracy", "validation_cost", "validation_accuracy"):
        assert split[key] == given[key]
    assert split["validation_cost"][-1] == net.evaluate(X[30:], y[30:])["cost"]


def test_validation_split_works_with_checkpoint_and_resume(tmp_path):
    X, y = _data()
    whole = _net().fit(X, y, epochs=4, validation_split=0.2, **OPTIONS)
    path = tmp_path / "run.npz"
    _net().fit(X, y, epochs=2, validation_split=0.2, checkpoint=path, **OPTIONS)
    resumed = _net().fit(
        X, y, epochs=4, validation_split=0.2, checkpoint=path, resume=True, **OPTIONS
    )
    assert resumed["validation_cost"] == whole["validation_cost"]


def test_early_stopping_counts_on_across_a_resume(tmp_path):
    X, y = _data()
    path = tmp_path / "run.npz"

    def stopping():
        return gpunet.EarlyStopping(patience=1, min_delta=0.02)

    whole = stopping()
    history = _net().fit(X, y, epochs=30, callbacks=[whole], **OPTIONS)
    assert 3 < whole.stopped_epoch == history.epochs < 30
    _net().fit(X, y, epochs=3, callbacks=[stopping()], checkpoint=path, **OPTIONS)
    again = stopping()
    resumed = _net().fit(
        X, y, epochs=30, callbacks=[again], checkpoint=path, resume=True, **OPTIONS
    )
    assert again.stopped_epoch == whole.stopped_epoch and resumed["cost"] == history["cost"]


class Recorder(gpunet.Callback):
    """Records its hooks' calls; stops training after epoch `stop_at`."""

    def __init__(self, stop_at=None):
        self.calls, self.stop_at = [], stop_at

    def on_train_begin(self, net, history):
        self.calls.append(("begin", net, history.epochs))

    def on_epoch_end(self, net, epoch, metrics):
        self.calls.append(("epoch", epoch, sorted(metrics)))
        return epoch == self.stop_at

    def on_train_end(self, net, history):
        self.calls.append(("end", net, history.epochs))


def test_a_callback_object_sees_the_network_in_every_hook():
    X, y = _data()
    net, recorder, plain = _net(), Recorder(stop_at=2), []
    callbacks = [recorder, lambda epoch, metrics: plain.append(epoch)]
    history = net.fit(X, y, epochs=5, callbacks=callbacks, **OPTIONS)
    keys = sorted(history)
    assert recorder.calls == [
        ("begin", net, 0),
        ("epoch", 1, keys),
        ("epoch", 2, keys),
        ("end", net, 2),
    ]
    assert plain == [1, 2] and history.epochs == 2


def _early(monitor=None, **options):
    return lambda data: {"callbacks": [gpunet.EarlyStopping(monitor, **options)]}


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda data: {"validation_split": 0}, ValueError, "validation_split must be a finite"),
        (lambda data: {"validation_split": 1}, ValueError, "validation_split must be below 1"),
        (lambda data: {"validation_split": 1.5}, ValueError, "validation_split must be below 1"),
        (lambda data: {"validation_split": "0.1"}, TypeError, "validation_split must be a num"),
        (lambda data: {"validation_split": 0.01}, ValueError, "holds out 0"),
        (lambda data: {"validation_split": 0.1, "validation": data}, ValueError, "not both"),
        (_early("loss"), ValueError, "'loss' is not a metric .* it records cost, accuracy, sec"),
        (_early("validation_cost"), ValueError, "samples_per_second"),
        (_early("gradient_norm"), ValueError, "'gradient_norm' is not"),
        (_early(restore_best=True), ValueError, "cannot follow a resume"),
        (lambda data: {"callbacks": [gpunet.SaveBest("no/dir/b.npz")]}, OSError, "no/dir"),
        (lambda data: {"callbacks": gpunet.EarlyStopping()}, TypeError, "list of callbacks"),
        (lambda data: {"callbacks": [3]}, TypeError, "gpunet.Callback objects, got int"),
    ],
)
def test_bad_arguments_are_refused_before_anything_changes(make, error, message, tmp_path):
    X, y = _data()
    path = tmp_path / "run.npz"
    _net().fit(X, y, epochs=1, checkpoint=path, **OPTIONS)
    net, called, saved = _net(), [], path.read_bytes()
    before = net.params.copy()
    options = make((X, y))
    if isinstance(options.get("callbacks"), list):
        options["callbacks"].append(lambda epoch, metrics: called.append(epoch))
    resume = {"checkpoint": path, "resume": True, "diagnostics": True}
    with pytest.raises(error, match=message):
        net.fit(X, y, epochs=3, **resume, **OPTIONS, **options)
    np.testing.assert_array_equal(net.params, before)
    assert called == [] and path.read_bytes() == saved


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: gpunet.EarlyStopping(patience=-1), "patience must be an integer >= 0"),
        (lambda: gpunet.EarlyStopping(patience=1.5), "patience must be an integer"),
        (lambda: gpunet.EarlyStopping(mode="up"), "mode must be one of"),
        (lambda: gpunet.EarlyStopping(min_delta=-1), "min_delta must be a finite number >= 0"),
        (lambda: gpunet.EarlyStopping(3), "monitor must be a metric's name"),
        (lambda: gpunet.EarlyStopping(restore_best=1), "restore_best must be True or False"),
        (lambda: gpunet.SaveBest(b"best.npz"), "SaveBest path must be a str or path"),
    ],
)
def test_bad_callback_settings_are_refused_when_made(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_the_monitor_defaults_to_the_validation_cost_when_there_is_one():
    X, y = _data()
    alone, validated = gpunet.EarlyStopping(), gpunet.EarlyStopping()
    _net().fit(X, y, epochs=1, callbacks=[alone], **OPTIONS)
    _net().fit(X, y, epochs=1, validation_split=0.5, callbacks=[validated], **OPTIONS)
    assert (alone.watched.name, validated.watched.name) == ("cost", "validation_cost")


def test_fit_with_its_defaults_trains_ten_epochs_of_32_with_adam():
    X, y = _data(m=70)
    net = _net()
    before = net.evaluate(X, y)["cost"]
    history = net.fit(X, y, progress=False)
    assert history.epochs == 10 and history.meta["batch_size"] == 32
    assert history.meta["optimizer"].startswith("Adam(lr=0.001")
    assert net.evaluate(X, y)["cost"] < before
    # a learning rate alone keeps meaning SGD at that rate, as before
    assert _net().fit(X, y, epochs=1, lr=0.5, progress=False).meta["optimizer"].startswith("SGD")


@needs_mpi
def test_under_mpi_the_restored_best_reaches_every_rank(tmp_path):
    result = mpirun(2, str(Path(mpi_callbacks_worker.__file__)), str(tmp_path))
    assert result.returncode == 0, result.stderr
    ranks = [np.load(tmp_path / f"rank{rank}.npy") for rank in range(2)]
    record = json.loads((tmp_path / "history.json").read_text())
    np.testing.assert_array_equal(ranks[0], ranks[1])
    X, y, _, _ = mpi_worker.problem()
    net, taken = mpi_worker.network(), []
    callbacks, options = mpi_callbacks_worker.settings()
    history = net.fit(X, y, callbacks=[*callbacks, snapshots(net, taken)], **options)
    assert record["best_epoch"] == 2 and history.epochs == len(record["history"]["cost"]) == 4
    np.testing.assert_allclose(record["history"]["cost"], history["cost"], rtol=1e-10)
    np.testing.assert_allclose(ranks[0], net.params, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(net.params, taken[1])


def gpunet_train(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "gpunet", "train", "--backend", "numpy", "--no-progress"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )


def test_train_validates_on_a_split_and_stops_with_patience(tmp_path):
    options = ["--validation-split", "0.1", "--patience", "1", "--restore-best", "--lr", "3"]
    path = tmp_path / "net.npz"
    result = gpunet_train(*options, "--epochs", "40", "--json", "--save", str(path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["train_examples"] == 1438 - 143 and report["epochs"] < 40
    assert "val cost" in result.stderr and "stopped after epoch" in result.stderr
    kept = result.stderr.split("kept the parameters of epoch ")[1].split()[0]
    assert int(kept) < report["epochs"]
    X, y = gpunet.datasets.digits()
    _, _, X_test, y_test = gpunet.datasets.train_test_split(
        X, y, test_size=0.2, shuffle=True, seed=0
    )
    net = gpunet.load(path, backend="numpy")
    assert net.evaluate(X_test, y_test)["accuracy"] == pytest.approx(report["test_accuracy"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--patience", "2"], "--patience needs --validation-split"),
        (["--restore-best"], "--restore-best needs --patience"),
        (["--validation-split", "1"], "validation_split must be below 1"),
        (["--validation-split", "0.1", "--patience", "-1"], "patience must be"),
    ],
)
def test_train_refuses_stopping_options_without_what_they_need(args, message):
    result = gpunet_train(*args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr
