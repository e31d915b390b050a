"""The NumPy forms behind the backend's choices, timed side by side (float32, one thread's
CPU time, interleaved rounds, medians): ReLU against the scalar 0 or a row of zeros, BP4's
outer product at m = 1 by matmul or by a broadcast product, the bias add, ReLU' and the
plain SGD update in one pass or two.

    PYTHONPATH=. python bench/elementwise_forms.py --json bench/results/elementwise_forms_cpu.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from bench import record
from bench.torch_peer import machine
from gpunet.core.backends import NumpyBackend


def forms(n: int, m: int, rng: np.random.Generator) -> dict[str, dict[str, Callable[[], object]]]:
    """For each stage, its alternative forms on (n, m) arrays."""
    ops = NumpyBackend()
    z = rng.standard_normal((n, m), dtype=np.float32)
    a, g, out = np.maximum(z, 0.0), rng.standard_normal((n, m), dtype=np.float32), np.empty_like(z)
    bias = rng.standard_normal(n, dtype=np.float32)
    delta, row = (
        rng.standard_normal((n, 1), dtype=np.float32),
        rng.standard_normal((1, 784), dtype=np.float32),
    )
    outer = np.empty((n, 784), np.float32)
    params = rng.standard_normal(784 * 256 + 256 * 256 + 2570 + 522, dtype=np.float32)
    grads = rng.standard_normal(params.shape, dtype=np.float32)
    return {
        "relu": {
            "maximum(z, 0.0)": lambda: np.maximum(z, 0.0, out=out),
            "against a row of zeros (backend)": lambda: ops._relu(z, out),
        },
        "outer product dW at m = 1 (n x 784)": {
            "matmul, inner dimension 1": lambda: np.matmul(delta, row, out=outer),
            "broadcast multiply (backend)": lambda: ops.matmul(delta, row, out=outer),
        },
        "bias add": {
            "z + b[:, None]": lambda: np.add(z, bias[:, None], out=out),
            "z + z (no broadcast, for scale)": lambda: np.add(z, z, out=out),
        },
        "relu'": {
            "g * (a > 0) (the activation's)": lambda: np.multiply(g, a > 0.0, out=out),
        },
        "plain SGD update (270k parameters)": {
            "grads *= lr; params -= grads (the rule)": lambda: (
                np.multiply(grads, 1.0, out=grads),
                np.subtract(params, grads, out=params),
            ),
            "params -= grads, lr folded into BP1": lambda: ops.descend(params, grads),
        },
    }


def measure(n: int, m: int, rounds: int) -> dict:
    table = {}
    for stage, alternatives in forms(n, m, np.random.default_rng(0)).items():
        calls = max(3, 200_000 // (n * m))
        samples: dict[str, list[float]] = {name: [] for name in alternatives}
        for fn in alternatives.values():
            fn()
        for r in range(rounds):
            for name in list(alternatives)[:: 1 if r % 2 == 0 else -1]:
                started = time.thread_time()
                for _ in range(calls):
                    alternatives[name]()
                samples[name].append((time.thread_time() - started) / calls * 1e6)
        table[stage] = {name: statistics.median(s) for name, s in samples.items()}
    return {"shape": [n, m], "us_per_call": table}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="256x64,256x1024,256x4096")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = []
    with threadpool_limits(1, user_api="blas"):
        for text in args.shapes.split(","):
            n, m = (int(v) for v in text.split("x"))
            result = measure(n, m, args.rounds)
            results.append(result)
            for stage, row in result["us_per_call"].items():
                cells = ", ".join(f"{name} {us:.1f}" for name, us in row.items())
                print(f"({n}, {m}) {stage}: {cells} us", flush=True)
    record.write(args.json, {
        **record.header("elementwise_forms", sys.argv[1:] if argv is None else argv),
        "clock": "thread CPU time, BLAS on one thread",
        "machine": machine(),
        "results": results,
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
