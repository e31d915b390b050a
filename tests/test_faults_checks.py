"""Faults a hostile user meets: the CLI's one-line errors and exit codes, output paths checked
before any work, flags and arguments named when wrong, what a failed fit leaves behind."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from gpunet import datasets
from gpunet.core.checks import check_output_path
from gpunet.core.network import Network
from gpunet.tools.cli import main


def cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"gpunet {command}: error: "), err
    assert "Traceback" not in err
    return lines[0]


def small_net() -> Network:
    return Network([4, 3, 2], backend="numpy", seed=0)


def small_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((12, 4)), rng.integers(0, 2, 12)


# output paths


def test_check_output_path_refuses_a_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        check_output_path("--save", tmp_path)


def test_check_output_path_refuses_a_path_under_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
        check_output_path("--save", tmp_path / "file" / "model.npz")


@pytest.mark.skipif(os.name != "posix", reason="chmod")
def test_check_output_path_refuses_an_unwritable_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK) and os.geteuid() == 0:
            pytest.skip("root writes anywhere on this file system")
        with pytest.raises(PermissionError, match="cannot write --save"):
            check_output_path("--save", locked / "model.npz")
    finally:
        locked.chmod(0o700)
    assert list(locked.iterdir()) == []  # the probe file is gone


def test_check_output_path_leaves_no_probe_behind(tmp_path):
    assert check_output_path("--save", tmp_path / "m.npz") == tmp_path / "m.npz"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--epochs", "1", "--save", "{dir}"],
        ["train", "--epochs", "1", "--history", "{dir}"],
        ["train", "--epochs", "1", "--checkpoint", "{dir}"],
        ["graph", "-o", "{dir}"],
        ["bench", "--json", "{dir}"],
        ["bench", "--plot", "{dir}"],
        ["passes", "--json", "{dir}"],
        ["explain", "--graph", "{dir}"],
    ],
)
def test_cli_refuses_a_directory_as_output_before_any_work(capsys, tmp_path, argv):
    argv = [part.format(dir=tmp_path) for part in argv]
    code, err = cli(capsys, *argv)
    assert code == 3
    line = one_error_line(err, argv[0])
    assert str(tmp_path) in line and "is a directory" in line
    assert capsys.readouterr().out == ""  # no work was reported
    assert list(tmp_path.iterdir()) == []


def test_plot_refuses_a_directory_output(capsys, tmp_path):
    history = tmp_path / "h.json"
    history.write_text("{}")
    out = tmp_path / "out"
    out.mkdir()
    code, err = cli(capsys, "plot", str(history), "-o", str(out))
    assert code == 3
    assert "is a directory" in one_error_line(err, "plot")


# the CLI's one mechanism for user faults


def test_cli_names_an_unreadable_data_file(capsys, tmp_path):
    missing = tmp_path / "none.pkl.gz"
    code, err = cli(capsys, "train", "--data", str(missing))
    assert code == 3
    assert str(missing) in one_error_line(err, "train")


@pytest.mark.parametrize(
    "name, content",
    [
        ("bad.pkl", os.urandom(64)),
        ("bad.pkl.gz", gzip.compress(b"abc")),
        ("cut.pkl.gz", gzip.compress(b"\x80\x04" + b"x" * 100)[:20]),
        ("notgzip.pkl.gz", b"plain bytes, not gzip"),
        ("empty.pkl", b""),
        ("train-images-idx3-ubyte", (2051).to_bytes(4, "big") + b"\0" * 12),
    ],
)
def test_bad_data_files_are_one_line_naming_the_file(capsys, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=str(path)):
        datasets.mnist(path)
    code, err = cli(capsys, "train", "--data", str(path))
    assert code == 4
    assert str(path) in one_error_line(err, "train")


def test_exit_codes_are_in_the_help():
    result = subprocess.run(
        [sys.executable, "-m", "gpunet", "--help"], capture_output=True, text=True, check=True
    )
    for code in ("0", "1", "2", "3", "4", "130"):
        assert f"  {code} " in result.stdout


# arguments named when wrong


@pytest.mark.parametrize("name", ["shuffle", "progress"])
@pytest.mark.parametrize("value", ["no", 1, None])
def test_fit_flags_must_be_bools(name, value):
    net = small_net()
    before = net.params.copy()
    with pytest.raises(TypeError, match=name):
        net.fit(*small_data(), epochs=1, batch_size=4, lr=0.5, **{name: value})
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("seed, error", [("abc", TypeError), (-1, ValueError), (1.5, TypeError)])
def test_fit_seed_is_checked(seed, error):
    with pytest.raises(error, match="seed"):
        small_net().fit(*small_data(), epochs=1, batch_size=4, lr=0.5, seed=seed, progress=False)


def test_set_params_none_names_the_argument():
    with pytest.raises(TypeError, match="weights"):
        small_net().set_params(None, None)


def test_train_test_split_none_names_the_argument():
    with pytest.raises(TypeError, match="X"):
        datasets.train_test_split(None, np.zeros(3), test_size=1)


def test_resume_from_a_missing_checkpoint_names_it(tmp_path):
    path = tmp_path / "none.npz"
    with pytest.raises(FileNotFoundError, match=r"none\.npz"):
        small_net().fit(
            *small_data(),
            epochs=1,
            batch_size=4,
            lr=0.5,
            checkpoint=path,
            resume=True,
            progress=False,
        )


def test_fit_checkpoint_refuses_a_directory(tmp_path):
    with pytest.raises(IsADirectoryError):
        small_net().fit(
            *small_data(), epochs=1, batch_size=4, lr=0.5, checkpoint=tmp_path, progress=False
        )


# what a failed fit leaves behind


def test_a_raising_callback_keeps_the_finished_epochs():
    def stop_at_two(epoch, metrics):
        if epoch == 2:
            raise RuntimeError("callback failed")

    net = small_net()
    with pytest.raises(RuntimeError, match="callback failed") as caught:
        net.fit(
            *small_data(),
            epochs=5,
            batch_size=4,
            lr=0.5,
            callbacks=[stop_at_two],
            progress=False,
            seed=0,
        )
    history = caught.value.history
    assert history.epochs == 2  # the epoch the callback saw had finished
