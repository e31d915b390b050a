"""The `gpunet` command, run as a user runs it: in a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gpunet
from gpunet.core.backends import select_backend

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "gpunet", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_train_default_learns_the_digits_and_prints_json_last(tmp_path):
    result = run("train", "--json", "--save", str(tmp_path / "net.npz"))
    assert result.returncode == 0, result.stderr
    # stdout is the JSON line alone; the human report went to stderr
    assert len(result.stdout.strip().splitlines()) == 1
    report = last_json(result.stdout)
    for key in ("test_accuracy", "test_cost", "epochs", "seconds", "backend"):
        assert key in report
    assert report["backend"] == "numpy" and report["epochs"] == 30
    assert report["test_accuracy"] >= 0.95
    assert "test accuracy" in result.stderr and "backend: numpy (auto:" in result.stderr
    # the saved network reproduces the reported accuracy on the same split
    X, y = gpunet.datasets.digits()
    *_, X_test, y_test = gpunet.datasets.train_test_split(X, y, test_size=0.2, shuffle=True, seed=0)
    net = gpunet.load(tmp_path / "net.npz", backend="numpy")
    assert net.evaluate(X_test, y_test)["accuracy"] == pytest.approx(report["test_accuracy"])


def test_train_prints_one_line_per_epoch_on_stdout_without_json():
    result = run("train", "--epochs", "3", "--activations", "relu,softmax", "--optimizer", "adam")
    assert result.returncode == 0, result.stderr
    epochs = [line for line in result.stdout.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 3 and "test accuracy" in epochs[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--lr", "0"], "lr must be"),
        (["train", "--batch-size", "0"], "batch_size"),
        (["train", "--epochs", "-1"], "epochs"),
        (["train", "--sizes", "10,30,10"], "--sizes must start with 64"),
        (["train", "--activations", "nope"], "unknown activation"),
        (["train", "--activations", "relu", "--cost", "cross_entropy"], "cross_entropy"),
    ],
)
def test_bad_arguments_give_one_clear_line_and_exit_2(args, message):
    result = run(*args, "--no-progress")
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_data_exits_3_naming_what_was_sought():
    result = run("train", "--data", "/nonexistent/mnist", "--no-progress")
    assert result.returncode == 3
    assert "train-images-idx3-ubyte" in result.stderr and "Traceback" not in result.stderr


def test_an_unavailable_backend_exits_5():
    try:
        select_backend("cupy")
    except gpunet.BackendUnavailableError:
        pass
    else:
        pytest.skip("CuPy runs here: the backend is available")
    result = run("train", "--backend", "cupy", "--no-progress")
    assert result.returncode == 5
    assert "CuPy" in result.stderr and "Traceback" not in result.stderr


def test_gradcheck_command_passes_and_reports_the_error():
    result = run("gradcheck", "--sizes", "5,4,3", "--activations", "gelu,softmax")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("gradcheck ok: max relative error")


def test_gradcheck_command_fails_with_an_impossible_tolerance():
    result = run("gradcheck", "--tolerance", "1e-30")
    assert result.returncode == 1 and "FAILED" in result.stdout


def test_help_lists_every_command_in_order_and_version_names_the_release():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    assert (
        "{train,predict,evaluate,export,gradcheck,bench,plot,graph,explain,jacobians,passes,info,doctor}"
        in result.stdout
    )
    assert "draw a network's forward and backward graph" in result.stdout
    usage = run("gradcheck", "--help")
    assert usage.returncode == 0 and usage.stdout.startswith("usage: gpunet gradcheck")
    assert "--activations" in usage.stdout and "--timing" in usage.stdout
    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"gpunet {gpunet.__version__}"


def test_info_names_the_backend_and_why():
    result = run("info")
    assert result.returncode == 0, result.stderr
    assert "backend: numpy (auto: " in result.stdout
    assert f"numpy: {np.__version__}" in result.stdout


@pytest.mark.slow
def test_train_on_the_real_mnist_test_set():
    if not MNIST.is_dir():
        pytest.skip(f"real MNIST not present at {MNIST} (only the project's machines have it)")
    result = run("train", "--data", str(MNIST), "--epochs", "2", "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    report = last_json(result.stdout)
    assert (report["train_examples"], report["test_examples"]) == (8000, 2000)
    assert report["test_accuracy"] >= 0.85
