"""The notes' one-neuron chain as a node-level computational graph, forward and backward.

The chain of `gpunet explain`, one primitive operation per node,

    w1·x -> z1 = w1·x + b1 -> a1 = σ(z1) -> w2·a1 -> z2 = w2·a1 + b2 -> a2 = σ(z2) -> C,

with the cost split into its own nodes too (for the cross-entropy, a2 feeds both ln a2 and
1 − a2). Each node knows its value and the local derivative of its output with respect to
each input. Backward, every edge carries upstream × local: dC/d(node) times
∂(node)/∂(input); a value that feeds several nodes (a branch point) receives the sum of
what its edges carry. The leaves w1, b1, w2, b2 end with dC/dw1, ..., the values that
`explain` derives by hand and that backprop computes (Network.gradients).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..train.plots import DPI, Figure, png_path, save_figure
from .explain import explain

FORWARD, BACKWARD, CONSTANT = "#1f5fa8", "#b2182b", "#777777"
PARAMETERS = ("w1", "b1", "w2", "b2")
FIGURE_INCHES = (22.0, 9.0)


@dataclass(frozen=True)
class Node:
    """One operation: its inputs, its value, and ∂(node)/∂(input) for each input."""

    name: str
    operation: str  # what the node computes, as drawn
    inputs: tuple[str, ...]
    value: float
    local: tuple[float, ...]  # one local derivative per input
    local_text: tuple[str, ...]  # each as a formula
    position: tuple[float, float]  # (column, row) in the drawing


@dataclass(frozen=True)
class Edge:
    """A backward step from `node` to its input `source`: upstream × local."""

    source: str
    node: str
    upstream: float  # dC/d(node)
    local: float  # ∂(node)/∂(source)

    @property
    def gradient(self) -> float:
        return self.upstream * self.local


@dataclass(frozen=True)
class ChainGraph:
    """The nodes in forward order, the backward edges, and dC/d(node) for every node."""

    cost: str
    nodes: dict[str, Node]
    edges: list[Edge]
    gradients: dict[str, float]
    backprop: dict[str, float]  # dC/dw1, ... by Network.gradients (from explain)

    def branch_points(self) -> list[str]:
        """The nodes whose gradient is a sum: they feed more than one node."""
        sources = [edge.source for edge in self.edges]
        return [name for name in self.nodes if sources.count(name) > 1]


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def build_chain(
    x: float = 1.0,
    y: float = 0.0,
    w1: float = 0.6,
    b1: float = 0.9,
    w2: float = 2.0,
    b2: float = 2.0,
    *,
    cost: str = "quadratic",
) -> ChainGraph:
    """Forward through the chain node by node, then backward edge by edge.

    The arguments are those of `explain`, with the same checks; x and y are constants
    (no gradient is sent to them).
    """
    # explain checks every argument, and gives backprop's values to compare with
    explanation = explain(x, y, w1, b1, w2, b2, cost=cost, backend="numpy")
    backprop = {p.name.removeprefix("dC/d"): p.backprop for p in explanation.partials}
    leaves = {"x": x, "y": y, "w1": w1, "b1": b1, "w2": w2, "b2": b2}
    nodes: dict[str, Node] = {}

    def node(name, operation, inputs=(), value=None, local=(), text=(), at=(0.0, 0.0)):
        value = leaves.get(name, value)
        nodes[name] = Node(name, operation, tuple(inputs), value, tuple(local), tuple(text), at)
        return value

    for leaf, at in (("x", (0.0, 0.0)), ("w1", (0.0, -1.0)), ("b1", (1.0, -1.2))):
        node(leaf, "input" if leaf == "x" else "parameter", at=at)
    product1 = node("w1·x", "×", ("w1", "x"), w1 * x, (x,), ("x",), (1.0, 0.0))
    z1 = node("z1", "+", ("w1·x", "b1"), product1 + b1, (1.0, 1.0), ("1", "1"), (2.0, 0.0))
    a1 = _sigmoid(z1)
    node("a1", "σ", ("z1",), a1, (a1 * (1 - a1),), ("a1(1 − a1)",), (3.0, 0.0))
    node("w2", "parameter", at=(3.0, -1.0))
    node("b2", "parameter", at=(4.0, -1.2))
    product2 = node("w2·a1", "×", ("w2", "a1"), w2 * a1, (a1, w2), ("a1", "w2"), (4.0, 0.0))
    z2 = node("z2", "+", ("w2·a1", "b2"), product2 + b2, (1.0, 1.0), ("1", "1"), (5.0, 0.0))
    a2 = _sigmoid(z2)
    node("a2", "σ", ("z2",), a2, (a2 * (1 - a2),), ("a2(1 − a2)",), (6.0, 0.0))
    node("y", "target", at=(7.0, 1.2) if cost == "quadratic" else (8.9, 1.2))
    if cost == "quadratic":
        difference = node("a2 − y", "−", ("a2", "y"), a2 - y, (1.0,), ("1",), (7.0, 0.0))
        node("C", "½(·)²", ("a2 − y",), 0.5 * difference**2, (difference,), ("a2 − y",), (8.0, 0))
    else:  # cross_entropy: C = −[y ln a2 + (1 − y) ln(1 − a2)]
        node("ln a2", "ln", ("a2",), math.log(a2), (1 / a2,), ("1/a2",), (7.5, 0.7))
        complement = node("1 − a2", "1 − ·", ("a2",), 1 - a2, (-1.0,), ("−1",), (7.0, -0.7))
        node(
            "ln(1 − a2)",
            "ln",
            ("1 − a2",),
            math.log(complement),
            (1 / complement,),
            ("1/(1 − a2)",),
            (8.0, -0.7),
        )
        node(
            "C",
            "−[y·(ln a2) + (1 − y)·(ln(1 − a2))]",
            ("ln a2", "ln(1 − a2)", "y"),
            -(y * math.log(a2) + (1 - y) * math.log(complement)),
            (-y, -(1 - y)),
            ("−y", "−(1 − y)"),
            (9.0, 0.0),
        )

    # backward, in reverse forward order: each node's gradient is complete before it is sent
    gradients = dict.fromkeys(nodes, 0.0)
    gradients["C"] = 1.0
    edges = []
    for current in reversed(list(nodes.values())):
        for source, local in zip(current.inputs, current.local):  # constants have no local
            edge = Edge(source, current.name, gradients[current.name], local)
            edges.append(edge)
            gradients[source] += edge.gradient
    return ChainGraph(cost, nodes, edges, gradients, backprop)


def _term(name: str) -> str:
    """A node's name as the variable of a derivative: parenthesised when it is a formula."""
    return name if name.isalnum() else f"({name})"


def _number(value: float, digits: int) -> str:
    return f"{value + 0.0:.{digits}g}"  # + 0.0: no "-0"


def draw_chain_graph(path: str | os.PathLike[str], graph: ChainGraph) -> Path:
    """Draw `graph` into the PNG at `path`: forward values in blue, backward in red."""
    path = png_path(path)
    width, height = FIGURE_INCHES
    figure = Figure(figsize=(width, height), dpi=DPI)
    ax = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    columns = max(n.position[0] for n in graph.nodes.values()) + 1.0
    ax.set_xlim(-0.6, columns + 0.2)
    ax.set_ylim(-2.1, 2.0)
    ax.set_axis_off()
    ax.text(
        -0.5,
        1.9,
        f"the notes' chain, node by node ({graph.cost} cost): forward values in blue; "
        "backward in red, upstream × local = what each edge sends back; a value that feeds "
        "two nodes gets the sum",
        fontsize=12,
        va="top",
    )
    branches = graph.branch_points()
    for node in graph.nodes.values():
        (column, row), constant = node.position, node.name in ("x", "y")
        local = "".join(
            f"\n∂/∂{_term(source)} = {text}" for source, text in zip(node.inputs, node.local_text)
        )
        ax.text(
            column,
            row,
            f"{node.name}  [{node.operation}]\n= {node.value:.5g}{local}",
            ha="center",
            va="center",
            fontsize=10,
            bbox={
                "boxstyle": "round,pad=0.4",
                "facecolor": "white",
                "edgecolor": CONSTANT if constant else FORWARD,
                "linewidth": 1.6,
            },
        )
        if constant:
            continue
        label = f"dC/d{_term(node.name)} = {_number(graph.gradients[node.name], 5)}"
        if node.name in branches:
            parts = [_number(e.gradient, 4) for e in graph.edges if e.source == node.name]
            label += "\n= " + " + ".join(parts) + "  (the sum)"
        if node.name in graph.backprop:
            label += f"\nNetwork.gradients: {_number(graph.backprop[node.name], 5)}"
        # over the node, clear of the parameters' edges from below; under it in the lower
        # rows and where a constant's edge comes from above
        below = row < 0 or any(
            name in ("x", "y") and graph.nodes[name].position[1] > row for name in node.inputs
        )
        ax.text(
            column,
            row + (-0.45 if below else 0.42),
            label,
            ha="center",
            va="top" if below else "bottom",
            fontsize=9.5,
            color=BACKWARD,
        )
    for node in graph.nodes.values():
        for source in node.inputs:
            ax.annotate(
                "",
                xy=node.position,
                xytext=graph.nodes[source].position,
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": FORWARD,
                    "linewidth": 1.2,
                    "shrinkA": 36,
                    "shrinkB": 36,
                },
            )
    for edge in graph.edges:
        (x0, y0), (x1, y1) = graph.nodes[edge.source].position, graph.nodes[edge.node].position
        text = (
            f"{_number(edge.upstream, 3)} × {_number(edge.local, 3)}\n= {_number(edge.gradient, 3)}"
        )
        # under a level edge, beside a slanted one near its source (clear of the node's label)
        level = y0 == y1
        along = 0.5 if level else 0.35
        ax.text(
            x0 + along * (x1 - x0) + (0.0 if level else 0.06),
            y0 + along * (y1 - y0) - (0.1 if level else 0.0),
            text,
            ha="center" if level else "left",
            va="top" if level else "center",
            fontsize=8.5,
            color=BACKWARD,
        )
    return save_figure(figure, path)
