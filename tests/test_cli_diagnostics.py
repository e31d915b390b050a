"""The drawing and explaining commands, on small inputs, through gpunet.cli.main."""

import pytest
from conftest import png_size
from test_cli import run
from test_plots import PANEL

import gpunet
from gpunet.tools.cli import main
from gpunet.tools.diagram import DPI, figure_inches

SMALL = ["--epochs", "2", "--sizes", "64,8,8,10", "--no-progress"]


def test_train_writes_a_history_with_diagnostics_that_plot_draws(tmp_path, capsys):
    history_path = tmp_path / "run.json"
    assert main(["train", *SMALL, "--history", str(history_path), "--diagnostics"]) == 0
    assert f"history written to {history_path}" in capsys.readouterr().out
    history = gpunet.History.load(history_path)
    assert history.epochs == 2 and len(history["gradient_norm"][0]) == 3
    assert history.meta["arguments"]["sizes"] == [64, 8, 8, 10]
    assert history.meta["data"].startswith("digits")

    assert main(["plot", str(history_path)]) == 0
    assert png_size(tmp_path / "run.png") == (3 * PANEL[0], PANEL[1])
    out = tmp_path / "two.png"
    assert main(["plot", str(history_path), str(history_path), "-o", str(out)]) == 0
    assert png_size(out) == (3 * PANEL[0], 2 * PANEL[1])


def test_train_without_diagnostics_records_none(tmp_path):
    assert main(["train", *SMALL, "--history", str(tmp_path / "h.json")]) == 0
    assert "gradient_norm" not in gpunet.History.load(tmp_path / "h.json")


@pytest.mark.parametrize("option", ["--history", "--save"])
def test_train_checks_where_it_writes_before_training(tmp_path, capsys, option):
    assert main(["train", *SMALL, option, str(tmp_path / "missing" / "out")]) == 3  # a file fault
    out, err = capsys.readouterr()
    assert f"no directory '{tmp_path / 'missing'}' to write {option}" in err
    assert "epoch" not in out  # no training ran


def test_graph_command_draws_the_network(tmp_path, capsys):
    out = tmp_path / "g.png"
    args = ["graph", "--sizes", "10,6,6,6,3", "--activations", "tanh,relu,gelu,softmax", "-o"]
    assert main([*args, str(out)]) == 0
    assert "written to" in capsys.readouterr().out
    width, height = figure_inches(4)
    assert png_size(out) == (int(width * DPI), int(height * DPI))


def test_explain_prints_the_chain(capsys):
    assert main(["explain", "--cost", "cross_entropy", "--w2", "-1.5"]) == 0
    out = capsys.readouterr().out
    assert "w2 = -1.5" in out and "dC/db1" in out and "(a2 − y) w2 σ'(z1)" in out


def test_gradcheck_timing_prints_one_row_per_width(capsys):
    args = ["gradcheck", "--timing", "--widths", "3,6", "--repeats", "1", "--samples", "2"]
    assert main(args) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert [row.split("]")[0] + "]" for row in rows] == ["[3, 3, 3]", "[6, 6, 6]"]
    assert [int(row.split()[3]) for row in rows] == [3 * 3 * 2 + 6, 6 * 6 * 2 + 12]


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["plot", "{tmp}/missing.json"], "No such file", 3),
        (["plot", "{tmp}/bad.json"], "not a gpunet history file", 4),
        (["graph", "-o", "{tmp}/g.jpg"], ".png", 2),
        (["graph", "--layer", "9", "-o", "{tmp}/g.png"], "layer must be", 2),
        (["explain", "--y", "3", "--cost", "cross_entropy"], "[0, 1]", 2),
        (["gradcheck", "--timing", "--widths", "0"], "sizes", 2),
    ],
)
def test_bad_arguments_and_files_are_one_line_and_an_exit_code(
    tmp_path, capsys, args, message, code
):
    (tmp_path / "bad.json").write_text("{}")
    assert main([arg.format(tmp=tmp_path) for arg in args]) == code
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_the_commands_run_as_a_user_runs_them(tmp_path):
    result = run(
        "graph", "--sizes", "4,3,2", "--activations", "sigmoid", "-o", str(tmp_path / "g.png")
    )
    assert result.returncode == 0, result.stderr
    assert png_size(tmp_path / "g.png") == tuple(int(v * DPI) for v in figure_inches(2))
