"""Whether a cell's timing can be believed: the spread of its timed runs, and its flags.

A cell reports the median of its runs' seconds per step. Its spread is the interquartile
range of those runs over their median, (Q3 − Q1) / median, the quartiles interpolated
linearly between the sorted runs (numpy's default; `statistics.quantiles` 'inclusive'):
unlike max − min it does not flag a cell for the one run a median already ignores. A cell
is flagged (its `trust` is a list of reasons rather than "ok") when its spread is over
MAX_SPREAD, when it is faster than the GEMM-only ceiling (impossible for gpunet, the same
GEMMs plus more work; unlikely for a peer: the ceiling's runs were slowed), or when it had
fewer than MIN_REPEATS runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

SPREAD = "iqr_over_median"  # the cells' field
MAX_SPREAD = 0.2
MIN_REPEATS = 3
MAX_FRACTION_OF_CEILING = 1.0
# what a record says about how its cells were judged
LIMITS = {
    "spread": f"{SPREAD}: (Q3 - Q1) / median of seconds_per_step, linear quartiles",
    "max_spread": MAX_SPREAD,
    "min_repeats": MIN_REPEATS,
    "max_fraction_of_gemm_ceiling": MAX_FRACTION_OF_CEILING,
}
ADVICE = "a quieter machine, more --repeats or a longer --min-seconds"


def quartiles(seconds: Sequence[float]) -> tuple[float, float, float]:
    """Q1, the median and Q3 of the runs' seconds per step (all three the run, for one)."""
    if len(seconds) == 1:
        return seconds[0], seconds[0], seconds[0]
    first, median, third = statistics.quantiles(seconds, n=4, method="inclusive")
    return first, median, third


def spread(seconds: Sequence[float]) -> float | None:
    """(Q3 − Q1) / median of the runs' seconds per step; None for a single run."""
    if len(seconds) < 2:
        return None
    first, median, third = quartiles(seconds)
    return (third - first) / median


def trust(cell: dict[str, Any]) -> str | list[str]:
    """'ok', or why a measured cell's median is not to be believed."""
    reasons = []
    runs = len(cell["seconds_per_step"])
    if runs < MIN_REPEATS:
        reasons.append(f"{runs} timed run{'s' * (runs != 1)}, fewer than {MIN_REPEATS}")
    observed = cell[SPREAD]
    if observed is not None and observed > MAX_SPREAD:
        reasons.append(f"spread {observed:.0%} (IQR/median), over {MAX_SPREAD:.0%}")
    fraction = cell.get("fraction_of_gemm_ceiling")
    if fraction is not None and fraction > MAX_FRACTION_OF_CEILING:
        reasons.append(
            f"{fraction:.0%} of the GEMM-only ceiling, over 100%: the ceiling's runs were slowed"
        )
    return reasons or "ok"


def flagged(cells: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The measured cells whose trust is not 'ok'."""
    return [c for c in cells if c["status"] == "ok" and c["trust"] != "ok"]
