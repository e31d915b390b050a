"""cProfile of one `net.fit(epochs=1)` per batch size: the 25 calls costliest in own time.

Run from the checkout (the output kept in bench/results/profile):

    PYTHONPATH=. python bench/profile/cprofile_fit.py > bench/results/profile/cprofile_fit.txt
"""

from __future__ import annotations

import cProfile
import io
import pstats

from bench.epoch_vs_torch import gpunet_epoch, make_data, make_gpunet
from bench.profile.common import parser
from gpunet.tools.bench import portable


def main() -> None:
    args = parser(__doc__).parse_args()
    X, y = make_data(args.examples)
    for batch_size in args.batch_sizes:
        net = make_gpunet()
        gpunet_epoch(net, X, y, batch_size, 0)  # the workspaces and BLAS buffers, first
        profile = cProfile.Profile()
        profile.enable()
        gpunet_epoch(net, X, y, batch_size, 1)
        profile.disable()
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(25)
        print(f"===== B={batch_size}")
        # file names relative to the checkout, not this machine's paths
        print(portable(text.getvalue()[:6000]))


if __name__ == "__main__":
    main()
