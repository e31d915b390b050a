"""docs/tutorial.md quotes its committed outputs faithfully, and every file it names exists."""

import itertools
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
TABLE_ROWS = [
    line for line in TUTORIAL.splitlines() if re.search(r"\| 0\.\d{4} \| \[digits-", line)
]


def test_the_tables_quote_some_accuracies():
    assert len(TABLE_ROWS) == 7
    assert len(ACCURACIES) == 2 * len(TABLE_ROWS)


@pytest.mark.parametrize(("quoted", "name"), ACCURACIES)
def test_each_quoted_accuracy_is_the_one_its_file_records(quoted, name):
    assert quoted == f"{result(name)['test_accuracy']:.4f}"


def command(name: str) -> str:
    return (DOCS / "tutorial" / name).read_text().splitlines()[0]


def epochs(name: str) -> list[float]:
    """The test accuracy after each epoch, from the per-epoch lines of a training output."""
    text = (DOCS / "tutorial" / name).read_text()
    return [float(a) for a in re.findall(r"^epoch +\d+/\d+ .*test accuracy (\d\.\d+)", text, re.M)]


# the book's figures (Nielsen, chapters 1 and 3) and the run each belongs to
BOOK = {
    "ch1-quadratic": "95.42% (test, the peak, epoch 28 of 30; best of three runs)",
    "ch3-cross-entropy": "95.49% (test)",
    "ch3-l2-30": "96.49% (test)",
    "ch3-l2-100": "97.92% (validation)",
}


@pytest.mark.parametrize("row", TABLE_ROWS)
def test_each_run_has_the_settings_its_row_claims(row):
    names = re.findall(r"\[((?:digits|mnist)-[\w-]+\.txt)\]", row)
    assert len(names) == 2
    for name in names:
        line = command(name)
        assert "--epochs 30 --batch-size 10" in line
        for lr in re.findall(r"η = ([\d.]+)", row):
            assert f"--lr {lr}" in line, name
        if "λ = 5" in row and name.startswith("mnist"):
            assert "--weight-decay 0.000625" in line, name
    book = re.sub(r"^(digits|mnist)-|\.txt$", "", names[0])
    if book in BOOK:
        assert f"| {BOOK[book]} |" in row


def test_the_book_runs_follow_the_book():
    # N(0, 1) for network.py and large_weight_initializer; the softmax variant keeps it
    runs = ("ch1-quadratic", "ch3-cross-entropy", "ch3-l2-30", "ch3-l2-100", "ch3-softmax")
    for name in (f"{data}-{run}.txt" for data in ("digits", "mnist") for run in runs):
        assert "--init normal" in command(name), name
    assert "--sizes 784,100,10" in command("mnist-ch3-l2-100.txt")
    # the initialisation pair differs in the init alone
    normal, lecun = command("mnist-ch3-init-normal.txt"), command("mnist-ch3-init-lecun.txt")
    assert normal.replace("--init normal", "--init lecun") == lecun


def test_the_per_epoch_figures_are_those_of_the_runs():
    chapter1 = epochs("mnist-ch1-quadratic.txt")
    assert len(chapter1) == 30
    best = max(chapter1)
    assert f"the same run's best is\n{best:.4f}, at epoch {chapter1.index(best) + 1}" in TUTORIAL
    normal, lecun = epochs("mnist-ch3-init-normal.txt"), epochs("mnist-ch3-init-lecun.txt")
    assert f"tests at {normal[0]:.4f} on MNIST" in TUTORIAL
    assert (
        f"one at {lecun[0]:.4f}; after 30 epochs they are close, {normal[-1]:.4f} and" in TUTORIAL
    )
    assert f"{lecun[-1]:.4f}." in TUTORIAL


def test_every_linked_file_and_picture_exists():
    links = re.findall(r"\]\((tutorial/[^)]+)\)", TUTORIAL)
    assert len(links) > 25
    for link in links:
        assert (DOCS / link).is_file(), link
    pictures = re.findall(r"!\[[^]]*\]\((tutorial/[^)]+\.png)\)", TUTORIAL)
    assert {"tutorial/chain-quadratic.png", "tutorial/chain-cross-entropy.png"} <= set(pictures)
    for picture in pictures:
        width, height = png_size(DOCS / picture)
        assert width > 1000 and height > 600


def test_each_output_records_its_command():
    for path in (DOCS / "tutorial").glob("*.txt"):
        assert path.read_text().startswith("$ gpunet "), path.name


def test_the_chain_quoted_is_the_committed_one():
    block = re.search(r"```\n(partial by hand.*?)```", TUTORIAL, re.S).group(1)
    recorded = (DOCS / "tutorial" / "explain-quadratic.txt").read_text()
    for line in block.strip().splitlines():
        assert line in recorded, line
    jacobians = (DOCS / "tutorial" / "jacobians.txt").read_text().strip().splitlines()[-1]
    worst = re.search(r"from backprop (\S+) ", jacobians).group(1)
    assert jacobians.startswith("jacobians ok") and f"to be {worst}." in TUTORIAL


def test_the_timing_table_is_the_committed_one():
    rows = [line.split() for line in (DOCS / "tutorial" / "timing.txt").read_text().splitlines()]
    recorded = [row for row in rows if row and row[0].startswith("[")]
    quoted = re.findall(
        r"^\| (\[[\d, ]+\]) \| (\d+) \| (\S+) \| (\S+) \| (\d+) \|$", TUTORIAL, re.M
    )
    assert len(quoted) == len(recorded) == 5
    for (sizes, *numbers), row in zip(quoted, recorded):
        assert sizes.replace(" ", "") == "".join(row[:3]) and numbers == row[3:]
    # the ratio in forward passes: 2P / ratio
    for row in (recorded[0], recorded[-1]):
        parameters, ratio = int(row[3]), int(row[-1])
        assert f"{2 * parameters}/{ratio} =\n" in TUTORIAL or f"{2 * parameters}/{ratio} = " in (
            TUTORIAL.replace("\n", " ")
        )
        assert f"{2 * parameters / ratio:.1f}" in TUTORIAL


def test_the_forward_pass_table_is_the_committed_one():
    document = json.loads((DOCS / "tutorial" / "passes.json").read_text())
    assert command("passes.txt") == f"$ {document['command']}"
    quoted = re.findall(
        r"^\| (\[[\d, ]+\]) \| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) "
        r"\| (\d+) \| (\S+) \|$",
        TUTORIAL,
        re.M,
    )
    assert len(quoted) == len(document["records"]) == 8
    for row, record in zip(quoted, document["records"]):
        measured = record.get("numeric_per_forward_measured")
        assert list(row) == [
            str(record["sizes"]),
            str(record["batch"]),
            str(record["parameters"]),
            f"{record['backward_per_forward_counted']:.2f}",
            f"{record['backward_per_forward_measured']:.2f}",
            f"{record['gradient_per_forward_measured']:.2f}",
            str(record["numeric_per_forward_counted"]),
            "—" if measured is None else f"{measured:.0f}",
        ]


def test_the_vanishing_gradient_figures_are_those_of_the_histories():
    def metrics(name):
        return json.loads((DOCS / "tutorial" / f"deep-{name}.json").read_text())["metrics"]

    sigmoid, relu = metrics("sigmoid"), metrics("relu")
    delta, gradient = sigmoid["delta_norm"][0], sigmoid["gradient_norm"][0]
    steps = [b / a for a, b in itertools.pairwise(delta)]
    assert f"from {delta[0]:.5f} in\nlayer 1 to {delta[-1]:.4f} in layer 5" in TUTORIAL
    assert (
        f"a factor of {delta[-1] / delta[0]:.0f}, between {min(steps):.1f} and {max(steps):.1f}"
        in (TUTORIAL)
    )
    assert f"from {gradient[0]:.4f} in layer 1 to {gradient[-1]:.2f} in layer 5" in TUTORIAL
    assert f"a factor of {gradient[-1] / gradient[0]:.0f} only" in TUTORIAL
    last_delta, last_gradient = sigmoid["delta_norm"][-1], sigmoid["gradient_norm"][-1]
    assert f"({last_delta[0]:.4f} in layer 1, {last_delta[-1]:.4f} in layer 5" in TUTORIAL
    assert last_delta[0] > max(last_delta[2:4])
    assert f"{last_gradient[0]:.2f} in layer 1, {last_gradient[-1]:.2f} in layer 5" in TUTORIAL
    assert last_gradient[0] > last_gradient[-1] and gradient[0] < gradient[-1]
    first_relu = relu["delta_norm"][0]
    assert max(first_relu) / min(first_relu) < 2
    assert f"({first_relu[0]:.4f} in layer 1, {first_relu[-1]:.4g} in layer 5" in TUTORIAL
    assert f"reaches {100 * result('deep-relu.txt')['test_accuracy']:.1f}%" in TUTORIAL
    assert f"{100 * result('deep-sigmoid.txt')['test_accuracy']:.1f}% after ten" in TUTORIAL
