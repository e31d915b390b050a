"""One rank of the distributed tests' MPI jobs (launched by tests/test_distributed.py).

    mpiexec -n K python tests/mpi_worker.py SCENARIO OUT [options]

Rank 0 writes what it computed to OUT/result.npz (bad_batch: each rank its OUT/rankR.txt,
diagnostics: each rank its History as OUT/rankR.json); the test compares it with a
single-process run made in the test itself.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

import gpunet
from gpunet.train.distributed import Distributed

SIZES, ACTIVATIONS = [5, 7, 4, 3], ["tanh", "sigmoid", "softmax"]
# for the diagnostics: dead relu units and tanh tails (the large "normal" init fills them)
DIAGNOSED = ["relu", "tanh", "softmax"]


def problem(n: int = 99) -> tuple:
    """Training and validation data, the same on every rank and in the tests."""
    rng = np.random.default_rng(2024)
    X, y = rng.standard_normal((n, SIZES[0])), rng.integers(0, SIZES[-1], n)
    return X, y, rng.standard_normal((31, SIZES[0])), rng.integers(0, SIZES[-1], 31)


def network(activations: list[str] = ACTIVATIONS, init: str = "lecun") -> gpunet.Network:
    return gpunet.Network(SIZES, activations, backend="numpy", dtype="float64", init=init, seed=7)


def train_settings(args: argparse.Namespace) -> dict:
    """fit's arguments, shared by the workers and the single-process reference."""
    return dict(
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=gpunet.Adam(0.01) if args.optimizer == "adam" else gpunet.SGD(0.3, momentum=0.5),
        seed=3,
        progress=False,
    )


def fail_after(net: gpunet.Network, steps: int, action) -> None:
    """Run action() at this rank's backpropagation number steps + 1 (a rank that fails)."""
    backpropagate, calls = net.backpropagate, [0]

    def counted(*args):
        calls[0] += 1
        if calls[0] == steps + 1:
            action()
        return backpropagate(*args)

    net.backpropagate = counted


def gradient(ctx: Distributed, out: Path, args: argparse.Namespace) -> None:
    """The all-reduced gradient of the first m examples, each rank holding its shard."""
    net = network()
    X, y, *_ = problem()
    cost = net.cost_function(None)
    X, targets, _ = net.checked_inputs(X[: args.batch_size], y[: args.batch_size], cost)
    part = ctx.shard(args.batch_size)
    m_r = part.stop - part.start
    net.backpropagate(X[part], targets[part], net.workspace(m_r), cost)
    ctx.allreduce_gradients(net.grads, m_r / args.batch_size)
    if ctx.is_root:
        np.savez(out / "result.npz", grads=net.grads)


def train(ctx: Distributed, out: Path, args: argparse.Namespace) -> None:
    net = network()
    X, y, X_val, y_val = problem()
    steps = -(-len(y) // args.batch_size)
    if args.fail_rank == ctx.rank:

        def fail():
            if args.fail == "raise":
                raise RuntimeError("injected failure")
            if args.fail == "exit":
                os._exit(3)
            net.params[0] += 1e-9  # drift

        fail_after(net, args.fail_epoch * steps - 1, fail)
    history = net.fit(
        X,
        y,
        validation=(X_val, y_val),
        distributed=ctx,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        **train_settings(args),
    )
    if ctx.is_root:
        np.savez(
            out / "result.npz",
            params=net.params,
            **{key: np.array(values) for key, values in history.items()},
        )


def diagnostics(ctx: Distributed, out: Path, args: argparse.Namespace) -> None:
    """fit(distributed=True, diagnostics=True): fit's own context; every rank's History."""
    net = network(DIAGNOSED, "normal")
    X, y, *_ = problem()
    history = net.fit(X, y, distributed=True, diagnostics=True, **train_settings(args))
    (out / f"rank{ctx.rank}.json").write_text(json.dumps(history))


def bad_batch(ctx: Distributed, out: Path, args: argparse.Namespace) -> None:
    net = network()
    X, y, *_ = problem()
    before = net.params.copy()
    try:
        net.fit(X, y, distributed=ctx, **train_settings(args))
    except ValueError as error:
        unchanged = bool((net.params == before).all())
        (out / f"rank{ctx.rank}.txt").write_text(f"ValueError: {error} (unchanged: {unchanged})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["gradient", "train", "diagnostics", "bad_batch"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--checkpoint-every", type=int, default=1)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--fail", choices=["raise", "exit", "drift"], default=None)
    parser.add_argument("--fail-rank", type=int, default=-1)
    parser.add_argument("--fail-epoch", type=int, default=1)
    args = parser.parse_args()
    ctx = Distributed.from_mpi()
    scenarios = {
        "gradient": gradient,
        "train": train,
        "diagnostics": diagnostics,
        "bad_batch": bad_batch,
    }
    scenarios[args.scenario](ctx, args.out, args)


if __name__ == "__main__":
    main()
