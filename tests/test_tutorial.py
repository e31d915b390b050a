"""docs/tutorial.md quotes its committed outputs faithfully, and every file it names exists."""

import json
import re
from pathlib import Path

import pytest
from conftest import png_size

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIAL = (DOCS / "tutorial.md").read_text()


def result(name: str) -> dict:
    """The JSON result on the last line of a committed training output."""
    return json.loads((DOCS / "tutorial" / name).read_text().strip().splitlines()[-1])


ACCURACIES = re.findall(r"\| (0\.\d{4}) \| \[([\w-]+\.txt)\]", TUTORIAL)


def test_the_tables_quote_some_accuracies():
    assert len(ACCURACIES) == 10


@pytest.mark.parametrize(("quoted", "name"), ACCURACIES)
def test_each_quoted_accuracy_is_the_one_its_file_records(quoted, name):
    assert quoted == f"{result(name)['test_accuracy']:.4f}"


def test_every_linked_file_and_picture_exists():
    links = re.findall(r"\]\((tutorial/[^)]+)\)", TUTORIAL)
    assert len(links) > 15
    for link in links:
        assert (DOCS / link).is_file(), link
    for picture in re.findall(r"!\[[^]]*\]\((tutorial/[^)]+\.png)\)", TUTORIAL):
        width, height = png_size(DOCS / picture)
        assert width > 1000 and height > 600


def test_each_output_records_its_command():
    for path in (DOCS / "tutorial").glob("*.txt"):
        assert path.read_text().startswith("$ gpunet "), path.name


def test_the_timing_table_is_the_committed_one():
    rows = [line.split() for line in (DOCS / "tutorial" / "timing.txt").read_text().splitlines()]
    recorded = [row for row in rows if row and row[0].startswith("[")]
    quoted = re.findall(
        r"^\| (\[[\d, ]+\]) \| (\d+) \| (\S+) \| (\S+) \| (\d+) \|$", TUTORIAL, re.M
    )
    assert len(quoted) == len(recorded) == 5
    for (sizes, *numbers), row in zip(quoted, recorded):
        assert sizes.replace(" ", "") == "".join(row[:3]) and numbers == row[3:]


def test_the_vanishing_gradient_figures_are_those_of_the_histories():
    sigmoid = json.loads((DOCS / "tutorial" / "deep-sigmoid.json").read_text())["metrics"]
    first_epoch = sigmoid["gradient_norm"][0]
    assert f"from {first_epoch[0]:.4f} in layer 1" in TUTORIAL
    assert f"{first_epoch[-1]:.2f} in layer 5" in TUTORIAL
    assert first_epoch[-1] / first_epoch[0] > 100
    assert f"reaches {100 * result('deep-relu.txt')['test_accuracy']:.1f}%" in TUTORIAL
    assert f"{100 * result('deep-sigmoid.txt')['test_accuracy']:.1f}% after ten" in TUTORIAL
