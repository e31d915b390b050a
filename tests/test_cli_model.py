"""The commands that use a saved model: `gpunet predict`, `gpunet evaluate`, `gpunet export`,
driven in-process through main(), and once as a user runs them (a subprocess)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gpunet
from gpunet import datasets
from gpunet.tools.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small softmax network trained on the digits' train part, saved; the test part."""
    X, y = datasets.digits()
    X_train, y_train, X_test, y_test = datasets.train_test_split(
        X, y, test_size=0.2, shuffle=True, seed=0
    )
    net = gpunet.Network([64, 16, 10], ["relu", "softmax"], backend="numpy", seed=0)
    net.fit(X_train, y_train, epochs=2, batch_size=32, lr=0.1, seed=0, progress=False)
    path = tmp_path_factory.mktemp("model") / "digits.npz"
    net.save(path)
    return str(path), net, X_test, y_test


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def failed(capsys, code: int, *argv: str) -> str:
    """The one stderr line of a command that fails with `code` (and prints nothing else)."""
    returned, out, err = cli(capsys, *argv)
    assert returned == code, err
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def predict(capsys, model: str, *options: str) -> str:
    code, out, err = cli(capsys, "predict", model, "--backend", "numpy", *options)
    assert code == 0, err
    return out


# predict


def test_predict_prints_the_labels_of_the_test_part_train_held_out(capsys, saved):
    model, net, X_test, _ = saved
    out = predict(capsys, model, "--data", "digits")
    assert [int(line) for line in out.split()] == net.predict(X_test).tolist()


def test_predict_json_is_one_object_with_the_predictions(capsys, saved):
    model, net, X_test, _ = saved
    record = json.loads(predict(capsys, model, "--data", "digits", "--json"))
    assert record["model"] == model and record["kind"] == "labels"
    assert record["rows"] == len(X_test) and "test part" in record["data"]
    assert record["predictions"] == net.predict(X_test).tolist()
    train = json.loads(predict(capsys, model, "--data", "digits", "--split", "train", "--json"))
    assert train["rows"] == 1797 - len(X_test) and "train part" in train["data"]


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
@pytest.mark.parametrize("proba", [False, True])
def test_predict_output_files_read_back_as_the_predictions(capsys, saved, tmp_path, suffix, proba):
    model, net, X_test, _ = saved
    out = tmp_path / f"predictions{suffix}"
    options = ["--proba"] if proba else []
    said = predict(capsys, model, "--data", "digits", "-o", str(out), *options)
    assert str(out) in said and f"{len(X_test)} predictions" in said
    expected = net.forward(X_test) if proba else net.predict(X_test)
    if suffix == ".npy":
        written = np.load(out, allow_pickle=False)
    else:
        written = np.loadtxt(out, delimiter=",", dtype=expected.dtype, ndmin=expected.ndim)
    # exactly: the CSV holds each float32 in the shortest form that reads back the same
    assert written.dtype == expected.dtype and (written == expected).all()


def test_predict_in_batches_gives_the_same_predictions(capsys, saved):
    model, net, X_test, _ = saved
    out = predict(capsys, model, "--data", "digits", "--proba", "--batch-size", "7")
    # BLAS may sum in another order for another batch: equal to float32 rounding
    outputs = np.loadtxt(out.splitlines(), delimiter=",", dtype=np.float32)
    assert np.allclose(outputs, net.forward(X_test), rtol=1e-5, atol=1e-7)
    labels = predict(capsys, model, "--data", "digits", "--batch-size", "7").split()
    assert [int(label) for label in labels] == net.predict(X_test).tolist()


def test_predict_reads_npy_npz_and_csv_files(capsys, saved, tmp_path):
    model, net, X_test, y_test = saved
    np.save(tmp_path / "X.npy", X_test)
    np.savez(tmp_path / "Xy.npz", X=X_test, y=y_test)
    header = ",".join([f"pixel{i}" for i in range(64)] + ["label"])
    np.savetxt(tmp_path / "d.csv", np.c_[X_test, y_test], delimiter=",", header=header, comments="")
    np.savetxt(tmp_path / "first.csv", np.c_[y_test, X_test], delimiter=",")
    expected = net.predict(X_test).tolist()
    for options in (
        ["--data", "X.npy"],
        ["--data", "Xy.npz"],
        ["--data", "d.csv", "--target-column", "-1"],
        ["--data", "first.csv", "--target-column", "0"],
    ):
        options[1] = str(tmp_path / options[1])
        record = json.loads(predict(capsys, model, *options, "--json"))
        assert record["predictions"] == expected, options


def test_predict_gives_the_outputs_of_a_network_that_scores_no_classes(capsys, tmp_path):
    net = gpunet.Network([3, 4, 2], ["tanh", "identity"], backend="numpy", seed=1)
    net.save(tmp_path / "regressor.npz")
    X = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    record = json.loads(
        predict(
            capsys, str(tmp_path / "regressor.npz"), "--data", str(tmp_path / "X.npy"), "--json"
        )
    )
    assert record["kind"] == "outputs"
    assert np.array(record["predictions"], dtype=np.float32).tolist() == net.forward(X).tolist()


# evaluate


def test_evaluate_json_equals_net_evaluate(capsys, saved):
    model, net, X_test, y_test = saved
    code, out, err = cli(
        capsys, "evaluate", model, "--data", "digits", "--backend", "numpy", "--json"
    )
    assert code == 0, err
    record = json.loads(out)
    expected = net.evaluate(X_test, y_test)
    assert record["cost"] == pytest.approx(expected["cost"], rel=1e-12)
    assert record["accuracy"] == expected["accuracy"]
    assert record["rows"] == len(X_test) and record["cost_function"] == "log_likelihood"
    quadratic = json.loads(
        cli(
            capsys,
            "evaluate",
            model,
            "--data",
            "digits",
            "--cost",
            "quadratic",
            "--backend",
            "numpy",
            "--json",
        )[1]
    )
    assert quadratic["cost"] == pytest.approx(net.evaluate(X_test, y_test, "quadratic")["cost"])


def test_evaluate_prints_a_short_table(capsys, saved):
    model, net, X_test, y_test = saved
    code, out, _ = cli(capsys, "evaluate", model, "--data", "digits", "--backend", "numpy")
    accuracy = net.evaluate(X_test, y_test)["accuracy"]
    assert code == 0 and re.search(rf"^accuracy\s+{accuracy:.4f}$", out, flags=re.M), out
    assert re.search(r"^cost\s+\S+ \(log_likelihood\)$", out, flags=re.M), out


def test_evaluate_reads_the_labels_of_a_csv_file(capsys, saved, tmp_path):
    model, net, X_test, y_test = saved
    X, y = X_test[:50], y_test[:50]
    np.savetxt(tmp_path / "last.csv", np.c_[X, y], delimiter=",")
    np.savetxt(tmp_path / "first.csv", np.c_[y, X], delimiter=",")
    for options in (["last.csv"], ["first.csv", "--target-column", "0"]):
        code, out, err = cli(
            capsys, "evaluate", model, "--data", str(tmp_path / options[0]), *options[1:], "--json"
        )
        assert code == 0, err
        assert json.loads(out)["accuracy"] == net.evaluate(X, y)["accuracy"]


# export


def test_export_writes_an_onnx_model_onnxruntime_runs_alike(capsys, saved, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    model, net, X_test, _ = saved
    code, out, err = cli(capsys, "export", model, "--onnx", str(tmp_path / "digits.onnx"))
    assert code == 0 and "digits.onnx" in out, err
    session = onnxruntime.InferenceSession(
        str(tmp_path / "digits.onnx"), providers=["CPUExecutionProvider"]
    )
    (outputs,) = session.run(None, {"X": X_test})
    assert np.allclose(outputs, net.forward(X_test), atol=1e-6)


def test_export_without_onnx_names_the_extra_to_install(capsys, saved, tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnx" else find_spec(name, *a),
    )
    err = failed(capsys, 7, "export", saved[0], "--onnx", str(tmp_path / "net.onnx"))
    assert "pip install 'gpunet[onnx]'" in err
    assert not (tmp_path / "net.onnx").exists()


# faults: one line and the exit code, before any work


def test_a_missing_model_is_exit_3(capsys, tmp_path):
    err = failed(capsys, 3, "predict", str(tmp_path / "none.npz"), "--data", "digits")
    assert "none.npz" in err and "No such file" in err


def test_a_file_that_is_no_model_is_exit_4(capsys, tmp_path):
    (tmp_path / "notes.npz").write_text("not a model")
    for command in ("predict", "evaluate"):
        err = failed(capsys, 4, command, str(tmp_path / "notes.npz"), "--data", "digits")
        assert "is not a gpunet model file" in err


def test_a_model_whose_inputs_are_not_the_data_columns_is_exit_2(capsys, saved, tmp_path):
    np.savez(tmp_path / "Xy.npz", X=np.zeros((3, 10), np.float32), y=np.zeros(3, np.int64))
    for command in ("predict", "evaluate"):
        err = failed(capsys, 2, command, saved[0], "--data", str(tmp_path / "Xy.npz"))
        assert "64 inputs" in err and "10 columns" in err
    np.savetxt(tmp_path / "labelled.csv", np.zeros((3, 65)), delimiter=",")
    err = failed(capsys, 2, "predict", saved[0], "--data", str(tmp_path / "labelled.csv"))
    assert "65 columns" in err and "--target-column" in err


def test_a_directory_as_output_is_exit_3_before_any_work(capsys, saved, tmp_path, monkeypatch):
    monkeypatch.setattr(gpunet.tools.cli.model, "load", pytest.fail)  # no model is read
    err = failed(capsys, 3, "predict", saved[0], "--data", "digits", "-o", str(tmp_path))
    assert "is a directory" in err


def test_an_output_of_another_kind_is_exit_2(capsys, saved, tmp_path):
    err = failed(capsys, 2, "predict", saved[0], "--data", "digits", "-o", str(tmp_path / "p.txt"))
    assert ".npy or .csv" in err and not (tmp_path / "p.txt").exists()


class Planted:
    """A pickle that, if it were ever loaded, would create a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def hostile_files(directory: Path) -> dict[str, Path]:
    """Data files that are not arrays of numbers, each with what must not come of it."""
    X = np.zeros((4, 64), np.float32)
    files = {
        name: directory / name
        for name in (
            "pickle.npy",
            "pickle.npz",
            "truncated.npy",
            "strings.npy",
            "words.csv",
            "ragged.csv",
            "empty.csv",
            "no_X.npz",
            "one_d.npy",
            "binary.csv",
        )
    }
    np.save(files["pickle.npy"], np.array([Planted(directory / "ran")], dtype=object))
    np.savez(files["pickle.npz"], X=np.array([Planted(directory / "ran")], dtype=object))
    np.save(files["truncated.npy"], X)
    files["truncated.npy"].write_bytes(files["truncated.npy"].read_bytes()[:200])
    np.save(files["strings.npy"], np.full((4, 64), "x"))
    files["words.csv"].write_text("1,2\nthree,four\n")
    files["ragged.csv"].write_text("1,2,3\n4,5\n")
    files["empty.csv"].write_text("")
    np.savez(files["no_X.npz"], features=X)
    np.save(files["one_d.npy"], np.zeros(64, np.float32))
    files["binary.csv"].write_bytes(bytes(range(256)) * 4)
    return files


def test_data_files_that_are_not_arrays_of_numbers_are_exit_4_and_run_nothing(
    capsys, saved, tmp_path
):
    for name, path in hostile_files(tmp_path).items():
        err = failed(capsys, 4, "predict", saved[0], "--data", str(path))
        assert str(path) in err, name
    assert not (tmp_path / "ran").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_pipe_as_data_is_exit_4_not_a_hang(capsys, saved, tmp_path):
    os.mkfifo(tmp_path / "pipe.npy")
    assert "a device, pipe or socket" in failed(
        capsys, 4, "predict", saved[0], "--data", str(tmp_path / "pipe.npy")
    )


def test_evaluate_needs_labels_and_split_needs_a_split(capsys, saved, tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((3, 64), np.float32))
    assert "features only" in failed(
        capsys, 4, "evaluate", saved[0], "--data", str(tmp_path / "X.npy")
    )
    err = failed(
        capsys, 2, "predict", saved[0], "--data", str(tmp_path / "X.npy"), "--split", "test"
    )
    assert "--split" in err


# train reads the same files


def test_train_learns_from_an_npz_file_and_refuses_real_valued_targets(capsys, tmp_path):
    X, y = datasets.digits()
    np.savez(tmp_path / "digits.npz", X=X, y=y)
    code, out, err = cli(
        capsys,
        "train",
        "--data",
        str(tmp_path / "digits.npz"),
        "--epochs",
        "2",
        "--backend",
        "numpy",
        "--no-progress",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["test_examples"] == round(0.2 * len(X))
    np.savetxt(tmp_path / "real.csv", np.c_[X[:20], np.linspace(0, 1, 20)], delimiter=",")
    assert "class labels" in failed(capsys, 2, "train", "--data", str(tmp_path / "real.csv"))


# as a user runs them


def test_the_readme_commands_run_as_written(tmp_path):
    section = (ROOT / "README.md").read_text().split("## Using a saved model\n")[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for line in block.strip().splitlines():
        argv = shlex.split(line, comments=True)
        assert argv[0] == "gpunet", line
        result = subprocess.run(
            [sys.executable, "-m", "gpunet", *argv[1:]],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )
        assert result.returncode == 0, (line, result.stderr)
    assert (tmp_path / "p.csv").exists() and (tmp_path / "digits.onnx").exists()


def test_a_reader_that_stops_early_is_no_error(saved):
    # more than a pipe's buffer of outputs, so that the writer meets the closed pipe
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "gpunet",
        "predict",
        saved[0],
        "--data",
        "digits",
        "--split",
        "train",
        "--proba",
        "--backend",
        "numpy",
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as process:
        first = process.stdout.readline()
        process.stdout.close()
        err = process.stderr.read().decode()
        process.wait(timeout=300)
    assert len(first.split(b",")) == 10
    assert process.returncode == 0 and err == "", err
