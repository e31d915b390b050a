"""A second hostile pass (issue 14): the saved-model commands and their data reader, fit's
Keras pieces, odd Python inputs. Each case is a named error before anything changes, or the
right result, never a traceback nor an error that does not say which file or argument."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gpunet
from gpunet import EarlyStopping, SaveBest
from gpunet.core.parameters import host_memory
from gpunet.tools.cli import main
from gpunet.train.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
X = np.random.default_rng(0).random((20, 4)).astype(np.float32)
y = np.arange(20) % 3


def classifier() -> gpunet.Network:
    return gpunet.Network([4, 5, 3], ["relu", "softmax"], backend="numpy", seed=0)


@pytest.fixture
def models(tmp_path, monkeypatch):
    """A classifier and a regression saved in tmp_path, the working directory."""
    monkeypatch.chdir(tmp_path)
    classifier().save("clf.npz")
    gpunet.Network([4, 5, 1], ["relu", "identity"], backend="numpy", seed=0).save("reg.npz")
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--backend", "numpy"] if argv[0] != "train" else list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    return code, out, err


# --- the data reader, through evaluate ------------------------------------------------------

CSV = {
    "quoted fields": ('"1","2","3","4","0"\n"1","2","3","4","1"\n', 0, "2 rows"),
    "a byte-order mark": ("\ufeff1,2,3,4,0\n1,2,3,4,1\n", 0, "2 rows"),
    "a header under a byte-order mark": ("\ufeffa,b,c,d,e\n1,2,3,4,0\n", 0, "1 rows"),
    "header only": ("a,b,c,d,e\n", 4, "only 'a,b,c,d,e'"),
    "semicolons": ("1;2;3;4;0\n", 4, "only '1;2;3;4;0'"),
    "a trailing comma": ("1,2,3,4,0,\n", 4, "comma-separated numbers, only"),
    "one column": ("1\n2\n", 2, "d.csv has 1 column: its labels"),
    "NaN text": ("1,2,3,nan,0\n", 2, "--data d.csv: X contains NaN"),
    "beyond float64": ("1,2,3,1e400,0\n", 2, "--data d.csv: X contains NaN or inf"),
    "beyond float32": ("1,2,3,1e300,0\n", 2, "--data d.csv: X contains NaN or inf"),
    "a negative label": ("1,2,3,4,-1\n", 2, "--data d.csv: Y has labels outside 0..2"),
    "a label too large": ("1,2,3,4,1\n1,2,3,4,1e30\n", 2, "holds 1e+30, not a class label"),
    "a fractional label": ("1,2,3,4,0.5\n", 2, "--data d.csv: its label column holds 0.5"),
    "ragged rows": ("1,2,3,4,0\n1,2,3\n", 4, "not a CSV file"),
    "empty": ("", 4, "it holds no rows"),
}


@pytest.mark.parametrize("case", list(CSV))
def test_odd_csv_files(capsys, models, case):
    text, code, said = CSV[case]
    Path("d.csv").write_text(text, encoding="utf-8")
    returned, out, err = run(capsys, "evaluate", "clf.npz", "--data", "d.csv")
    assert returned == code and said in (out if code == 0 else err), (out, err)


def test_non_utf8_bytes_are_a_format_error(capsys, models):
    Path("d.csv").write_bytes(b"a\xe9,b,c,d,e\n1,2,3,4,0\n")
    code, _, err = run(capsys, "evaluate", "clf.npz", "--data", "d.csv")
    assert code == 4 and "d.csv is not a CSV file" in err


@pytest.mark.parametrize(
    ("y_file", "said"),
    [
        (y.astype(float), "--data d.npz: Y of shape (20,) must be integer class labels"),
        (-y, "--data d.npz: Y has labels outside"),
        (np.zeros((20, 3, 1)), "--data d.npz: Y must be labels"),
        (np.array(list("a" * 20)), "d.npz is not an .npz file"),
    ],
)
def test_bad_labels_in_an_npz_name_the_file(capsys, models, y_file, said):
    np.savez("d.npz", X=X, y=y_file)
    code, _, err = run(capsys, "evaluate", "clf.npz", "--data", "d.npz")
    assert code in (2, 4) and said in err, err


def test_whole_number_targets_of_a_regression_are_targets_not_labels(capsys, models):
    Path("d.csv").write_text("1,2,3,4,150\n1,2,3,4,2\n")
    net = gpunet.load("reg.npz", backend="numpy")
    expected = net.evaluate(np.array([[1, 2, 3, 4]] * 2), np.array([[150.0], [2.0]]))
    code, out, _ = run(capsys, "evaluate", "reg.npz", "--data", "d.csv", "--json")
    assert code == 0 and f'"cost": {expected["cost"]}' in out


@pytest.mark.parametrize(
    ("array", "said"),
    [
        (np.full((2, 4), np.nan), "--data d.npy: X contains NaN or inf"),
        (np.full((2, 4), 1e300), "--data d.npy: X contains NaN or inf"),
        (np.zeros((2, 2, 4)), "d.npy is not a .npy file"),
        (np.zeros((0, 4)), "it holds no rows"),
        (np.zeros(3, dtype=[("a", "f4")]), "d.npy is not a .npy file"),
    ],
)
def test_bad_feature_arrays_name_the_file(capsys, models, array, said):
    np.save("d.npy", array)
    code, _, err = run(capsys, "predict", "clf.npz", "--data", "d.npy")
    assert code in (2, 4) and said in err, err


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.float16, np.uint64])
def test_any_real_dtype_and_fortran_order_predict_as_float32(capsys, models, dtype):
    features = np.asfortranarray((X * 2).astype(dtype))
    np.save("d.npy", features)
    code, out, _ = run(capsys, "predict", "clf.npz", "--data", "d.npy")
    expected = classifier().predict(features.astype(np.float32))
    assert code == 0 and np.loadtxt(out.splitlines(), dtype=int).tolist() == expected.tolist()


def test_a_model_given_as_a_checkpoint_says_it_holds_no_training_state(capsys, models):
    argv = ["train", "--data", "digits", "--epochs", "1", "--no-progress", "--sizes", "64,10"]
    Path("m.npz").write_bytes(Path("clf.npz").read_bytes())
    code, _, err = run(capsys, *argv, "--checkpoint", "m.npz", "--resume")
    assert code == 4 and "holds no training state" in err
    assert Path("m.npz").read_bytes() == Path("clf.npz").read_bytes()


# --- stdout ---------------------------------------------------------------------------------


def gpunet_command(*argv: str, **options) -> subprocess.Popen:
    # unbuffered: the first line already meets a reader that is gone
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "gpunet", *argv]
    options.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(command, env=env, text=True, **options)


def test_a_closed_stdout_is_one_line_exit_3_before_any_work(models):
    with gpunet_command(
        "train", "--data", "digits", "--save", "t.npz", preexec_fn=lambda: os.close(1)
    ) as process:
        err = process.stderr.read()
    assert process.returncode == 3 and "stdout is closed" in err, err
    assert not Path("t.npz").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "clf.npz", "--data", "d.npz", "--json"],
        ["evaluate", "clf.npz", "--data", "d.npz"],
        ["train", "--data", "digits", "--epochs", "2", "--no-progress", "--save", "t.npz"],
    ],
    ids=["predict", "evaluate", "train"],
)
def test_a_reader_that_stops_early_is_no_error_and_the_work_is_done(models, argv):
    np.savez("d.npz", X=np.repeat(X, 500, axis=0), y=np.repeat(y, 500))
    with gpunet_command(*argv, "--backend", "numpy", stdout=subprocess.PIPE) as process:
        process.stdout.close()  # before the command writes its first line
        err = process.stderr.read()
    assert process.returncode == 0 and err == "", err
    assert argv[0] != "train" or gpunet.load("t.npz", backend="numpy").sizes == [64, 30, 10]


# --- the Python API -------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[4, 10**12], [100_000] * 3, [2**62, 2**62]])
def test_sizes_beyond_the_hosts_memory_are_refused_before_allocating(sizes):
    if host_memory() is None:
        pytest.skip("the system does not say its memory")
    with pytest.raises(MemoryError, match=r"sizes \[.*parameters.*GiB"):
        gpunet.Network(sizes, backend="numpy")


@pytest.mark.parametrize(
    ("callbacks", "options", "error", "said"),
    [
        ([EarlyStopping], {}, TypeError, r"the class EarlyStopping: pass EarlyStopping\(...\)"),
        ([SaveBest("same.npz")], {"checkpoint": "same.npz"}, ValueError, "the same file"),
        ([SaveBest("b.npz"), SaveBest("./b.npz", "accuracy")], {}, ValueError, "the same file"),
        ([SaveBest(".")], {}, IsADirectoryError, "SaveBest path '.' is a directory"),
        ([SaveBest("none/b.npz")], {}, FileNotFoundError, "no directory 'none'"),
        ([EarlyStopping("epoch")], {}, ValueError, "monitor='epoch' is not a metric"),
    ],
)
def test_bad_callbacks_are_refused_before_training(models, callbacks, options, error, said):
    net = classifier()
    before = net.params.copy()
    with pytest.raises(error, match=said):
        net.fit(X, y, epochs=2, progress=False, callbacks=callbacks, **options)
    np.testing.assert_array_equal(net.params, before)
    assert not any(Path(name).exists() for name in ("same.npz", "b.npz"))


@pytest.mark.parametrize(
    ("patience", "error"),
    [(-1, ValueError), (1.5, TypeError), (True, TypeError), (2.0, TypeError), ("2", TypeError)],
)
def test_patience_is_a_whole_number_of_epochs(patience, error):
    with pytest.raises(error, match="patience must be an integer"):
        EarlyStopping(patience=patience)


def test_patience_as_a_numpy_integer_counts_like_an_int():
    assert EarlyStopping(patience=np.int64(2)).patience == 2
    assert type(EarlyStopping(patience=np.int64(2)).patience) is int


def test_one_example_as_a_vector_is_told_how_to_reshape():
    with pytest.raises(ValueError, match=r"got \(4,\); one example is X.reshape\(1, -1\)"):
        classifier().predict(X[0])


def test_a_target_column_for_the_digits_is_refused_not_ignored(capsys, models):
    code, _, err = run(capsys, "train", "--data", "digits", "--target-column", "3")
    assert code == 2 and "--target-column applies to a .csv file, not to 'digits'" in err


def test_a_closed_stderr_keeps_the_error_out_of_stdout(models):
    with gpunet_command(
        "predict",
        "clf.npz",
        "--data",
        "none.csv",
        stdout=subprocess.PIPE,
        stderr=None,
        preexec_fn=lambda: os.close(2),
    ) as process:
        out = process.stdout.read()
    assert process.returncode == 3 and out == ""


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="a character device")
@pytest.mark.parametrize("read", ["model", "checkpoint", "cli"])
def test_a_device_as_a_model_or_checkpoint_is_refused_unread(capsys, models, read):
    # /dev/zero feeds a reader without end: read, it would exhaust memory
    if read == "model":
        with pytest.raises(gpunet.FileFormatError, match="/dev/zero is not a gpunet model"):
            gpunet.load("/dev/zero", backend="numpy")
    elif read == "checkpoint":
        with pytest.raises(gpunet.FileFormatError, match="a device, pipe or socket"):
            read_checkpoint("/dev/zero")
    else:
        code, _, err = run(capsys, "predict", "/dev/zero", "--data", "digits")
        assert code == 4 and "a device, pipe or socket" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "d.npz", "--save", "./d.npz"],
        ["train", "--data", "d.npz", "--checkpoint", "d.npz"],
        ["predict", "clf.npz", "--data", "d.csv", "-o", "d.csv"],
    ],
)
def test_an_output_onto_a_file_the_command_reads_is_refused(capsys, models, argv):
    np.savez("d.npz", X=X, y=y)
    Path("d.csv").write_text("1,2,3,4\n")
    inputs = {name: Path(name).read_bytes() for name in ("d.npz", "d.csv")}
    code, _, err = run(capsys, *argv)
    assert code == 2 and "is also the data read" in err, err
    assert inputs == {name: Path(name).read_bytes() for name in inputs}
