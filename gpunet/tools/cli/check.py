"""`gpunet gradcheck`: backprop's gradient against the numeric one, or (--timing) how long each
takes."""

from __future__ import annotations

import argparse
import time

import numpy as np

from ...core.gradcheck import gradcheck
from ...core.network import Network
from ..bench import time_gradients
from .common import Command, add_network, add_sizes, count, int_list, positive_float


def gradcheck_arguments(parser: argparse.ArgumentParser) -> None:
    add_sizes(parser, [8, 6, 4])
    add_network(parser, "tanh,softmax")
    parser.add_argument("--samples", type=count, default=5)
    parser.add_argument(
        "--tolerance", type=positive_float, default=1e-6, help="the largest relative error"
    )
    parser.add_argument(
        "--timing",
        action="store_true",
        help="time the numeric gradient against one backprop pass, for networks of --sizes' "
        "depth with every layer --widths wide",
    )
    parser.add_argument("--widths", type=int_list, default=[8, 16, 32, 64])
    parser.add_argument("--repeats", type=int, default=3, help="timings: best of this many")


def gradcheck_command(args: argparse.Namespace) -> int:
    if args.timing:
        return _timing(args)
    rng = np.random.default_rng(args.seed)
    net = Network(
        args.sizes, args.activations, backend=args.backend, dtype="float64", seed=args.seed
    )
    X = rng.standard_normal((args.samples, net.sizes[0]))
    y = rng.integers(0, net.sizes[-1], args.samples)
    started = time.perf_counter()
    error = gradcheck(net, X, y, args.cost)
    seconds = time.perf_counter() - started
    verdict = "ok" if error < args.tolerance else "FAILED"
    print(
        f"gradcheck {verdict}: max relative error {error:.3g} (tolerance {args.tolerance:g}) "
        f"over {net.n_parameters} parameters of {net.sizes} "
        f"{'/'.join(net.activation_names)}, cost {net.cost_function(args.cost).name}, "
        f"{args.samples} examples, {seconds:.2f} s"
    )
    return 0 if error < args.tolerance else 1


def _timing(args: argparse.Namespace) -> int:
    """gradcheck --timing: one table row per width."""
    depth = len(args.sizes)
    timings = time_gradients(
        [[width] * depth for width in args.widths],
        args.activations,
        cost=args.cost,
        samples=args.samples,
        repeats=args.repeats,
        backend=args.backend,
        seed=args.seed,
    )
    print(
        f"one backprop gradient against the numeric one (2 cost evaluations per parameter), "
        f"{args.samples} examples, float64, best of {args.repeats}"
    )
    print(f"{'sizes':<18}{'parameters':>11}{'backprop s':>13}{'numeric s':>12}{'ratio':>10}")
    for t in timings:
        print(
            f"{t.sizes!s:<18}{t.parameters:>11}{t.backprop_seconds:>13.3g}"
            f"{t.numeric_seconds:>12.3g}{t.ratio:>10.0f}"
        )
    return 0


GRADCHECK = Command(
    "gradcheck",
    "compare backprop with numeric gradients",
    gradcheck_arguments,
    gradcheck_command,
)
