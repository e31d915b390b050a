"""The package as pip installs it: one version, the typed marker in the wheel, matplotlib
only in the plot extra (every plot says so when it is missing, and `gpunet train` works
without it), the typed example, and an API reference that names the public API."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import gpunet
from gpunet import History, MissingExtraError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
PLOT_EXTRA = "pip install 'gpunet[plot]'"
# `gpunet ARGS` in a Python where matplotlib cannot be imported, as on a plain `pip install .`
WITHOUT_MATPLOTLIB = (
    "import sys; sys.modules['matplotlib'] = None\n"
    "from gpunet.tools.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def without_matplotlib(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_MATPLOTLIB, *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
        timeout=300,
    )


# --- one version ---------------------------------------------------------------------------


def test_the_version_has_one_source_which_gpunet_version_prints(tmp_path):
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    source = PYPROJECT["tool"]["hatch"]["version"]["path"]
    assert (ROOT / source).resolve() == Path(gpunet.__file__).resolve()
    assert re.fullmatch(r"\d+\.\d+\.\d+", gpunet.__version__)
    printed = subprocess.run(
        [sys.executable, "-m", "gpunet", "--version"],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert printed.strip() == f"gpunet {gpunet.__version__}"


def test_the_changelog_has_a_section_for_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    heading = rf"^## \[{re.escape(gpunet.__version__)}\] - \d{{4}}-\d\d-\d\d$"
    assert re.search(heading, changelog, re.M)


def test_the_wheel_carries_the_typed_marker_the_kernels_and_the_data(tmp_path):
    build = pytest.importorskip("hatchling.build", reason="the test extra brings hatchling")
    previous = Path.cwd()
    os.chdir(ROOT)  # a PEP 517 backend builds the project in the working directory
    try:
        wheel = tmp_path / build.build_wheel(str(tmp_path))
    finally:
        os.chdir(previous)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"gpunet-{gpunet.__version__}.dist-info/METADATA").decode()
    shipped = {"gpunet/py.typed", "gpunet/data/digits.csv.gz", "gpunet/kernels/elementwise.cu"}
    assert shipped <= names
    assert f"\nVersion: {gpunet.__version__}\n" in metadata
    requires = re.findall(r"^Requires-Dist: (.+)$", metadata, re.M)
    assert "matplotlib>=3.7; extra == 'plot'" in requires
    assert not [r for r in requires if r.startswith("matplotlib") and "extra" not in r]


def test_the_extras_the_readme_names_exist():
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    readme = (ROOT / "README.md").read_text()
    named = re.findall(r"'(?:gpunet|\.)\[([\w,-]+)\]'", readme)
    assert {"plot", "docs", "sklearn", "onnx", "cuda12x", "cuda13x"} <= set(named)
    for group in named:
        assert set(group.split(",")) <= extras, group
    assert PYPROJECT["project"]["optional-dependencies"]["plot"] == ["matplotlib>=3.7"]
    assert not [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("matplotlib")]


# --- matplotlib, the plot extra -------------------------------------------------------------


def test_the_library_and_the_command_line_import_no_matplotlib(tmp_path):
    code = "import sys, gpunet.tools.cli, gpunet.tools.bench; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=tmp_path
    )
    assert result.stdout.strip() == "False", result.stderr


def test_gpunet_train_works_without_matplotlib(tmp_path):
    result = without_matplotlib(
        "train", "--backend", "numpy", "--sizes", "64,16,10", "--epochs", "1", "--no-progress",
        "--json", "--history", "run.json", "--save", "net.npz", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"test_accuracy"' in result.stdout.splitlines()[-1]
    assert (tmp_path / "run.json").exists() and (tmp_path / "net.npz").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("plot", "run.json"),
        ("plot", "run.json", "-o", "run.png"),
        ("graph", "--sizes", "4,3,2", "-o", "graph.png"),
        ("explain", "--graph", "chain.png"),
        ("bench", "--shape", "nielsen", "--batch-sizes", "1", "--plot", "bench.png"),
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_a_plot_without_matplotlib_names_the_extra_before_any_work(args, tmp_path):
    history = History(sizes=[4, 3, 2])
    history.append({"cost": 1.0})
    history.save(tmp_path / "run.json")
    result = without_matplotlib(*args, cwd=tmp_path)
    assert result.returncode == 7, result.stderr
    assert result.stdout == ""  # nothing done first: no explanation, no benchmark table
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"gpunet {args[0]}: error: plots need matplotlib") and PLOT_EXTRA in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_history_plot_without_matplotlib_is_a_missing_extra_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.delitem(sys.modules, "gpunet.train.plots", raising=False)
    history = History()
    history.append({"cost": 1.0})
    with pytest.raises(MissingExtraError, match=re.escape(PLOT_EXTRA)) as caught:
        history.plot(tmp_path / "run.png")
    assert isinstance(caught.value, ModuleNotFoundError) and caught.value.name == "matplotlib"
    assert not (tmp_path / "run.png").exists()


# --- types and the API reference --------------------------------------------------------------


def test_the_typed_example_runs(tmp_path):
    """tests/typing_example.py is what CI type-checks with mypy --strict; here it runs."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        example = importlib.import_module("typing_example")
    finally:
        sys.path.remove(str(ROOT / "tests"))
    assert 0.5 < example.main(tmp_path) <= 1.0
    assert (ROOT / "gpunet" / "py.typed").exists()


def test_the_api_reference_documents_the_public_api_and_every_page_is_in_the_nav():
    api = (ROOT / "docs" / "api.md").read_text()
    documented = re.findall(r"^::: ([\w.]+)$", api, re.M)
    for name in documented:  # each resolves, as mkdocstrings will look it up
        module, _, attribute = name.rpartition(".")
        assert hasattr(importlib.import_module(module), attribute), name
    public = {name for name in gpunet.__all__ if name != "__version__"}
    assert public <= {name.rpartition(".")[2] for name in documented}
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert re.search(rf":\s*{page.name}$", nav, re.M), page.name
