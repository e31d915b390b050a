"""Reliability of the `gpunet` command, run as a user runs it (a subprocess): every fault of
the user's making is one line and an exit code, outputs are checked before any work, and
interrupting, killing or starving a run never damages what it had written.
(The Python API's side is tests/test_faults_api.py.)"""

from __future__ import annotations

import gzip
import os
import pickle
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import interruptible

import gpunet
from gpunet.tools.cli import FAULTS, INTERRUPTED, exit_codes

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
# a train run that is quick but not instant: the digits, one example a step
TRAIN = ("train", "--backend", "numpy", "--sizes", "64,16,10", "--no-progress")


def gpunet_cli(*args: str, cwd: Path, **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gpunet", *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
        timeout=300,
        **options,
    )


def assert_one_line(result: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The run exited with `code`, saying one line on stderr holding every needle."""
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def temporaries(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


# --- outputs are checked before any work ----------------------------------------------------


def _output_cases(tmp: Path) -> list[tuple[list[str], int, str]]:
    (tmp / "file").write_text("a regular file\n")
    (tmp / "h.json").write_text("{}")
    (tmp / "dir.png").mkdir()
    cases = [
        ([*TRAIN, "--save", str(tmp)], 3, "is a directory"),
        ([*TRAIN, "--history", str(tmp / "file" / "h.json")], 3, "is a file, not a directory"),
        ([*TRAIN, "--checkpoint", str(tmp / "missing" / "c.npz")], 3, "no directory"),
        ([*TRAIN, "--save", "a.npz", "--history", "./a.npz"], 2, "name the same file"),
        (["plot", "h.json", "-o", "dir.png"], 3, "is a directory"),
        (["graph", "-o", "graph.jpg"], 2, "must end in .png"),
        (["graph", "-o", str(tmp / "file" / "g.png")], 3, "--output"),
        (["bench", "--shape", "nielsen", "--json", str(tmp)], 3, "--json"),
        (["bench", "--shape", "nielsen", "--plot", "curves.svg"], 2, "--plot must end in .png"),
    ]
    if Path("/proc/self").is_dir():  # a directory nobody can create files in, root included
        cases.append(([*TRAIN, "--save", "/proc/net.npz"], 3, "cannot be written"))
    if Path("/dev/null").exists():  # root could rename over it: refused
        cases.append(([*TRAIN, "--save", "/dev/null"], 2, "not a regular file"))
    return cases


def test_every_output_is_checked_before_any_work(tmp_path):
    for args, code, needle in _output_cases(tmp_path):
        result = gpunet_cli(*args, cwd=tmp_path)
        assert_one_line(result, code, needle)
        assert "epoch" not in result.stdout and "backend:" not in result.stdout  # no work done
    # nothing written, no probe left behind
    assert sorted(os.listdir(tmp_path)) == ["dir.png", "file", "h.json"]


# --- bad input files and arguments ------------------------------------------------------------


class Payload:
    """A pickle that would create `marker` when unpickled by a trusting reader."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_bad_data_and_model_files_are_one_line_with_exit_4(tmp_path):
    marker = tmp_path / "pwned"
    with gzip.open(tmp_path / "hostile.pkl.gz", "wb") as file:
        pickle.dump(((Payload(marker), 1), None, None), file, protocol=2)
    (tmp_path / "junk.pkl").write_bytes(b"garbage that is no pickle")
    (tmp_path / "junk.pkl.gz").write_bytes(b"not gzip at all")
    (tmp_path / "truncated.pkl.gz").write_bytes(gzip.compress(pickle.dumps((1, 2, 3)))[:-9])
    idx = tmp_path / "train-images-idx3-ubyte"
    idx.write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 12)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not a zip")
    (tmp_path / "list.json").write_text("[1, 2]")
    for args, needle in [
        ([*TRAIN, "--data", "hostile.pkl.gz"], "refusing"),
        ([*TRAIN, "--data", "junk.pkl"], "junk.pkl"),
        ([*TRAIN, "--data", "junk.pkl.gz"], "junk.pkl.gz"),
        ([*TRAIN, "--data", "truncated.pkl.gz"], "truncated.pkl.gz"),
        ([*TRAIN, "--data", str(idx)], "give the directory that holds it"),
        ([*TRAIN, "--checkpoint", "junk.npz", "--resume"], "not a gpunet checkpoint"),
        (["plot", "list.json"], "not a gpunet history file"),
    ]:
        assert_one_line(gpunet_cli(*args, cwd=tmp_path), 4, needle)
    assert not marker.exists()


def test_missing_inputs_exit_3_naming_the_file(tmp_path):
    assert_one_line(gpunet_cli("plot", "none.json", cwd=tmp_path), 3, "'none.json'", "check")
    resume = gpunet_cli(*TRAIN, "--checkpoint", "c.npz", "--resume", cwd=tmp_path)
    assert_one_line(resume, 3, "'c.npz' does not exist")


def test_bad_numbers_and_exhausted_memory(tmp_path):
    for tolerance in ("-1", "0", "nan"):
        result = gpunet_cli(
            "gradcheck", "--backend", "numpy", "--tolerance", tolerance, cwd=tmp_path
        )
        assert result.returncode == 2 and "--tolerance" in result.stderr
    huge = gpunet_cli(*TRAIN[:3], "--sizes", "64,1000000000000,10", cwd=tmp_path)
    assert_one_line(huge, 6)


def test_an_exploding_learning_rate_is_divergence_exit_1(tmp_path):
    result = gpunet_cli(*TRAIN, "--epochs", "2", "--lr", "1e6", "--save", "n.npz", cwd=tmp_path)
    assert_one_line(result, 1, "diverged in epoch 1", "smaller learning rate")
    assert not (tmp_path / "n.npz").exists()


def test_the_exit_codes_are_documented_alike_in_the_help_and_the_readme(tmp_path):
    help_text = gpunet_cli("--help", cwd=tmp_path).stdout
    assert exit_codes() in help_text
    table = (ROOT / "README.md").read_text().split("| code | meaning |\n")[1].split("\n\n")[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", table, flags=re.M)
    documented = {int(code) for code, _ in rows}
    assert documented == {0, INTERRUPTED, *(fault.code for fault in FAULTS)}
    for code, _ in rows:
        assert re.search(rf"^\s+{code}\s+\S", help_text, flags=re.M), code


# --- interrupted, killed, starved ---------------------------------------------------------------


def _child(args: list[str], cwd: Path) -> subprocess.Popen:
    """`gpunet *args` running in cwd, its output piped, ready to be sent SIGINT."""
    return subprocess.Popen(
        [sys.executable, "-m", "gpunet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=cwd,
        preexec_fn=interruptible,
    )


def _started(args: list[str], cwd: Path, until: Path) -> subprocess.Popen:
    """`gpunet *args` started in cwd, returned once the file `until` exists."""
    process = _child(args, cwd)
    deadline = time.monotonic() + 120
    while not until.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return process


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_train_run_stopped_anywhere_resumes_exactly(tmp_path, how):
    args = [*TRAIN, "--epochs", "5", "--batch-size", "1", "--checkpoint", "c.npz"]
    process = _started([*args, "--save", "cut.npz"], tmp_path, until=tmp_path / "c.npz")
    process.send_signal(how)
    _, stderr = process.communicate(timeout=120)
    epoch = gpunet.train.checkpoint.checkpoint_epoch(tmp_path / "c.npz")
    assert epoch is not None and 1 <= epoch < 5, stderr  # stopped before the end
    if how == signal.SIGINT:
        assert process.returncode == INTERRUPTED and "Traceback" not in stderr
        assert stderr.strip().splitlines()[-1] == (
            f"gpunet train: interrupted; the last checkpoint is c.npz (epoch {epoch}): "
            "run the same command with --resume to continue from it"
        )
    else:
        assert process.returncode == -how
    assert gpunet.load(tmp_path / "c.npz", backend="numpy").sizes == [
        64,
        16,
        10,
    ]  # intact, loadable
    assert not (tmp_path / "cut.npz").exists()
    resumed = gpunet_cli(*args, "--resume", "--save", "resumed.npz", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    whole = gpunet_cli(*args[:-2], "--save", "whole.npz", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    np.testing.assert_array_equal(
        gpunet.load(tmp_path / "resumed.npz", backend="numpy").params,
        gpunet.load(tmp_path / "whole.npz", backend="numpy").params,
    )
    assert temporaries(tmp_path) == []


def test_ctrl_c_without_a_checkpoint_says_nothing_was_saved(tmp_path):
    args = [*TRAIN, "--epochs", "50", "--batch-size", "1", "--history", "h.json"]
    process = _child(args, tmp_path)
    for line in process.stdout:  # the first epoch done: training is under way
        if line.startswith("epoch"):
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == INTERRUPTED
    assert stderr.strip() == (
        "gpunet train: interrupted; nothing was saved "
        "(--checkpoint PATH keeps the training state as it goes)"
    )
    assert os.listdir(tmp_path) == []


def _limited(max_bytes: int):
    def limit() -> None:  # in the child: files stop growing at max_bytes (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return limit


def test_a_size_limit_reached_while_saving_keeps_the_previous_file(tmp_path):
    gpunet.Network([2, 2], backend="numpy").save(tmp_path / "n.npz")
    before = (tmp_path / "n.npz").read_bytes()
    args = [*TRAIN, "--epochs", "1", "--save", "n.npz"]
    result = gpunet_cli(*args, cwd=tmp_path, preexec_fn=_limited(4096))
    assert_one_line(result, 3, "--save 'n.npz'", "File too large")
    assert (tmp_path / "n.npz").read_bytes() == before
    assert temporaries(tmp_path) == []


@pytest.fixture
def mounted(tmp_path):
    """mount(options): a fresh tmpfs at tmp_path/mnt with those options (root, where the
    system allows it), unmounted at the end; else a skip saying why."""
    where = tmp_path / "mnt"
    where.mkdir()

    def mount(options: str) -> Path:
        made = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip() or made.returncode}")
        return where

    yield mount
    subprocess.run(["umount", str(where)], capture_output=True)


def test_a_full_file_system_keeps_the_previous_file(mounted):
    where = mounted("size=64k")
    gpunet.Network([2, 2], backend="numpy").save(where / "n.npz")
    before = (where / "n.npz").read_bytes()
    # 64·500 + 500·10 float32 parameters: 150 kB, over the 64 kB there
    args = [*TRAIN[:3], "--sizes", "64,500,10", "--epochs", "1", "--save", "n.npz"]
    result = gpunet_cli(*args, "--no-progress", cwd=where)
    assert_one_line(result, 3, "No space left on device", "free some space")
    assert (where / "n.npz").read_bytes() == before
    assert temporaries(where) == []


def test_a_read_only_file_system_is_refused_before_training(mounted):
    where = mounted("ro,size=64k")
    result = gpunet_cli(*TRAIN, "--history", "h.json", cwd=where)
    assert_one_line(result, 3, "--history 'h.json' cannot be written", "Read-only file system")
    assert "epoch" not in result.stdout


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a mode-555 directory anyway")
def test_an_unwritable_directory_is_refused_before_training(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = gpunet_cli(*TRAIN, "--save", str(locked / "n.npz"), cwd=tmp_path)
    assert_one_line(result, 3, "cannot be written", "Permission denied")
