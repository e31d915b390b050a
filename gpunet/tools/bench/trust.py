"""Whether a cell's timing can be believed: the spread of its timed runs, and its flags.

A cell reports the median of its runs' seconds per step. Its spread is the range of those
runs over their median, (max − min) / median. The interquartile range would ignore the one
slow run a median also ignores, but on a shared machine a disturbed run is a sign of more.
Measured on this project's 2-core machine, 8 runs of `gpunet bench --backend numpy --shape
nielsen,narrow-deep --batch-sizes 1,16,256,4096 --peers ''` (28 cells each): of the 62 cell
medians more than 10% off the median of their 8, a range over 20% flagged 43 and an
interquartile range over 20% only 30; the unflagged medians' 90th-percentile error was 14%
with the range, 45% with the IQR. A limit of 10% flagged half the cells for an error of
11%, one of 30% left 20%: 20% is kept.

A cell is flagged (its `trust` is a list of reasons rather than "ok") when its spread is
over MAX_SPREAD, when it is faster than the GEMM-only ceiling (impossible for gpunet, the
same GEMMs plus more work; unlikely for a peer: the ceiling's runs were slowed), or when it
had fewer than MIN_REPEATS runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

SPREAD = "range_over_median"  # the cells' field
MAX_SPREAD = 0.2
MIN_REPEATS = 3
MAX_FRACTION_OF_CEILING = 1.0
# what a record says about how its cells were judged
LIMITS = {
    "spread": f"{SPREAD}: (max - min) / median of seconds_per_step",
    "max_spread": MAX_SPREAD,
    "min_repeats": MIN_REPEATS,
    "max_fraction_of_gemm_ceiling": MAX_FRACTION_OF_CEILING,
}
ADVICE = "on a quieter machine, with more --repeats or a longer --min-seconds"


def spread(seconds: Sequence[float]) -> float | None:
    """(max − min) / median of the runs' seconds per step; None for a single run."""
    if len(seconds) < 2:
        return None
    return (max(seconds) - min(seconds)) / statistics.median(seconds)


def trust(cell: dict[str, Any]) -> str | list[str]:
    """'ok', or why a measured cell's median is not to be believed."""
    reasons = []
    runs = len(cell["seconds_per_step"])
    if runs < MIN_REPEATS:
        reasons.append(f"{runs} timed run{'s' * (runs != 1)}, fewer than {MIN_REPEATS}")
    observed = cell[SPREAD]
    if observed is not None and observed > MAX_SPREAD:
        reasons.append(f"spread {observed:.1%} ((max - min)/median), over {MAX_SPREAD:.0%}")
    fraction = cell.get("fraction_of_gemm_ceiling")
    if fraction is not None and fraction > MAX_FRACTION_OF_CEILING:
        reasons.append(
            f"{fraction:.1%} of the GEMM-only ceiling, over 100%: the ceiling's runs were slowed"
        )
    return reasons or "ok"


def flagged(cells: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The measured cells whose trust is not 'ok'."""
    return [c for c in cells if c["status"] == "ok" and c["trust"] != "ok"]
