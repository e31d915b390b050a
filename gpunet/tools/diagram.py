"""The computational graph of a network, forward and backward, drawn with matplotlib patches.

Two panels in one PNG. The layer chain: input, one box per layer, the cost; forward edges
carry A^l (with its shape), backward edges what BP1 and BP2 send back. The detail of one
layer l: W^l A^{l-1}, + b^l, g^l, and under them the backward pass: (W^{l+1})^T delta^{l+1}
(or the cost's seed) ⊙ g'(Z^l) gives delta^l (BP1/BP2), which yields dC/db^l (BP3),
dC/dW^l (BP4) and (W^l)^T delta^l for layer l − 1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.activations import Activation
from ..core.costs import Cost
from ..core.network import Network
from ..train.plots import DPI, FancyBboxPatch, Figure, png_path, save_figure

FORWARD, BACKWARD, PARAMETER = "#1f5fa8", "#b2182b", "#555555"
HEIGHT_INCHES, CHAIN_INCHES = 9.0, 3.4
PITCH_INCHES = 2.25  # one box and one gap of the chain


def cancelled_delta(output: Activation, cost: Cost) -> str | None:
    """BP1's delta^L where the cost and the output's g cancel (Cost.delta), else None."""
    return f"${cost.cancelled_tex}$" if output.name in cost.cancels_with else None


def figure_inches(layers: int) -> tuple[float, float]:
    """(width, height) of the graph figure for a network of `layers` weight layers."""
    return max(14.0, PITCH_INCHES * (layers + 2)), HEIGHT_INCHES


def draw_graph(
    net: Network, path: str | os.PathLike[str], *, cost: str | None = None, layer: int | None = None
) -> Path:
    """Draw the forward and backward graph of `net` (a Network) into the PNG at `path`.

    `cost` is the cost's name (default: the output's natural one, as in fit); `layer`
    is the texts' l in 1..L of the detailed layer (default: L − 1, the last hidden layer,
    where BP2 shows; L for a one-layer network).
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a gpunet Network, got {type(net).__name__}")
    cost_ = net.cost_function(cost)
    layers = len(net.weights)
    if layer is None:
        layer = max(layers - 1, 1)
    if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= layers:
        raise ValueError(f"layer must be an integer from 1 to {layers}, got {layer!r}")
    path = png_path(path)

    width, height = figure_inches(layers)
    figure = Figure(figsize=(width, height), dpi=DPI)
    chain = _panel(figure, width, height - CHAIN_INCHES, CHAIN_INCHES)
    _draw_chain(chain, net, cost_, width)
    detail = _panel(figure, width, 0.0, height - CHAIN_INCHES)
    _draw_layer(detail, net, cost_, layer, width)
    return save_figure(figure, path)


def _panel(figure: Figure, width: float, bottom: float, height: float) -> Any:
    """Axes over a horizontal band of the figure whose data units are inches."""
    total = figure.get_figheight()
    ax = figure.add_axes((0.0, bottom / total, 1.0, height / total))
    ax.set_xlim(0.0, width)
    ax.set_ylim(0.0, height)
    ax.set_axis_off()
    return ax


def _node(ax: Any, x: float, y: float, text: str, color: str, width: float = 1.3) -> tuple:
    """A rounded box centred at (x, y); returns (x, y, half width, half height)."""
    half_w, half_h = width / 2, 0.32
    box = FancyBboxPatch(
        (x - half_w, y - half_h),
        2 * half_w,
        2 * half_h,
        boxstyle="round,pad=0.02,rounding_size=0.12",
        facecolor="white",
        edgecolor=color,
        linewidth=1.6,
    )
    ax.add_patch(box)
    ax.text(x, y, text, ha="center", va="center", fontsize=9.5, color="black")
    return x, y, half_w, half_h


def _edge(ax: Any, start: tuple, end: tuple, label: str, color: str, *, below: bool = False):
    """An arrow between the borders of boxes `start` and `end`, labelled at its middle."""
    (x0, y0, w0, h0), (x1, y1, w1, h1) = start, end
    dx, dy = x1 - x0, y1 - y0

    def border(w: float, h: float) -> float:
        # the fraction of (dx, dy) at which the line leaves a w × h half-box
        return min(w / abs(dx) if dx else float("inf"), h / abs(dy) if dy else float("inf"))

    leave, enter = border(w0, h0), 1.0 - border(w1, h1)
    tail, head = (x0 + leave * dx, y0 + leave * dy), (x0 + enter * dx, y0 + enter * dy)
    ax.annotate(
        "",
        xy=head,
        xytext=tail,
        arrowprops={"arrowstyle": "-|>", "color": color, "linewidth": 1.4, "shrinkA": 0},
    )
    if not label:
        return
    mid_x, mid_y = (tail[0] + head[0]) / 2, (tail[1] + head[1]) / 2
    if dy == 0:
        offset, va = (-0.1, "top") if below else (0.1, "bottom")
        ax.text(mid_x, mid_y + offset, label, ha="center", va=va, fontsize=8.5, color=color)
    else:
        ax.text(mid_x + 0.1, mid_y, label, ha="left", va="center", fontsize=8.5, color=color)


def _shape(rows: int | str, columns: int | str = "m") -> str:
    return f"({rows} × {columns})"


def _draw_chain(ax: Any, net: Network, cost: Cost, width: float) -> None:
    """Input, one box per layer and the cost; A^l forward, BP1/BP2's messages backward."""
    layers, sizes, names = len(net.weights), net.sizes, net.activation_names
    top = ax.get_ylim()[1]
    ax.text(0.2, top - 0.25, "the layer chain (m: examples in the batch)", fontsize=11, va="top")
    xs = [width * (k + 0.5) / (layers + 2) for k in range(layers + 2)]
    y = top / 2 - 0.15
    boxes = [_node(ax, xs[0], y, f"$A^0 = X^T$\n{_shape(sizes[0])}", FORWARD, 1.2)]
    for l in range(1, layers + 1):
        text = f"layer {l}\n$W^{{{l}}}$ {_shape(sizes[l], sizes[l - 1])}\n{names[l - 1]}"
        boxes.append(_node(ax, xs[l], y, text, FORWARD, 1.2))
    boxes.append(_node(ax, xs[-1], y, f"cost C\n{cost.name}", FORWARD, 1.2))
    for l in range(layers + 1):
        a = boxes[l]
        raised = (a[0], a[1] + 0.15, a[2], a[3])
        after = (boxes[l + 1][0], a[1] + 0.15, boxes[l + 1][2], a[3])
        _edge(ax, raised, after, f"$A^{{{l}}}$\n{_shape(sizes[l])}", FORWARD)
    seed = cancelled_delta(net.activations[-1], cost) or f"${cost.gradient_tex}$"
    for l in range(layers, 0, -1):
        a, b = boxes[l + 1], boxes[l]
        lowered = (a[0], a[1] - 0.15, a[2], a[3])
        into = (b[0], b[1] - 0.15, b[2], b[3])
        if l == layers:
            label = seed
        else:
            label = f"$(W^{{{l + 1}}})^T\\delta^{{{l + 1}}}$\n{_shape(sizes[l])}"
        _edge(ax, lowered, into, label, BACKWARD, below=True)


def _draw_layer(ax: Any, net: Network, cost: Cost, l: int, width: float) -> None:
    """Layer l in detail: the forward nodes, the backward nodes under them, the gradients."""
    layers, sizes, g_l = len(net.weights), net.sizes, net.activations[l - 1]
    name = g_l.name
    top = ax.get_ylim()[1]
    ax.text(
        0.2,
        top - 0.25,
        f"inside layer {l} (of {layers}): forward in blue, backward in red",
        fontsize=11,
        va="top",
    )
    n, k = sizes[l], sizes[l - 1]
    xs = [width * f for f in (0.07, 0.27, 0.47, 0.69, 0.93)]
    param_y, forward_y, backward_y, gradient_y = top - 1.1, top - 2.3, top - 3.6, top - 4.7
    output = l == layers
    fused = cancelled_delta(g_l, cost) if output else None

    source = _node(ax, xs[0], forward_y, f"$A^{{{l - 1}}}$", FORWARD, 1.0)
    weights = _node(ax, xs[1], param_y, f"$W^{{{l}}}$", PARAMETER, 1.0)
    product = _node(ax, xs[1], forward_y, f"$W^{{{l}}} A^{{{l - 1}}}$", FORWARD, 1.5)
    bias = _node(ax, xs[2], param_y, f"$b^{{{l}}}$", PARAMETER, 1.0)
    add = _node(ax, xs[2], forward_y, f"$+\\ b^{{{l}}}$", FORWARD, 1.2)
    g = _node(ax, xs[3], forward_y, f"$g^{{{l}}}$ = {name}", FORWARD, 1.8)
    after = _node(ax, xs[4], forward_y, "cost C" if output else f"layer {l + 1}", FORWARD, 1.1)
    _edge(ax, source, product, _shape(k), FORWARD)
    _edge(ax, weights, product, _shape(n, k), PARAMETER)
    _edge(ax, product, add, _shape(n), FORWARD)
    _edge(ax, bias, add, f"({n},)", PARAMETER)
    _edge(ax, add, g, f"$Z^{{{l}}}$ {_shape(n)}", FORWARD)
    _edge(ax, g, after, f"$A^{{{l}}}$ {_shape(n)}", FORWARD)

    if fused:
        incoming, local_text = "cost and g together", f"BP1, fused:\n{fused}"
    else:
        incoming = (
            f"${cost.gradient_tex}$"
            if output
            else f"$(W^{{{l + 1}}})^T\\delta^{{{l + 1}}}$\n{_shape(n)}"
        )
        local_text = (
            f"{'BP1' if output else 'BP2'}: $\\odot\\ g'(Z^{{{l}}})$\n${g_l.derivative_tex}$"
        )
    message = _node(ax, xs[4], backward_y, "cost C" if output else f"layer {l + 1}", BACKWARD, 1.1)
    local = _node(ax, xs[3], backward_y, local_text, BACKWARD, 2.4)
    delta = _node(ax, xs[2], backward_y, f"$\\delta^{{{l}}}$ {_shape(n)}", BACKWARD, 1.3)
    _edge(ax, message, local, incoming, BACKWARD, below=True)
    _edge(ax, local, delta, "", BACKWARD)
    db = _node(
        ax,
        xs[2],
        gradient_y,
        f"BP3: $\\partial C/\\partial b^{{{l}}} = \\sum_x \\delta^{{{l}}}$",
        BACKWARD,
        2.4,
    )
    dw = _node(
        ax,
        xs[1],
        gradient_y,
        f"BP4: $\\partial C/\\partial W^{{{l}}} = \\delta^{{{l}}} (A^{{{l - 1}}})^T$",
        BACKWARD,
        2.6,
    )
    _edge(ax, delta, db, f"({n},)", BACKWARD)
    _edge(ax, delta, dw, _shape(n, k), BACKWARD)
    if l > 1:
        back = _node(ax, xs[1], backward_y, f"BP2: $(W^{{{l}}})^T \\delta^{{{l}}}$", BACKWARD, 1.6)
        after_back = _node(ax, xs[0], backward_y, f"layer {l - 1}", BACKWARD, 1.0)
        _edge(ax, delta, back, "", BACKWARD)
        _edge(ax, back, after_back, _shape(k), BACKWARD, below=True)
    else:
        ax.text(xs[0], backward_y, "no gradient for X", ha="center", va="center", fontsize=8.5)
