"""What several commands share: the argument types, the options they have in common, and the
record a command registers itself with."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field

from ...core.activations import ACTIVATIONS
from ...core.backends import BACKENDS
from ...core.checks import check_count, check_positive
from ...core.costs import COSTS
from ...core.extras import MissingExtraError as MissingExtraError  # what commands raise
from ..data import SPLITS

NATURAL_COST = (
    "default: the output's natural cost (softmax: log_likelihood, "
    "sigmoid: cross_entropy, else quadratic)"
)


DATA = (
    "'digits' (bundled), an MNIST IDX directory or mnist.pkl.gz, or an array file: "
    ".npy (features), .npz (arrays X and y), .csv (numbers; labels in the last column)"
)


@dataclass(frozen=True)
class Command:
    """One subcommand: its name and help line, the options it adds, the function it runs;
    the options that name files it writes (each with the suffix it must have, or None),
    which main() checks before the handler runs; and what to tell the user when Ctrl-C
    interrupts it (where the work done so far is)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]
    outputs: dict[str, str | tuple[str, ...] | None] = field(default_factory=dict)
    interrupted: Callable[[argparse.Namespace], str] | None = None


def count(text: str) -> int:
    """An integer >= 1, as an argparse type."""
    try:
        return check_count("the value", int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None


def positive_float(text: str) -> float:
    """A finite number > 0, as an argparse type."""
    try:
        return check_positive("the value", float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}") from None


def int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def comma_names(text: str) -> list[str]:
    """ "a,b,c" as a list of names (empty parts dropped)."""
    return [name for name in text.split(",") if name]


def name_list(text: str) -> str | list[str]:
    """ "relu" as one name for every layer, "relu,softmax" as one per layer."""
    parts = text.split(",")
    return parts[0] if len(parts) == 1 else parts


def add_sizes(
    parser: argparse.ArgumentParser, default: list[int] | None, help: str | None = None
) -> None:
    parser.add_argument("--sizes", type=int_list, default=default, help=help)


def add_activations(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--activations",
        type=name_list,
        default=default,
        help=f"one name, or one per layer comma-separated: {', '.join(ACTIVATIONS)}",
    )


def add_cost(
    parser: argparse.ArgumentParser, default: str | None = None, help: str | None = None
) -> None:
    parser.add_argument("--cost", choices=list(COSTS), default=default, help=help)


def add_backend(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    parser.add_argument("--backend", choices=BACKENDS, default=default)


def add_network(parser: argparse.ArgumentParser, activations: str) -> None:
    """The network a command builds: activations, cost, backend, seed."""
    add_activations(parser, activations)
    add_cost(parser, help=NATURAL_COST)
    add_backend(parser)
    parser.add_argument("--seed", type=int, default=0)


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_data(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """--data and how it is read: the part held out for testing, a CSV's label column."""
    parser.add_argument("--data", default=default, required=default is None, help=DATA)
    parser.add_argument(
        "--test-size",
        type=float,
        default=0.2,
        help="fraction held out for testing when the data has no separate test set",
    )
    parser.add_argument(
        "--target-column",
        type=int,
        default=None,
        metavar="N",
        help="the .csv column of the labels (default: the last; negative counts from the end)",
    )


def add_split(parser: argparse.ArgumentParser) -> None:
    """--split and --seed: which part of the digits or MNIST, split as train split them."""
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default=None,
        help="the part of the digits or MNIST to use (default: test), as train split them",
    )
    parser.add_argument("--seed", type=int, default=0, help="the seed train split with")
