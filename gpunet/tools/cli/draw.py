"""The commands that draw: `gpunet plot` (training histories) and `gpunet graph` (a network's
forward and backward graph). matplotlib is imported only when one of them runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...core.checks import check_output_path
from ...core.network import Network
from ...train.history import History
from .common import Command, add_activations, add_cost, add_sizes


def plot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("histories", nargs="+", metavar="HISTORY.json", help="one row each")
    parser.add_argument("-o", "--output", help="the PNG (default: the first history's .png)")


def plot_command(args: argparse.Namespace) -> int:
    from ...train.plots import plot_histories

    # -o is checked before this command runs; its default, here, before any drawing
    output = args.output or check_output_path(
        "--output", Path(args.histories[0]).with_suffix(".png"), suffix=".png"
    )
    histories = [History.load(path) for path in args.histories]
    plot_histories(histories, output, labels=[Path(path).stem for path in args.histories])
    print(f"plot written to {output}")
    return 0


def graph_arguments(parser: argparse.ArgumentParser) -> None:
    add_sizes(parser, [784, 30, 30, 10])
    add_activations(parser, "sigmoid,sigmoid,softmax")
    add_cost(parser)
    parser.add_argument("--layer", type=int, default=None, help="the layer drawn in detail")
    parser.add_argument("-o", "--output", required=True, help="the PNG to write")


def graph_command(args: argparse.Namespace) -> int:
    from ..diagram import draw_graph

    net = Network(args.sizes, args.activations, backend="numpy")
    draw_graph(net, args.output, cost=args.cost, layer=args.layer)
    print(f"graph of {net.sizes} {'/'.join(net.activation_names)} written to {args.output}")
    return 0


PLOT = Command(
    "plot",
    "plot training histories (from train --history)",
    plot_arguments,
    plot_command,
    outputs={"--output": ".png"},
)
GRAPH = Command(
    "graph",
    "draw a network's forward and backward graph",
    graph_arguments,
    graph_command,
    outputs={"--output": ".png"},
)
