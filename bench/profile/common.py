"""What the profiling scripts share: their command line and the timing of one call."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from bench.epoch_vs_torch import N_EXAMPLES


def parser(
    doc: str, batch_sizes: Sequence[int] = (64, 1024), examples: int = N_EXAMPLES
) -> argparse.ArgumentParser:
    """The command line of a script documented by `doc`: its batch sizes and the examples in
    its synthetic epoch (fewer for a quick check that it runs)."""
    options = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    options.add_argument(
        "--batch-sizes",
        type=lambda text: [int(b) for b in text.split(",")],
        default=list(batch_sizes),
        help=f"comma-separated (default {','.join(map(str, batch_sizes))})",
    )
    options.add_argument(
        "--examples", type=int, default=examples, help=f"in the epoch (default {examples})"
    )
    return options


def seconds_per_call(function: Callable[[], object], calls: int, repeats: int) -> list[float]:
    """Seconds per call of `function` over `calls` calls, for each of `repeats` runs, after
    one call to warm up."""
    function()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        runs.append((time.perf_counter() - started) / calls)
    return runs
