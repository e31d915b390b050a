"""`gpunet explain`: the notes' one-neuron chain, its partials by hand, by backprop, numerically."""

from __future__ import annotations

import argparse

from ..explain import explain
from .common import Command, add_backend, add_cost

# the input, the target, and the two neurons' weights and biases, as the notes number them
CHAIN = {"x": 1.0, "y": 0.0, "w1": 0.6, "b1": 0.9, "w2": 2.0, "b2": 2.0}


def explain_arguments(parser: argparse.ArgumentParser) -> None:
    for name, default in CHAIN.items():
        parser.add_argument(f"--{name}", type=float, default=default)
    add_cost(parser, "quadratic")
    add_backend(parser)
    parser.add_argument(
        "--graph",
        metavar="PATH",
        default=None,
        help="also draw the chain as a node-level graph (PNG), forward and backward",
    )


def explain_command(args: argparse.Namespace) -> int:
    chain = {name: getattr(args, name) for name in CHAIN}
    print(explain(**chain, cost=args.cost, backend=args.backend))
    if args.graph:
        from ..chain_graph import build_chain, draw_chain_graph  # matplotlib, only for this

        graph = build_chain(**chain, cost=args.cost)
        path = draw_chain_graph(args.graph, graph)
        print(f"node-level graph of the chain ({graph.cost}) written to {path}")
    return 0


EXPLAIN = Command(
    "explain",
    "the notes' one-neuron chain: hand-derived partials, backprop, numeric",
    explain_arguments,
    explain_command,
    outputs={"--graph": ".png"},
)
