"""The spread of a bench cell's runs and the flags on cells not to believe, from synthetic
timings: nothing here depends on how noisy the machine running the tests is."""

from __future__ import annotations

import json

import pytest
from conftest import png_size
from matplotlib.figure import Figure

from gpunet.tools import bench
from gpunet.tools.bench import sweep, trust
from gpunet.tools.cli import main
from gpunet.train import plots

STEADY = [1.00, 1.01, 0.99, 1.02, 1.00]  # spread 3%


def cell(impl: str, seconds: list[float], batch_size: int = 64, mode: str = "train") -> dict:
    made = {"shape": "nielsen", "mode": mode, "impl": impl, "batch_size": batch_size}
    made.update(status="ok", reason=None, finite=None if impl.startswith("gemm") else True)
    sweep.timed(made, seconds, sweep.gemm_flops([784, 30, 10], batch_size, mode))
    return made


def record(cells: list[dict]) -> dict:
    sweep.relate(cells, "nielsen", "numpy")
    environment = {"gpunet": "test", "cpu": "synthetic"}
    return {
        "environment": environment,
        "backend_reason": "numpy (synthetic timings)",
        "settings": {"dtype": "float32"},
        "trust_limits": trust.LIMITS,
        "cells": cells,
    }


def clean() -> dict:
    """gpunet at two thirds of the ceiling, every cell's runs within a few percent."""
    ceiling = cell("gemm-numpy", [s * 1e-3 for s in STEADY])
    return record([ceiling, cell("gpunet-numpy", [s * 1.5e-3 for s in STEADY])])


def disturbed() -> dict:
    """The ceiling's runs slowed threefold (gpunet then 'beats' it), one cell's runs
    scattered, one cell timed only twice."""
    ceiling = cell("gemm-numpy", [s * 3e-3 for s in STEADY])
    beating = cell("gpunet-numpy", [s * 1e-3 for s in STEADY])
    scattered = cell("gemm-numpy", [1e-3, 1e-3, 1.5e-3, 2e-3, 2e-3], batch_size=256)
    twice = cell("gpunet-numpy", [3e-3, 3.1e-3], batch_size=256)
    return record([ceiling, beating, scattered, twice])


def test_the_spread_is_the_range_over_the_median():
    assert trust.spread([5.0, 1.0, 4.0, 2.0, 3.0]) == pytest.approx(4 / 3)
    assert trust.spread([2.0, 3.0]) == pytest.approx(1 / 2.5)
    assert trust.spread([1.0]) is None  # one run has no spread


def test_one_disturbed_run_of_five_flags_the_cell():
    # the median ignores the slow run, but the machine it ran on was not quiet
    runs = [1.0, 1.0, 1.01, 1.02, 1.3]
    assert trust.spread(runs) == pytest.approx(0.3 / 1.01)
    (reason,) = trust.trust(cell("gpunet-numpy", runs))
    assert reason == "spread 29.7% ((max - min)/median), over 20%"


def test_timed_records_the_runs_and_what_follows_from_them():
    made = cell("gpunet-numpy", [2e-3, 1e-3, 4e-3], batch_size=16)
    assert made["seconds_per_step"] == [2e-3, 1e-3, 4e-3]
    assert made["median_seconds"] == 2e-3
    assert made["range_over_median"] == pytest.approx((4e-3 - 1e-3) / 2e-3)
    assert made["samples_per_second"] == pytest.approx(16 / 2e-3)


def test_a_clean_record_is_trusted():
    cells = clean()["cells"]
    assert [c["trust"] for c in cells] == ["ok", "ok"]
    assert cells[1]["fraction_of_gemm_ceiling"] == pytest.approx(2 / 3)
    assert trust.flagged(cells) == []


def test_a_disturbed_record_is_flagged_with_its_reasons():
    ceiling, beating, scattered, twice = disturbed()["cells"]
    assert ceiling["trust"] == "ok"  # slowed evenly: only what it is compared with shows it
    assert beating["fraction_of_gemm_ceiling"] == pytest.approx(3)
    (reason,) = beating["trust"]
    assert "300.0% of the GEMM-only ceiling" in reason
    (reason,) = scattered["trust"]
    assert reason == "spread 66.7% ((max - min)/median), over 20%"
    assert len(twice["trust"]) == 1 and "2 timed runs, fewer than 3" in twice["trust"][0]
    assert trust.flagged([ceiling, beating, scattered, twice]) == [beating, scattered, twice]


def test_every_reason_at_once():
    ceiling = cell("gemm-numpy", [3e-3, 3e-3])
    both = cell("gpunet-numpy", [1e-3, 2e-3])
    record([ceiling, both])
    assert len(both["trust"]) == 3  # two runs, a 67% spread, 200% of the ceiling


def test_the_table_shows_the_spread_and_marks_flagged_cells():
    text = bench.table(disturbed())
    assert "| spread (max-min)/median |" in text.splitlines()[1]
    rows = {
        tuple(line.split(" | ")[:2]): line for line in text.splitlines() if line.startswith("| ")
    }
    assert "| 3% |" in rows["| 64", "gemm-numpy"]  # trusted: no mark
    assert (
        "| 3% |" in rows["| 64", "gpunet-numpy !"] and "| 300% |" in rows["| 64", "gpunet-numpy !"]
    )
    assert "| 67% |" in rows["| 256", "gemm-numpy !"]
    notes = [line for line in text.splitlines() if line.startswith("! ")]
    assert notes == [
        "! 64 gpunet-numpy: " + "; ".join(disturbed()["cells"][1]["trust"]),
        "! 256 gemm-numpy: spread 66.7% ((max - min)/median), over 20%",
        "! 256 gpunet-numpy: " + "; ".join(disturbed()["cells"][3]["trust"]),
    ]
    assert text.splitlines()[text.splitlines().index(notes[0]) - 1] == ""  # not a table row
    trusted = bench.table(clean())
    assert "!" not in trusted and "| 3% |" in trusted


def test_the_plot_marks_flagged_cells_and_writes_atomically(tmp_path, monkeypatch):
    drawn, save = [], plots.save_figure

    def saving(figure, path, dpi):  # through the atomic writer, keeping the figure to look at
        drawn.append(figure)
        return save(figure, path, dpi)

    monkeypatch.setattr(plots, "save_figure", saving)
    path = bench.plot(disturbed(), tmp_path / "bench.png")
    assert png_size(path) == (550, 380)
    (ax,) = drawn[0].axes
    hollow = [line for line in ax.get_lines() if line.get_markerfacecolor() == "none"]
    assert sorted(x for line in hollow for x in line.get_xdata()) == [64, 256, 256]
    monkeypatch.undo()
    with pytest.raises(ValueError, match="png"):
        bench.plot(clean(), tmp_path / "bench.jpg")  # checked before anything is drawn

    def interrupted(figure, file, **options):
        file.write(b"\x89PNG half an image")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", interrupted)
    with pytest.raises(OSError, match="No space"):
        bench.plot(clean(), tmp_path / "again.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.png"]  # nothing half-written


ARGS = ["bench", "--backend", "numpy", "--shape", "nielsen", "--no-progress"]


@pytest.mark.parametrize(("made", "warnings"), [(disturbed, 1), (clean, 0)])
def test_the_command_warns_once_about_flagged_cells(monkeypatch, capsys, tmp_path, made, warnings):
    monkeypatch.setattr(bench, "run", lambda settings, progress: made())
    out = tmp_path / "bench.json"
    assert main([*ARGS, "--json", str(out)]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == warnings
    if warnings:
        assert lines[0].startswith("warning: 3 of 4 measured cells are not to be trusted")
        for advice in ("quieter machine", "--repeats", "--min-seconds"):
            assert advice in lines[0]
    written = json.loads(out.read_text())
    assert written["trust_limits"]["max_spread"] == trust.MAX_SPREAD
    assert [c["trust"] for c in written["cells"]] == [c["trust"] for c in made()["cells"]]
