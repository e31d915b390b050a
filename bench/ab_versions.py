"""A/B of two gpunet versions in one process: this checkout's against a git revision's.

The revision's gpunet/ is exported to a temporary folder and imported as `gpunet_base`
(gpunet imports itself relatively), so that both run on the same interpreter, libraries
and data. For each cell, `fit` epochs of the two alternate many times (the order flips
every round). Two clocks:

  cpu   BLAS on one thread, the calling thread's CPU time: the work itself, robust to
        other processes taking the cores (the state of a shared machine)
  wall  BLAS on all threads, wall time after a pause: what a user waits for (noisy where
        the machine is shared)

    PYTHONPATH=. python bench/ab_versions.py --base main --json bench/results/ab_cpu.json
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from threadpoolctl import threadpool_limits

import gpunet
from bench import record
from bench.torch_peer import ADAM_LR, LR, SHAPES, machine, make_data

ROOT = Path(__file__).resolve().parents[1]


def import_revision(revision: str, folder: Path):
    """gpunet as it is at `revision`, imported as the package gpunet_base."""
    archive = subprocess.run(
        ["git", "archive", revision, "gpunet"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    spec = importlib.util.spec_from_file_location(
        "gpunet_base", folder / "gpunet" / "__init__.py", submodule_search_locations=[]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpunet_base"] = module
    spec.loader.exec_module(module)
    return module


def cell(packages, shape_name, optimizer, B, rounds, clock, shuffle) -> dict:
    shape = SHAPES[shape_name]
    n = min(16_384, 1024 * B)
    X, y = make_data(n, shape=shape)
    nets, opts = {}, {}
    for name, package in packages.items():
        nets[name] = package.Network(
            shape.sizes, shape.activations, backend="numpy", init="he", seed=0
        )
        opts[name] = package.SGD(LR) if optimizer == "sgd" else package.Adam(ADAM_LR)
    timer = time.thread_time if clock == "cpu" else time.perf_counter
    seconds: dict[str, list[float]] = {name: [] for name in packages}

    def epoch(name: str, seed: int) -> float:
        started = timer()
        nets[name].fit(
            X, y, epochs=1, batch_size=B, optimizer=opts[name], cost=shape.cost,
            progress=False, shuffle=shuffle, seed=seed,
        )  # fmt: skip
        return timer() - started

    for name in packages:
        epoch(name, 0)
    for r in range(rounds):
        for name in list(packages)[:: 1 if r % 2 == 0 else -1]:
            if clock == "wall":
                time.sleep(0.15)  # no OpenBLAS worker left spinning from the run before
            seconds[name].append(epoch(name, r + 1))
    base, new = (statistics.median(seconds[name]) for name in ("base", "new"))
    paired = statistics.median(a / b for a, b in zip(seconds["new"], seconds["base"]))
    return {"shape": shape_name, "optimizer": optimizer, "batch_size": B, "clock": clock,
            "shuffle": shuffle, "seconds": seconds, "new_over_base": new / base,
            "paired_new_over_base": paired}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="git revision to compare against")
    parser.add_argument("--shapes", default="mnist-mlp")
    parser.add_argument("--optimizers", default="sgd")
    parser.add_argument("--batch-sizes", default="1,16,64,256,1024,4096")
    parser.add_argument("--clocks", default="cpu")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--no-shuffle", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        packages = {"base": import_revision(args.base, Path(folder)), "new": gpunet}
        results = []
        for clock in args.clocks.split(","):
            limit = threadpool_limits(1, user_api="blas") if clock == "cpu" else None
            for shape in args.shapes.split(","):
                for optimizer in args.optimizers.split(","):
                    for B in (int(b) for b in args.batch_sizes.split(",")):
                        result = cell(
                            packages, shape, optimizer, B, args.rounds, clock, not args.no_shuffle
                        )
                        results.append(result)
                        print(
                            f"{clock} {shape} {optimizer} B={B}: new/base "
                            f"{result['new_over_base']:.3f} (paired "
                            f"{result['paired_new_over_base']:.3f})",
                            flush=True,
                        )
            if limit is not None:
                limit.restore_original_limits()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True)
    base = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=ROOT, capture_output=True)
    record.write(args.json, {
        **record.header("ab_versions", sys.argv[1:] if argv is None else argv),
        "base": base.stdout.decode().strip(),
        "new": head.stdout.decode().strip() + " + working tree",
        "machine": machine(),
        "results": results,
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
