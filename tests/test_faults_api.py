"""Reliability of the Python API: bad arguments named before anything changes, what training
did kept when it stops with an exception, saves that a signal, a kill or a second writer
cannot damage. (The command line's side is tests/test_faults.py; hostile files are
tests/test_hostile.py.)"""

from __future__ import annotations

import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import interruptible

import gpunet
from gpunet import FileFormatError, datasets
from gpunet.core.checks import check_output_path
from gpunet.core.io import Terminated, temporary_path, write_atomically
from gpunet.train.checkpoint import checkpoint_epoch

ROOT = Path(__file__).resolve().parents[1]
X, Y = gpunet.datasets.digits()
X, Y = X[:200], Y[:200]
OPTIONS = {"epochs": 4, "batch_size": 10, "lr": 0.5, "seed": 0, "progress": False}


def network() -> gpunet.Network:
    return gpunet.Network([64, 16, 10], backend="numpy", seed=0)


# --- arguments named ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda net: net.fit(X, Y, **{**OPTIONS, "seed": "abc"}), TypeError, "seed"),
        (lambda net: net.fit(X, Y, **{**OPTIONS, "seed": -1}), ValueError, "seed"),
        (lambda net: net.fit(X, Y, **{**OPTIONS, "seed": 1.5}), TypeError, "seed"),
        (lambda net: net.fit(X, Y, **OPTIONS, shuffle="no"), TypeError, "shuffle"),
        (lambda net: net.fit(X, Y, **{**OPTIONS, "progress": "yes"}), TypeError, "progress"),
        (lambda net: net.fit(X, Y, **{**OPTIONS, "progress": 1}), TypeError, "progress"),
        (lambda net: net.fit(X, np.eye(10)[Y] * 1e39, **OPTIONS), ValueError, "Y.*float32"),
        (lambda net: net.set_params(None, None), TypeError, "weights must be a list"),
        (lambda net: net.set_params(*net.get_params()[:1], 3), TypeError, "biases"),
        (lambda net: datasets.train_test_split(None, Y, test_size=0.2), TypeError, "X"),
        (lambda net: datasets.train_test_split(X, 7, test_size=0.2), TypeError, "y"),
        (lambda n: datasets.train_test_split(X, Y, test_size=2, shuffle="y"), TypeError, "shuffle"),
        (lambda net: datasets.mnist(None), TypeError, "path"),
    ],
)
def test_bad_arguments_are_named_before_anything_changes(call, error, pattern):
    net = network()
    before = net.params.copy()
    with pytest.raises(error, match=pattern):
        call(net)
    np.testing.assert_array_equal(net.params, before)


def test_resuming_from_a_missing_checkpoint_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint .*none\.npz.* nothing to resume"):
        network().fit(X, Y, **OPTIONS, checkpoint=tmp_path / "none.npz", resume=True)


def test_a_file_that_is_no_model_is_named_without_numpy_advice(tmp_path):
    for content in (b"", b"\x93NUMPY not really", pickle.dumps({"W1": 1})):
        (tmp_path / "x.npz").write_bytes(content)
        with pytest.raises(FileFormatError, match="is not a gpunet model file") as caught:
            gpunet.load(tmp_path / "x.npz", backend="numpy")
        assert "allow_pickle" not in str(caught.value)
    error = pickle.loads(pickle.dumps(caught.value))  # MPI sends errors pickled
    assert str(error) == str(caught.value) and error.path == os.fspath(tmp_path / "x.npz")


# --- what training did stays reachable ------------------------------------------------------


@pytest.mark.parametrize("raised", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_raising_callback_keeps_the_history_and_the_finished_epochs(raised):
    net, after = network(), []

    def callback(epoch, metrics):
        after.append(net.params.copy())
        if epoch == 3:
            raise raised

    with pytest.raises(type(raised)) as caught:
        net.fit(X, Y, **OPTIONS, callbacks=[callback])
    np.testing.assert_array_equal(net.params, after[-1])  # where epoch 3 ended
    assert caught.value.history.epochs == 3
    assert caught.value.history["cost"] == network().fit(X, Y, **OPTIONS)["cost"][:3]


def test_an_interrupt_inside_an_epoch_leaves_the_parameters_of_the_last_finished(monkeypatch):
    finished = network()
    finished.fit(X, Y, **{**OPTIONS, "epochs": 2})
    step, calls = gpunet.train.loop.train_step, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2 * 20 + 7:  # 20 batches an epoch: inside the third
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    monkeypatch.setattr(gpunet.train.loop, "train_step", interrupted)
    net = network()
    with pytest.raises(KeyboardInterrupt) as caught:
        net.fit(X, Y, **OPTIONS)
    np.testing.assert_array_equal(net.params, finished.params)
    assert caught.value.history.epochs == 2


@pytest.mark.parametrize("activations", ["sigmoid", ["relu", "softmax"]])
def test_a_finite_but_exploding_cost_is_divergence(activations):
    net = gpunet.Network([64, 16, 10], activations, backend="numpy", seed=0)
    start = net.params.copy()
    with pytest.raises(gpunet.DivergenceError, match=r"epoch 1: its cost .* over 100 times"):
        net.fit(X, Y, **{**OPTIONS, "lr": 1e6})
    np.testing.assert_array_equal(net.params, start)


def test_divergence_carries_the_history_of_the_epochs_before_it():
    X_, Y_ = np.random.default_rng(0).standard_normal((40, 3)), np.zeros((40, 1))
    net = gpunet.Network([3, 1], "identity", backend="numpy", seed=0)
    with np.errstate(all="ignore"), pytest.raises(gpunet.DivergenceError) as caught:
        net.fit(X_, Y_ + 1.0, epochs=50, batch_size=40, lr=2.5, seed=0, progress=False)
    history = caught.value.history
    assert history.epochs >= 1 and all(np.isfinite(history["cost"]))
    assert f"epoch {history.epochs + 1}" in str(caught.value)


def test_regression_onto_near_constant_targets_is_not_taken_for_divergence():
    # the cost of outputs at zero is tiny here: the starting network's cost is the measure
    X_ = np.random.default_rng(1).standard_normal((100, 4))
    net = gpunet.Network([4, 8, 1], ["tanh", "identity"], backend="numpy", seed=3)
    history = net.fit(X_, np.full((100, 1), 1e-4), epochs=5, batch_size=10, lr=0.05, seed=0)
    assert history.epochs == 5


def test_the_readme_example_gives_the_same_accuracy_on_every_run(tmp_path, capsys, monkeypatch):
    code = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)[0]
    monkeypatch.chdir(tmp_path)
    printed = []
    for _ in range(2):
        exec(compile(code, "README", "exec"), {})
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1] and "fit(" in code and "seed=0" in code.split("fit(")[1]


# --- saves: signals, kills, two writers -----------------------------------------------------

CHILD = """
import sys, time
import numpy as np
import gpunet

saves, real = [0], np.savez

def blocking(file, **arrays):  # the Nth save stops before its rename: the window to hit
    real(file, **arrays)
    file.flush()
    saves[0] += 1
    if saves[0] == {block}:
        print("saving", flush=True)
        time.sleep(120)

np.savez = blocking
X, Y = gpunet.datasets.digits()
net = gpunet.Network([64, 16, 10], backend="numpy", seed=0)
{action}
"""
SAVE = (
    "net.save('net.npz'); net.fit(X[:200], Y[:200], epochs=1, batch_size=10, lr=0.5, "
    "progress=False); net.save('net.npz')"
)
CHECKPOINT = "net.fit(X[:200], Y[:200], **{options!r}, checkpoint='c.npz')"


def _stopped_child(tmp_path: Path, action: str, how: int, block: int = 2) -> int:
    """The exit status of a child running action, sent `how` inside its save number `block`."""
    script = CHILD.format(block=block, action=action)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    assert child.stdout.readline() == "saving\n", child.communicate()
    child.send_signal(how)
    child.communicate(timeout=60)
    return child.returncode


SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL]


@pytest.mark.parametrize("how", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_save_stopped_by_a_signal_keeps_the_previous_file(tmp_path, how):
    status = _stopped_child(tmp_path, SAVE, how)
    assert status == -how  # Python ends an unhandled KeyboardInterrupt by SIGINT too
    np.testing.assert_array_equal(
        gpunet.load(tmp_path / "net.npz", backend="numpy").params, network().params
    )
    left = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert len(left) == (how == signal.SIGKILL)  # only a kill leaves its temporary ...
    network().save(tmp_path / "net.npz")
    assert os.listdir(tmp_path) == ["net.npz"]  # ... which the next save removes


@pytest.mark.parametrize("how", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_checkpoint_stopped_by_a_signal_resumes_exactly(tmp_path, how):
    _stopped_child(tmp_path, CHECKPOINT.format(options=OPTIONS), how, block=3)
    assert checkpoint_epoch(tmp_path / "c.npz") == 2  # the third save stopped: the second kept
    resumed = network()
    resumed.fit(X, Y, **OPTIONS, checkpoint=tmp_path / "c.npz", resume=True)
    whole = network()
    whole.fit(X, Y, **OPTIONS)
    np.testing.assert_array_equal(resumed.params, whole.params)
    assert os.listdir(tmp_path) == ["c.npz"]


def test_a_signal_during_a_write_goes_to_the_previous_handler_after_cleanup(tmp_path):
    path, received = tmp_path / "out.bin", []
    path.write_bytes(b"old")

    def write(file):
        file.write(b"half")
        signal.raise_signal(signal.SIGTERM)

    def handler(signum, frame):
        received.append(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with pytest.raises(Terminated):
            write_atomically(path, write)
        assert signal.getsignal(signal.SIGTERM) is handler  # back in place, and called once
        assert received == [signal.SIGTERM]
        write_atomically(path, lambda file: file.write(b"new"))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.bin"]


def test_stale_temporaries_go_only_when_their_writer_is(tmp_path):
    path = tmp_path / "net.npz"
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )  # a pid no longer running
    dead = temporary_path(path).name.replace(f"-{os.getpid()}.", f"-{gone.stdout.strip()}.")
    live = temporary_path(path).name  # this process, writing
    other = f".net.npz.0badcafe-{gone.stdout.strip()}.{'0' * 32}.tmp"  # another host's
    for name in (dead, live, other):
        (tmp_path / name).write_bytes(b"partial")
    network().save(path)
    assert sorted(os.listdir(tmp_path)) == sorted(["net.npz", live, other])


def test_two_concurrent_writers_never_leave_a_broken_file(tmp_path):
    writer = textwrap.dedent("""
        import sys, gpunet
        net = gpunet.Network([64, 32, 10], backend="numpy", seed=int(sys.argv[1]))
        for _ in range(40):
            net.save("net.npz")
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [
        subprocess.Popen([sys.executable, "-c", writer, str(seed)], cwd=tmp_path, env=env)
        for seed in (1, 2)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    saved = gpunet.load(tmp_path / "net.npz", backend="numpy").params
    candidates = [gpunet.Network([64, 32, 10], backend="numpy", seed=s).params for s in (1, 2)]
    assert any(np.array_equal(saved, c) for c in candidates)
    assert os.listdir(tmp_path) == ["net.npz"]


def test_a_png_is_written_atomically(tmp_path, monkeypatch):
    history = network().fit(X, Y, **{**OPTIONS, "epochs": 2})
    path = history.plot(tmp_path / "h.png")
    before = path.read_bytes()

    def broken(self, file, **options):
        file.write(before[:100])
        raise OSError("the disk went away")

    monkeypatch.setattr(gpunet.train.plots.Figure, "savefig", broken)
    with pytest.raises(OSError, match="went away"):
        history.plot(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["h.png"]


def test_output_paths_are_checked_alike_everywhere(tmp_path):
    (tmp_path / "file").write_text("")
    for path, error in [
        (tmp_path, IsADirectoryError),
        (tmp_path / "file" / "x", NotADirectoryError),
        (tmp_path / "no" / "x", FileNotFoundError),
        (b"bytes.npz", TypeError),
        (3, TypeError),
    ]:
        with pytest.raises(error, match="out"):
            check_output_path("out", path)
        with pytest.raises(error, match="checkpoint"):
            network().fit(X, Y, **OPTIONS, checkpoint=path)
        with pytest.raises(error):
            network().save(path)
    with pytest.raises(ValueError, match=r"must end in \.png"):
        check_output_path("out", tmp_path / "x.jpg", suffix=".png")
    assert os.listdir(tmp_path) == ["file"]
