"""The teaching tools: the chain as a node-level graph, and backprop's cost in forward passes."""

from __future__ import annotations

import json
import math

import pytest
from conftest import png_size

from gpunet.tools import chain_graph, passes
from gpunet.tools.chain_graph import FIGURE_INCHES, build_chain, draw_chain_graph
from gpunet.tools.cli import main
from gpunet.tools.explain import explain
from gpunet.train.plots import DPI

VALUES = [
    {},  # the notes' saturated start
    {"x": -0.5, "y": 1.0, "w1": 1.5, "b1": -0.3, "w2": -2.0, "b2": 0.4},
    {"x": 2.0, "y": 0.3, "w1": 0.0, "b1": 0.0, "w2": 0.0, "b2": 0.0},
]


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
@pytest.mark.parametrize("values", VALUES)
def test_the_leaves_gradients_are_backprops_and_the_hand_derived(cost, values):
    graph = build_chain(**values, cost=cost)
    partials = {p.name.removeprefix("dC/d"): p for p in explain(**values, cost=cost).partials}
    for name in chain_graph.PARAMETERS:
        assert graph.gradients[name] == pytest.approx(partials[name].hand, rel=1e-12, abs=1e-15)
        assert graph.backprop[name] == partials[name].backprop
    assert graph.gradients["C"] == 1.0
    assert graph.nodes["C"].value == pytest.approx(explain(**values, cost=cost).values["C"])


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_each_edge_sends_upstream_times_local_and_branches_sum(cost):
    graph = build_chain(cost=cost)
    for edge in graph.edges:
        node = graph.nodes[edge.node]
        assert edge.upstream == graph.gradients[edge.node]
        assert edge.local == node.local[node.inputs.index(edge.source)]
        assert edge.gradient == edge.upstream * edge.local
    for name in graph.nodes:
        sent = [e.gradient for e in graph.edges if e.source == name]
        if sent:
            assert graph.gradients[name] == pytest.approx(math.fsum(sent), rel=1e-15)
    # x and y are constants: nothing is sent back to them
    assert not [e for e in graph.edges if e.source in ("x", "y")]
    # the cross-entropy's a2 feeds ln a2 and 1 − a2: the one branch point of the chain
    assert graph.branch_points() == ([] if cost == "quadratic" else ["a2"])


def test_the_cross_entropy_cancels_the_output_slope_node_by_node():
    graph = build_chain(cost="cross_entropy")  # y = 0
    a2 = graph.nodes["a2"].value
    assert graph.gradients["a2"] == pytest.approx(1 / (1 - a2))  # the sum of its two edges
    assert graph.gradients["z2"] == pytest.approx(a2)  # × σ'(z2) = a2(1 − a2): a2 − y


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_the_graph_is_drawn_at_its_size(tmp_path, cost):
    path = draw_chain_graph(tmp_path / "chain.png", build_chain(cost=cost))
    width, height = FIGURE_INCHES
    assert png_size(path) == (int(width * DPI), int(height * DPI))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"x": float("nan")}, ValueError, "x must be finite"),
        ({"cost": "log_likelihood"}, ValueError, "never penalises"),
        ({"cost": "hinge"}, ValueError, "unknown cost"),
    ],
)
def test_bad_chains_are_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        build_chain(**kwargs)


def test_a_bad_path_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"\.png"):
        draw_chain_graph(tmp_path / "chain.svg", build_chain())
    with pytest.raises(FileNotFoundError):
        draw_chain_graph(tmp_path / "missing" / "chain.png", build_chain())
    assert list(tmp_path.iterdir()) == []


def test_the_command_draws_the_graph(tmp_path, capsys):
    path = tmp_path / "chain.png"
    assert main(["explain", "--cost", "cross_entropy", "--y", "1", "--graph", str(path)]) == 0
    assert png_size(path)[0] > 1000
    assert "node-level graph of the chain (cross_entropy)" in capsys.readouterr().out


# --- why backprop is fast, in forward passes ----------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "m", "forward", "backward"),
    [
        ([3, 4, 2], 5, 2 * 5 * (12 + 8), 2 * 5 * (12 + 8) + 2 * 5 * 8),
        ([10, 7], 1, 140, 140),  # one layer: no BP2 at all
        ([5, 5, 5, 5], 2, 300, 300 + 200),
    ],
)
def test_the_gemm_flops_of_each_pass(sizes, m, forward, backward):
    assert passes.pass_flops(sizes, m) == (forward, backward)


def test_backward_is_at_most_two_forward_passes():
    for sizes in ([784, 30, 10], [64, 64, 64], [1024, 1024, 1024, 1024], [2, 1000, 1000, 2]):
        forward, backward = passes.pass_flops(sizes, 7)
        products = [n * k for n, k in zip(sizes[1:], sizes[:-1])]
        assert backward / forward == pytest.approx(2 - products[0] / sum(products))
        assert 1 <= backward / forward < 2


def test_a_measurement_counts_times_and_times_the_numeric_gradient():
    record = passes.measure(
        [6, 5, 3], 4, backend="numpy", repeats=2, min_seconds=0.01, numeric_max=100
    )
    assert record["parameters"] == 6 * 5 + 5 * 3 + 5 + 3
    assert record["numeric_per_forward_counted"] == 2 * record["parameters"]
    assert record["forward_seconds"] == min(record["forward_runs"]) > 0
    assert record["gradient_seconds"] == min(record["gradient_runs"]) > 0
    assert record["gradient_per_forward_measured"] == pytest.approx(
        record["gradient_seconds"] / record["forward_seconds"]
    )
    # 2P costed forward passes at least, whatever the machine
    assert record["numeric_per_forward_measured"] > record["parameters"]
    # above numeric_max the numeric gradient is not timed
    assert "numeric_seconds" not in passes.measure(
        [6, 5, 3], 4, backend="numpy", repeats=1, min_seconds=0.01
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"m": 0}, ValueError, "m must be"),
        ({"repeats": 0}, ValueError, "repeats"),
        ({"min_seconds": -1.0}, ValueError, "min_seconds"),
        ({"sizes": [3]}, ValueError, "sizes"),
    ],
)
def test_measure_checks_its_arguments(kwargs, error, message):
    arguments = {"sizes": [3, 2], "m": 2, **kwargs}
    with pytest.raises(error, match=message):
        passes.measure(arguments.pop("sizes"), arguments.pop("m"), backend="numpy", **arguments)


def test_the_command_prints_the_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "passes.json"
    argv = ["passes", "--networks", "4,3", "5,4,2", "--batch-sizes", "2,3", "--repeats", "1"]
    argv += ["--min-seconds", "0.01", "--backend", "numpy", "--json", str(path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "backward/forward" in out and f"wrote {path}" in out
    document = json.loads(path.read_text())
    assert document["command"].startswith("gpunet passes --networks 4,3 5,4,2")
    assert [(r["sizes"], r["batch"]) for r in document["records"]] == [
        ([4, 3], 2),
        ([4, 3], 3),
        ([5, 4, 2], 2),
        ([5, 4, 2], 3),
    ]
    # a bad network is found before anything is timed, a bad path before anything runs
    assert main(["passes", "--networks", "4,0"]) == 2  # a bad argument
    assert main(["passes", "--json", str(tmp_path / "no" / "p.json")]) == 3  # a path
