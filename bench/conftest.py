"""pytest-benchmark over backend, shape, batch size and implementation (not in the default run).

python -m pytest bench --benchmark-group-by=param:shape,param:mode
python -m pytest bench --smoke   # tiny sizes, one round each: that they still run (CI)

test_profile_scripts.py runs each script of bench/profile on a tiny epoch, in either mode.
"""

from __future__ import annotations

import pytest

from gpunet.core.backends import cupy_unavailable
from gpunet.tools.bench import SHAPES

FULL = {"shape": list(SHAPES), "batch_size": [1, 16, 256, 1024, 4096]}
SMOKE = {"shape": ["nielsen", "narrow-deep"], "batch_size": [1, 16]}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--smoke",
        action="store_true",
        help="two small shapes, batch sizes 1 and 16, one round each",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--smoke"):
        # one round, no warm-up rounds and no calibration: the point is that it runs
        config.option.benchmark_min_rounds = 1
        config.option.benchmark_max_time = 0.0
        config.option.benchmark_warmup = False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    grid = SMOKE if metafunc.config.getoption("--smoke") else FULL
    for name, values in grid.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, values)
    if "backend" in metafunc.fixturenames:
        why = cupy_unavailable()
        metafunc.parametrize(
            "backend",
            ["numpy", pytest.param("cupy", marks=pytest.mark.skipif(why is not None, reason=why))],
        )
