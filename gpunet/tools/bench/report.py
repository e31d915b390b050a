"""The sweep's record as Markdown tables and as throughput curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .sweep import SHAPES


def table(record: dict[str, Any]) -> str:
    """Markdown tables, one per shape and mode: a row per batch size and implementation."""
    lines: list[str] = []
    cells = record["cells"]
    groups = dict.fromkeys((c["shape"], c["mode"]) for c in cells)
    for shape_name, mode in groups:
        shape = SHAPES[shape_name]
        lines += [
            f"\n{shape_name} {shape.sizes} {'/'.join(shape.activations)}, {mode}:",
            "| batch | implementation | samples/s | ms/step | TFLOP/s | % of GEMM ceiling "
            "| speed vs torch |",
            "|---:|:---|---:|---:|---:|---:|---:|",
        ]
        rows = [c for c in cells if (c["shape"], c["mode"]) == (shape_name, mode)]
        for c in sorted(rows, key=lambda c: c["batch_size"]):
            if c["status"] != "ok":
                lines.append(
                    f"| {c['batch_size']} | {c['impl']} | {c['status']}: {c['reason']} ||||"
                )
                continue
            ceiling = c.get("fraction_of_gemm_ceiling")
            torch_speed = c.get("speed_vs_torch")
            diverged = " (diverged: timed on non-finite values)" if c["finite"] is False else ""
            lines.append(
                f"| {c['batch_size']} | {c['impl']}{diverged} | {c['samples_per_second']:,.0f} "
                f"| {c['median_seconds'] * 1e3:.4g} | {c['tflops']:.3g} "
                f"| {'' if ceiling is None else f'{100 * ceiling:.0f}%'} "
                f"| {'' if torch_speed is None else f'{torch_speed:.2f}x'} |"
            )
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
    implementation (the GEMM-only ceiling dashed). Writes a PNG and returns its path."""
    from ...train.plots import Figure, FigureCanvasAgg

    cells = [c for c in record["cells"] if c["status"] == "ok"]
    shapes = list(dict.fromkeys(c["shape"] for c in record["cells"]))
    modes = list(dict.fromkeys(c["mode"] for c in record["cells"]))
    figure = Figure(figsize=(5.5 * len(modes), 3.8 * len(shapes)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(shapes), len(modes), squeeze=False)
    impls = list(dict.fromkeys(c["impl"] for c in record["cells"]))
    colours = {impl: f"C{i}" for i, impl in enumerate(impls)}
    for row, shape_name in enumerate(shapes):
        for column, mode in enumerate(modes):
            ax = axes[row][column]
            for impl in impls:
                points = sorted(
                    (c["batch_size"], c["samples_per_second"])
                    for c in cells
                    if (c["shape"], c["mode"], c["impl"]) == (shape_name, mode, impl)
                )
                if points:
                    ax.plot(
                        *zip(*points),
                        "--" if impl.startswith("gemm") else "-o",
                        color=colours[impl],
                        label=impl,
                        markersize=3,
                    )
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
    figure.suptitle(f"gpunet {env['gpunet']}, {record['settings']['dtype']}, {device}", fontsize=10)
    path = Path(path)
    figure.savefig(path, dpi=100)
    return path
