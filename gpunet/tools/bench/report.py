"""The sweep's record as Markdown tables and as throughput curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import trust
from .sweep import SHAPES


def table(record: dict[str, Any]) -> str:
    """Markdown tables, one per shape and mode: a row per batch size and implementation.

    A flagged cell (trust.py) is marked "!" and its reasons follow its table.
    """
    lines: list[str] = []
    cells = record["cells"]
    groups = dict.fromkeys((c["shape"], c["mode"]) for c in cells)
    for shape_name, mode in groups:
        shape = SHAPES[shape_name]
        lines += [
            f"\n{shape_name} {shape.sizes} {'/'.join(shape.activations)}, {mode}:",
            "| batch | implementation | samples/s | ms/step | spread (max-min)/median | TFLOP/s "
            "| % of GEMM ceiling | speed vs torch |",
            "|---:|:---|---:|---:|---:|---:|---:|---:|",
        ]
        rows = sorted(
            (c for c in cells if (c["shape"], c["mode"]) == (shape_name, mode)),
            key=lambda c: c["batch_size"],
        )
        for c in rows:
            if c["status"] != "ok":
                lines.append(
                    f"| {c['batch_size']} | {c['impl']} | {c['status']}: {c['reason']} |||||"
                )
                continue
            ceiling = c.get("fraction_of_gemm_ceiling")
            torch_speed = c.get("speed_vs_torch")
            spread = c[trust.SPREAD]
            diverged = " (diverged: timed on non-finite values)" if c["finite"] is False else ""
            mark = "" if c["trust"] == "ok" else " !"
            lines.append(
                f"| {c['batch_size']} | {c['impl']}{diverged}{mark} "
                f"| {c['samples_per_second']:,.0f} | {c['median_seconds'] * 1e3:.4g} "
                f"| {'' if spread is None else f'{100 * spread:.0f}%'} | {c['tflops']:.3g} "
                f"| {'' if ceiling is None else f'{100 * ceiling:.0f}%'} "
                f"| {'' if torch_speed is None else f'{torch_speed:.2f}x'} |"
            )
        notes = [
            f"! {c['batch_size']} {c['impl']}: {'; '.join(c['trust'])}" for c in trust.flagged(rows)
        ]
        if notes:
            lines += ["", *notes]  # a blank line first: Markdown would read them as rows
    numeric = record.get("numeric_gradient")
    if numeric:
        lines.append(
            f"\nbackprop vs finite differences on {numeric['sizes']} ({numeric['parameters']} "
            f"parameters, {numeric['examples']} examples): one gradients() call "
            f"{numeric['backprop_seconds'] * 1e3:.3g} ms, the numeric gradient "
            f"{numeric['numeric_seconds'] * 1e3:.4g} ms: {numeric['ratio']:,.0f}x"
        )
    return "\n".join(lines).lstrip("\n")


def plot(record: dict[str, Any], path: str | Path) -> Path:
    """Samples/s against batch size, log-log: a panel per shape and mode, a line per
    implementation (the GEMM-only ceiling dashed) through the medians, a bar over each
    point from its fastest run to its slowest, flagged cells hollow. Writes a PNG atomically and
    returns its path."""
    from ...train.plots import Figure, png_path, save_figure

    path = png_path(path)
    cells = [c for c in record["cells"] if c["status"] == "ok"]
    shapes = list(dict.fromkeys(c["shape"] for c in record["cells"]))
    modes = list(dict.fromkeys(c["mode"] for c in record["cells"]))
    figure = Figure(figsize=(5.5 * len(modes), 3.8 * len(shapes)), layout="constrained")
    axes = figure.subplots(len(shapes), len(modes), squeeze=False)
    impls = list(dict.fromkeys(c["impl"] for c in record["cells"]))
    colours = {impl: f"C{i}" for i, impl in enumerate(impls)}
    for row, shape_name in enumerate(shapes):
        for column, mode in enumerate(modes):
            ax, panel = axes[row][column], (shape_name, mode)
            for impl in impls:
                line = sorted(
                    (c for c in cells if (c["shape"], c["mode"], c["impl"]) == (*panel, impl)),
                    key=lambda c: c["batch_size"],
                )
                if line:
                    _draw_line(ax, line, impl, colours[impl])
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{shape_name} {SHAPES[shape_name].sizes}, {mode}", fontsize=9)
            ax.set_xlabel("batch size")
            ax.set_ylabel("samples/s")
            ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside lower center", ncol=len(impls), fontsize=8)
    env = record["environment"]
    device = env.get("gpu", {}).get("device") or env["cpu"]
    hollow = " (hollow: flagged, see the table)" if trust.flagged(cells) else ""
    figure.suptitle(
        f"gpunet {env['gpunet']}, {record['settings']['dtype']}, {device}{hollow}", fontsize=10
    )
    return save_figure(figure, path, dpi=100)


def _draw_line(ax: Any, cells: list[dict[str, Any]], impl: str, colour: str) -> None:
    """One implementation's medians, its runs' range as bars, its flagged cells hollow."""
    batch = [c["batch_size"] for c in cells]
    rate = [c["samples_per_second"] for c in cells]
    below = [r - b / max(c["seconds_per_step"]) for r, b, c in zip(rate, batch, cells)]
    above = [b / min(c["seconds_per_step"]) - r for r, b, c in zip(rate, batch, cells)]
    ceiling = impl.startswith("gemm")
    ax.plot(batch, rate, "--" if ceiling else "-", color=colour, label=impl)
    ax.errorbar(batch, rate, yerr=[below, above], fmt="none", ecolor=colour, capsize=2, lw=0.8)
    for believed in (True, False):
        points = [(b, r) for b, r, c in zip(batch, rate, cells) if (c["trust"] == "ok") == believed]
        if points and not (ceiling and believed):
            ax.plot(
                *zip(*points),
                "o",
                color=colour,
                markerfacecolor=colour if believed else "none",
                markersize=3 if believed else 6,
            )
