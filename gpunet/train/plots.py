"""Training plots: cost, accuracy and per-layer gradient norms per epoch, as PNG files.

Drawn with matplotlib's object API on the Agg canvas: no display, no pyplot state. This
module is where gpunet imports matplotlib, the plot extra: the other drawings (diagram,
chain_graph, bench.report) take its classes from here, so that a missing matplotlib is one
MissingExtraError naming `pip install 'gpunet[plot]'`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.checks import check_output_path
from ..core.extras import missing_extra
from ..core.io import write_atomically

try:
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch
    from matplotlib.ticker import MaxNLocator
except ModuleNotFoundError as error:
    if error.name != "matplotlib":
        raise  # installed but broken: its own error names what is missing
    raise missing_extra("matplotlib") from None

# the drawing classes are re-exported for the other drawings
__all__ = [
    "DPI",
    "FancyBboxPatch",
    "Figure",
    "FigureCanvasAgg",
    "plot_histories",
    "png_path",
    "save_figure",
]

# one panel is PANEL_INCHES · DPI = 480 × 340 pixels (exact in binary, so the PNG is too)
DPI = 80
PANEL_INCHES = (6.0, 4.25)


def png_path(path: str | os.PathLike[str]) -> Path:
    """`path` as a Path, checked to name a writable .png file (check_output_path)."""
    return check_output_path("path", path, suffix=".png")


def save_figure(figure: Figure, path: str | os.PathLike[str], dpi: int = DPI) -> Path:
    """Render on the Agg canvas and write the PNG at the figure's size in inches times dpi,
    atomically (io.write_atomically: a reader never sees half an image)."""
    FigureCanvasAgg(figure)
    write_atomically(path, lambda file: figure.savefig(file, format="png", dpi=dpi))
    return Path(path)


def plot_histories(
    histories: Sequence[Any],
    path: str | os.PathLike[str],
    labels: Sequence[str] | None = None,
) -> Path:
    """One row of panels per History: cost, accuracy, and per-layer gradient norms.

    Cost and accuracy show the training and (when recorded) validation curves per epoch;
    the accuracy column appears when any history has accuracies, the gradient column
    when any recorded diagnostics: ‖dC/dW^l‖ (BP4) on a log scale, one line per layer,
    sharing one y axis across rows so that networks can be compared. The PNG is
    480 pixels wide per column and 340 high per row.
    """
    if not isinstance(histories, (list, tuple)):
        raise TypeError("histories must be a list of History objects")
    if not histories:
        raise ValueError("histories must hold at least one History")
    for i, history in enumerate(histories):
        # a History by its shape: plots sit below History.plot, which imports this module
        if not (isinstance(history, dict) and hasattr(history, "meta")):
            raise TypeError(f"histories[{i}] must be a History, got {type(history).__name__}")
        if not history.epochs:
            raise ValueError(f"histories[{i}] has no epochs to plot")
        try:
            history.check()
        except ValueError as error:
            raise ValueError(f"histories[{i}]: {error}") from None
    if labels is None:
        labels = [_describe(history) for history in histories]
    elif len(labels) != len(histories):
        raise ValueError(f"labels must name each of the {len(histories)} histories")
    path = png_path(path)

    columns = ["cost"]
    if any("accuracy" in h for h in histories):
        columns.append("accuracy")
    if any("gradient_norm" in h for h in histories):
        columns.append("gradient_norm")
    width, height = PANEL_INCHES
    figure = Figure(figsize=(width * len(columns), height * len(histories)), dpi=DPI)
    axes = figure.subplots(len(histories), len(columns), squeeze=False)
    gradient_axes = []
    for row, (history, label) in zip(axes, zip(histories, labels)):
        epochs = range(1, history.epochs + 1)
        for ax, column in zip(row, columns):
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            if column == "gradient_norm":
                # shared before plotting, so that the limits cover every row's norms
                if gradient_axes:
                    ax.sharey(gradient_axes[0])
                gradient_axes.append(ax)
                _plot_layers(ax, epochs, history.get("gradient_norm"))
                continue
            for key, name in ((column, "train"), (f"validation_{column}", "validation")):
                if key in history:
                    ax.plot(epochs, history[key], marker=".", label=name)
            ax.set_ylabel(column)
            if ax.lines:
                ax.legend(fontsize="small")
        row[0].set_title(label, loc="left", fontsize="medium")
    figure.tight_layout()
    return save_figure(figure, path)


def _plot_layers(ax: Any, epochs: range, norms: list[list[float]] | None) -> None:
    """‖dC/dW^l‖ per epoch for each layer l, colored from the first layer to the last."""
    ax.set_ylabel(r"$\|\partial C/\partial W^l\|$")
    if not norms:
        ax.text(0.5, 0.5, "no diagnostics recorded", ha="center", transform=ax.transAxes)
        return
    layers = len(norms[0])
    for l in range(layers):
        color = colormaps["viridis"](l / max(layers - 1, 1))
        ax.plot(
            epochs, [epoch[l] for epoch in norms], marker=".", color=color, label=f"layer {l + 1}"
        )
    ax.set_yscale("log")
    ax.legend(fontsize="small", ncol=2)


def _describe(history: Any) -> str:
    """A row title from the History's meta: sizes, activations, cost and optimizer."""
    meta = history.meta
    parts = []
    if "sizes" in meta:
        parts.append(str(meta["sizes"]))
    if isinstance(meta.get("activations"), list):
        parts.append("/".join(map(str, meta["activations"])))
    if "cost" in meta:
        parts.append(str(meta["cost"]))
    return " ".join(parts) or "history"
