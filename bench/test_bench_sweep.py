"""One training step or inference pass per round; samples/s and TFLOP/s in extra_info."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gpunet.core.backends import select_backend
from gpunet.tools.bench.peers import PeerUnavailableError
from gpunet.tools.bench.sweep import (
    INDEX_BATCHES,
    SHAPES,
    all_finite,
    gemm_flops,
    implementation_name,
    make_pool,
    make_runner,
    pool_rows,
)


@pytest.mark.parametrize("mode", ["train", "infer"])
@pytest.mark.parametrize("impl", ["gpunet", "gemm", "torch"])
def test_throughput(benchmark, backend, shape, batch_size, mode, impl):
    ops, _ = select_backend(backend)
    pool = make_pool(SHAPES[shape], pool_rows(batch_size), "float32")
    try:
        runner = make_runner(impl, SHAPES[shape], pool, ops, "float32")
    except PeerUnavailableError as why:
        pytest.skip(f"{implementation_name(impl, backend)} absent: {why}")
    rng = np.random.default_rng(0)
    rows = pool.x.shape[0]
    batches = [runner.indices(rng.permutation(rows)[:batch_size]) for _ in range(INDEX_BATCHES)]
    step = runner.train if mode == "train" else runner.infer
    turn = itertools.count()

    def one_step() -> None:
        # a new batch each round, so that caches do not flatter small sizes
        step(batches[next(turn) % INDEX_BATCHES])
        runner.sync()

    benchmark(one_step)
    median = benchmark.stats.stats.median
    assert median > 0
    # timings of a step that overflowed would measure arithmetic on inf and NaN
    assert all_finite(runner.params) in (True, None)
    benchmark.extra_info.update(
        implementation=implementation_name(impl, backend),
        samples_per_second=batch_size / median,
        tflops=gemm_flops(SHAPES[shape].sizes, batch_size, mode) / median / 1e12,
    )
