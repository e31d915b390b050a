"""`gpunet jacobians`: BP1–BP4 as a product of explicit per-layer Jacobians, against backprop."""

from __future__ import annotations

import argparse

import numpy as np

from ...core.activations import ACTIVATIONS
from ...core.backends import BACKENDS
from ...core.checks import check_count
from ...core.costs import COSTS
from ...core.network import Network
from ..jacobians import check_jacobians
from .common import Command, int_list, name_list


def jacobians_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int_list, default=[4, 5, 3])
    parser.add_argument(
        "--activations",
        type=name_list,
        default="sigmoid,softmax",
        help=f"one name, or one per layer comma-separated: {', '.join(ACTIVATIONS)}",
    )
    parser.add_argument("--cost", choices=list(COSTS), default=None)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--tolerance", type=float, default=1e-12)
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    parser.add_argument("--seed", type=int, default=0)


def jacobians_command(args: argparse.Namespace) -> int:
    """Print the check for a seeded random network and batch; 0 if within --tolerance."""
    samples = check_count("--samples", args.samples)
    net = Network(args.sizes, args.activations, backend=args.backend, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    X = rng.standard_normal((samples, net.sizes[0]))
    y = rng.integers(0, net.sizes[-1], samples)
    result = check_jacobians(net, X, y, args.cost)
    verdict = "ok" if result.worst < args.tolerance else "FAILED"
    print(result)
    print(
        f"\njacobians {verdict}: largest relative difference from backprop {result.worst:.2g} "
        f"(tolerance {args.tolerance:g})"
    )
    return 0 if result.worst < args.tolerance else 1


JACOBIANS = Command(
    "jacobians",
    "BP1–BP4 as a product of explicit per-layer Jacobians, against backprop",
    jacobians_arguments,
    jacobians_command,
)
