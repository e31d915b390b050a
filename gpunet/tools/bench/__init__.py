"""`gpunet bench`: the throughput sweep, its peers (PyTorch, the per-example loop, the
GEMMs alone) and its report.

    from gpunet.tools import bench
    record = bench.run(bench.Settings(backend="numpy", shapes=("nielsen",)))
    print(bench.table(record)); bench.plot(record, "bench.png")

The modules: sweep (the settings, the cells and their measurement), peers (the step
written other ways), machine (what a record ran on, the settings the peers share),
report (tables and plots), trust (the spread of a cell's runs, and the flags on cells not to
be believed), gradient_timing (backprop against the numeric gradient).
"""

from .gradient_timing import Timing, time_gradients
from .machine import blas_info, blas_threads, environment, gpunet_source, portable
from .report import plot, table
from .sweep import BATCH_SIZES, BENCH_DTYPES, MODES, PEERS, SHAPES, Settings, Shape, run

__all__ = [
    "BATCH_SIZES",
    "BENCH_DTYPES",
    "MODES",
    "PEERS",
    "SHAPES",
    "Settings",
    "Shape",
    "Timing",
    "blas_info",
    "blas_threads",
    "environment",
    "gpunet_source",
    "plot",
    "portable",
    "run",
    "table",
    "time_gradients",
]
