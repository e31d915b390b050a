"""fit's extensions: their documented order, the hooks the loop calls and when, the progress
bar, and an extension added to the loop (as a later feature would add one)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import pytest
from conftest import seeded_rng

import gpunet
from gpunet.train import extensions, loop
from gpunet.train.checkpoint import read_checkpoint
from gpunet.train.run import Run


def _data(m=30):
    rng = seeded_rng("extensions")
    return rng.standard_normal((m, 4)), rng.integers(0, 3, m)


def _net():
    return gpunet.Network([4, 5, 3], ["tanh", "softmax"], dtype="float64", seed=2, backend="numpy")


def _run(net, data=None, **options):
    X, y = _data() if data is None else data
    settings = {
        "epochs": 3,
        "batch_size": 8,
        "optimizer": "sgd",
        "lr": 0.1,
        "cost": None,
        "validation": None,
        "shuffle": True,
        "seed": 0,
        "progress": False,
        "callbacks": None,
        "checkpoint": None,
        "checkpoint_every": 1,
        "resume": False,
        "diagnostics": False,
    }
    return Run.checked(net, X, y, **{**settings, **options})


def test_the_extensions_come_in_the_documented_order(tmp_path):
    net = _net()
    X, y = _data()
    run = _run(net, validation=(X, y), diagnostics=True, checkpoint=tmp_path / "run.npz")
    recorder = gpunet.train.diagnostics.Recorder(net, 4)
    made = extensions.standard_extensions(net, run, None, np.random.default_rng(0), {}, recorder)
    documented = [
        line.split()[0]
        for line in extensions.__doc__.split("and the order is")[1].split("so that")[0].splitlines()
        if line.startswith("    ") and not line.startswith("     ")
    ]
    # RankConsistency is for distributed runs only
    assert [type(extension).__name__ for extension in made] == [
        name for name in documented if name != "RankConsistency"
    ]
    assert len(documented) == 9


def test_a_run_is_frozen_and_holds_the_checked_arguments():
    net = _net()
    run = _run(net, callbacks=[print], optimizer="adam", lr=0.01)
    assert run.callbacks == (print,) and isinstance(run.optimizer, gpunet.Adam)
    assert run.X.shape == (30, 4) and run.labels is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.epochs = 5


class Spy(extensions.Extension):
    """Records every hook call; stops after epoch `stop_at`, optionally raises in one epoch."""

    def __init__(self, stop_at=None, fail_at=None):
        self.calls, self.stop_at, self.fail_at = [], stop_at, fail_at

    def initialize(self, first):
        self.calls.append(("initialize", first))

    def before_epoch(self, epoch):
        self.calls.append(("before_epoch", epoch))

    def after_batch(self, m):
        self.calls.append(("after_batch", m))

    def after_epoch(self, epoch):
        self.calls.append(("after_epoch", epoch.number, list(epoch.metrics)))
        if epoch.number == self.fail_at:
            raise RuntimeError("spy failed")
        if epoch.number == self.stop_at:
            epoch.stop = True

    def complete(self):
        self.calls.append(("complete",))

    def finalize(self):
        self.calls.append(("finalize",))


def _with(spy, monkeypatch, before="Checkpointing"):
    """fit's extensions with the spy inserted before the one named `before`."""
    standard = loop.standard_extensions

    def extended(*args):
        made = list(standard(*args))
        names = [type(extension).__name__ for extension in made]
        made.insert(names.index(before) if before in names else len(made), spy)
        return extensions.Extensions(made)

    monkeypatch.setattr(loop, "standard_extensions", extended)


def test_an_added_extension_sees_every_hook_in_order(monkeypatch):
    spy = Spy()
    _with(spy, monkeypatch)
    X, y = _data()
    history = _net().fit(X, y, epochs=2, batch_size=8, lr=0.1, progress=False, seed=0)
    epoch = [("after_batch", 8)] * 3 + [("after_batch", 6)]
    keys = ["cost", "accuracy", "seconds", "samples_per_second"]
    assert spy.calls == [
        ("initialize", 1),
        ("before_epoch", 1),
        *epoch,
        ("after_epoch", 1, keys),
        ("before_epoch", 2),
        *epoch,
        ("after_epoch", 2, keys),
        ("complete",),
        ("finalize",),
    ]
    assert list(history) == keys


def test_an_extension_that_stops_ends_training_and_is_checkpointed(monkeypatch, tmp_path):
    spy = Spy(stop_at=2)
    _with(spy, monkeypatch)
    X, y = _data()
    path = tmp_path / "run.npz"
    net = _net()
    history = net.fit(
        X, y, epochs=9, batch_size=8, lr=0.1, progress=False, checkpoint=path, checkpoint_every=5
    )
    assert history.epochs == 2 and spy.calls[-2:] == [("complete",), ("finalize",)]
    assert read_checkpoint(path)["record"]["epoch"] == 2


def test_finalize_runs_when_an_extension_raises(monkeypatch):
    spy = Spy(fail_at=1)
    _with(spy, monkeypatch, before="Throughput")
    X, y = _data()
    with pytest.raises(RuntimeError, match="spy failed"):
        _net().fit(X, y, epochs=3, batch_size=8, lr=0.1, progress=False)
    # complete() is for training that ended without an exception
    assert spy.calls[-2:] == [("after_epoch", 1, ["cost", "accuracy"]), ("finalize",)]


def test_after_batch_is_called_on_the_extensions_that_define_it():
    spy, plain = Spy(), extensions.Extension()
    hooks = extensions.Extensions([plain, spy, plain])
    hooks.after_batch(4)
    hooks.before_epoch(1)
    assert spy.calls == [("after_batch", 4), ("before_epoch", 1)]


def test_the_history_keys_come_in_their_order():
    X, y = _data()
    history = _net().fit(
        X, y, epochs=1, batch_size=8, lr=0.1, progress=False, validation=(X, y), diagnostics=True
    )
    assert list(history) == [
        "cost",
        "accuracy",
        "validation_cost",
        "validation_accuracy",
        "seconds",
        "samples_per_second",
        *gpunet.train.diagnostics.STATISTICS,
    ]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"validation_split": 0.2},
        {"validation_split": 0.2, "diagnostics": True},
        {"targets": "regression", "validation_split": 0.2},
        {"targets": "regression", "diagnostics": True},
    ],
)
def test_a_runs_metrics_are_the_keys_its_history_gets(options):
    X, y = _data()
    options = dict(options)
    if options.pop("targets", None) == "regression":
        y = np.eye(3)[y] * 0.8 + 0.2 / 3  # targets, not labels: no accuracy
    net = _net()
    run = _run(net, (X, y), **options)
    history = net.fit(X, y, epochs=1, batch_size=8, lr=0.1, progress=False, **options)
    assert run.metrics == tuple(history)


class Bar:
    """Stands in for tqdm: records what the Progress extension asks of its bar."""

    made: ClassVar[list] = []

    def __init__(self, **options):
        self.options, self.calls = options, []
        Bar.made.append(self)

    def update(self, n):
        self.calls.append(("update", n))

    def set_description(self, text):
        self.calls.append(("description", text))

    def set_postfix(self, **values):
        self.calls.append(("postfix", values))

    def close(self):
        self.calls.append(("close",))


@pytest.mark.parametrize("progress", [True, False])
def test_the_progress_bar_counts_examples_across_a_resume(monkeypatch, tmp_path, progress):
    monkeypatch.setattr(extensions, "tqdm", Bar)
    Bar.made = []
    X, y = _data(m=10)
    path = tmp_path / "run.npz"
    options = {"batch_size": 4, "lr": 0.1, "checkpoint": path, "progress": progress}
    _net().fit(X, y, epochs=1, **options)
    history = _net().fit(X, y, epochs=2, resume=True, **options)
    first, resumed = Bar.made
    assert resumed.options["total"] == 20 and resumed.options["disable"] == (
        None if progress else True
    )
    cost = f"{history['cost'][-1]:.4g}"
    assert resumed.calls == [
        ("update", 10),  # the epoch done before the resume
        ("description", "epoch 2/2"),
        *[("update", 4), ("update", 4), ("update", 2)],
        ("postfix", {"cost": cost}),
        ("close",),
    ]
    assert first.calls[0] == ("update", 0) and first.calls[-1] == ("close",)


def test_the_progress_bar_closes_on_divergence(monkeypatch):
    monkeypatch.setattr(extensions, "tqdm", Bar)
    Bar.made = []
    X = np.full((6, 4), 1e200)
    net = gpunet.Network([4, 2], "identity", dtype="float64", seed=0, backend="numpy")
    with pytest.raises(gpunet.DivergenceError), np.errstate(all="ignore"):
        net.fit(X, np.ones((6, 2)), epochs=2, batch_size=3, lr=1e10, cost="quadratic")
    (bar,) = Bar.made
    assert bar.calls[-1] == ("close",) and not any(call[0] == "postfix" for call in bar.calls)
