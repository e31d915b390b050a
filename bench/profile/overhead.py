"""Per-call overhead of net.fit(epochs=1): everything outside the timed batch loop.

The input checks (and the alternatives for the finiteness check), the targets' cast, the
shuffle, then fit's wall time less its in-loop time per batch size. Run from the checkout
(the output kept in bench/results/profile):

    PYTHONPATH=. python bench/profile/overhead.py > bench/results/profile/overhead.txt
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import numpy as np

from bench.epoch_vs_torch import gpunet_epoch, make_data, make_gpunet
from bench.profile.common import parser, seconds_per_call
from gpunet.core.checks import check_features, check_targets

CHUNK = 8192


def show(label: str, function: Callable[[], object]) -> None:
    """The median of 15 single calls, in milliseconds."""
    print(f"{label:57s}{1e3 * statistics.median(seconds_per_call(function, 1, 15)):7.2f} ms")


def main() -> None:
    args = parser(__doc__).parse_args()
    X, y = make_data(args.examples)
    n, n_in = X.shape
    net = make_gpunet()
    cost = net.cost_function("log_likelihood")
    outputs = net.sizes[-1]
    show(
        "check_features(X) [finite sum; mask only if not]", lambda: check_features(X, n_in, X.dtype)
    )
    show("   alt: np.isfinite(X).all()", lambda: np.isfinite(X).all())
    show(
        f"   alt: isfinite in {CHUNK}-row chunks",
        lambda: all(np.isfinite(X[i : i + CHUNK]).all() for i in range(0, n, CHUNK)),
    )
    show(
        f"check_targets(y) [eye({outputs})[labels] + checks]",
        lambda: check_targets(y, n, outputs, cost, "softmax", np.float32),
    )
    targets, _ = check_targets(y, n, outputs, cost, "softmax", np.float32)
    print(f"   targets dtype from check_targets: {targets.dtype} {targets.shape}")
    show(f"asarray(targets {targets.dtype} -> float32)", lambda: np.asarray(targets, np.float32))
    show("net.checked_inputs(X, y) total", lambda: net.checked_inputs(X, y, cost))
    rng = np.random.default_rng(0)
    show(f"rng.permutation({n})", lambda: rng.permutation(n))
    for batch_size in args.batch_sizes:
        # (wall, in-loop) seconds of each fit: their difference is spent outside the loop
        epochs = [gpunet_epoch(net, X, y, batch_size, seed)[:2] for seed in range(7)]
        outside = [1e3 * (wall - loop) for wall, loop in epochs]
        print(
            f"B={batch_size}: fit wall - in-loop seconds: median {statistics.median(outside):.1f} "
            f"ms (min {min(outside):.1f}, max {max(outside):.1f})"
        )


if __name__ == "__main__":
    main()
