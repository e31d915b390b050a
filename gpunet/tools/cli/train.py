"""`gpunet train`: train a network on the digits or MNIST and report its test accuracy."""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm.auto import tqdm

from ...core.network import Network
from ...core.optimizers import OPTIMIZERS, SGD, Adam, Optimizer
from ...core.parameters import DTYPES, INITS
from ...train.callbacks import EarlyStopping
from ...train.checkpoint import checkpoint_epoch
from ...train.distributed import Distributed, launched_ranks
from ...train.history import History
from ..data import read_splits
from .common import Command, add_data, add_network, add_no_progress, add_sizes


def train_arguments(parser: argparse.ArgumentParser) -> None:
    add_data(parser, "digits")
    add_sizes(parser, None, help="layer widths, e.g. 784,30,10 (default: inputs,30,classes)")
    add_network(parser, "sigmoid")
    _optimizer_arguments(parser)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--init", choices=INITS, default="lecun")
    _stopping_arguments(parser)
    _output_arguments(parser)


def _stopping_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--validation-split",
        type=float,
        metavar="F",
        help="validate every epoch on the last fraction F of the training rows (held out "
        "before shuffling) instead of the test set",
    )
    parser.add_argument(
        "--patience",
        type=int,
        metavar="N",
        help="stop once the validation cost has not improved for N epochs (needs "
        "--validation-split: stopping on the test set would flatter its accuracy)",
    )
    parser.add_argument(
        "--restore-best",
        action="store_true",
        help="with --patience, keep the parameters of the epoch of least validation cost",
    )


def _optimizer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd")
    parser.add_argument("--lr", type=float, default=None, help="default 0.5 (sgd), 0.001 (adam)")
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--nesterov", action="store_true")
    parser.add_argument(
        "--weight-decay",
        type=float,
        default=0.0,
        help="L2 on the weights; λ/n is Nielsen's regularisation",
    )


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--save", metavar="PATH", help="write the trained network (.npz)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with the results as the last line of stdout",
    )
    add_no_progress(parser)
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="train over the MPI job's ranks (implied when mpiexec started more than one)",
    )
    parser.add_argument("--checkpoint", metavar="PATH", help="save the training state here")
    parser.add_argument("--checkpoint-every", type=int, default=1, metavar="N", help="epochs")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    parser.add_argument("--history", metavar="PATH", help="write the History as JSON (for plot)")
    parser.add_argument(
        "--diagnostics", action="store_true", help="record per-layer statistics in the History"
    )


def _optimizer(args: argparse.Namespace) -> Optimizer:
    if args.optimizer == "adam":
        return Adam(1e-3 if args.lr is None else args.lr, weight_decay=args.weight_decay)
    return SGD(
        0.5 if args.lr is None else args.lr,
        momentum=args.momentum,
        nesterov=args.nesterov,
        weight_decay=args.weight_decay,
    )


def _network(args: argparse.Namespace, inputs: int, n_classes: int) -> Network:
    sizes = args.sizes or [inputs, 30, n_classes]
    if sizes[0] != inputs or sizes[-1] != n_classes:
        raise ValueError(
            f"--sizes must start with {inputs} inputs and end with {n_classes} "
            f"outputs for this data, got {sizes}"
        )
    return Network(
        sizes,
        args.activations,
        backend=args.backend,
        dtype=args.dtype,
        init=args.init,
        seed=args.seed,
    )


def _early_stopping(args: argparse.Namespace) -> list[EarlyStopping]:
    """--patience's EarlyStopping on the validation cost, or none; ValueError for the
    options without the ones they need."""
    if args.restore_best and args.patience is None:
        raise ValueError("--restore-best needs --patience N")
    if args.patience is None:
        return []
    if args.validation_split is None:
        raise ValueError(
            "--patience needs --validation-split F: stopping on the test set would make its "
            "accuracy optimistic"
        )
    return [
        EarlyStopping("validation_cost", patience=args.patience, restore_best=args.restore_best)
    ]


def _epoch_report(epochs: int, say: TextIO, validation: str) -> Callable[[int, dict], None]:
    """The callback that prints one line per epoch, naming the validation data `validation`."""

    def report(epoch: int, metrics: dict) -> None:
        line = f"epoch {epoch:>3}/{epochs}  cost {metrics['cost']:.4f}"
        if "accuracy" in metrics:
            line += f"  accuracy {metrics['accuracy']:.4f}"
        line += f"  {validation} cost {metrics['validation_cost']:.4f}"
        if metrics.get("validation_accuracy") is not None:
            line += f"  {validation} accuracy {metrics['validation_accuracy']:.4f}"
        line += f"  {metrics['seconds']:.2f} s"
        tqdm.write(line, file=say)

    return report


def _result(net: Network, history: History, test: dict, seconds: float, n_test: int) -> dict:
    """The JSON record of the run (--json), with the trained network's `test` metrics."""
    return {
        "test_accuracy": test["accuracy"],
        "test_cost": test["cost"],
        "epochs": history.epochs,
        "seconds": round(seconds, 3),
        "samples_per_second": round(sum(history["samples_per_second"]) / history.epochs, 1),
        "backend": net.backend.name,
        "dtype": net.dtype.name,
        "sizes": net.sizes,
        "activations": net.activation_names,
        "cost": history.meta["cost"],
        "optimizer": history.meta["optimizer"],
        "batch_size": history.meta["batch_size"],
        "train_examples": history.meta["examples"],  # those trained on: validation held out
        "test_examples": n_test,
        "ranks": history.meta["ranks"],
    }


def _write_results(
    args: argparse.Namespace,
    net: Network,
    history: History,
    description: str,
    result: dict,
    say: TextIO,
) -> None:
    """What rank 0 keeps: the network (--save), the History (--history), the JSON line."""
    if args.save:
        net.save(args.save)
        print(f"saved to {args.save}", file=say)
    if args.history:
        arguments = {key: value for key, value in vars(args).items() if key != "handler"}
        history.meta.update(data=description, arguments=arguments)
        history.save(args.history)
        print(f"history written to {args.history}", file=say)
    if args.json:
        print(json.dumps(result))


def train_command(args: argparse.Namespace) -> int:
    # with --json, stdout carries the JSON line alone
    say = sys.stderr if args.json else sys.stdout
    ctx = Distributed.from_mpi() if args.distributed or launched_ranks() > 1 else None
    root = ctx is None or ctx.is_root
    if not root:
        say = io.StringIO()  # rank 0 alone reports
    stopping = _early_stopping(args)
    train, test = read_splits(args.data, args.test_size, args.seed, args.target_column)
    net = _network(args, train.X.shape[1], int(max(train.y.max(), test.y.max())) + 1)
    print(f"data: {train.source}: {len(train.y)} train, {len(test.y)} test", file=say)
    print(f"backend: {net.backend_reason}", file=say)
    print(f"network: {net.sizes} {'/'.join(net.activation_names)}, {net.dtype.name}", file=say)
    if ctx is not None:
        print(f"distributed: {ctx.size} ranks, batches of {args.batch_size} split", file=say)
    split = args.validation_split
    started = time.perf_counter()
    history = net.fit(
        train.X,
        train.y,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=_optimizer(args),
        cost=args.cost,
        validation=(test.X, test.y) if split is None else None,
        validation_split=split,
        seed=args.seed,
        progress=not args.no_progress,
        callbacks=[_epoch_report(args.epochs, say, "test" if split is None else "val"), *stopping],
        distributed=ctx,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        diagnostics=args.diagnostics,
    )
    seconds = time.perf_counter() - started
    for early in stopping:
        _report_stop(early, say)
    scores = net.evaluate(test.X, test.y, args.cost)
    print(
        f"test accuracy {scores['accuracy']:.4f} ({len(test.y)} examples) after "
        f"{history.epochs} epochs, {seconds:.1f} s",
        file=say,
    )
    if root:
        result = _result(net, history, scores, seconds, len(test.y))
        _write_results(args, net, history, train.source, result, say)
    return 0


def _report_stop(early: EarlyStopping, say: TextIO) -> None:
    """Where --patience stopped training, and which epoch's parameters the network has."""
    if early.stopped_epoch is not None:
        print(
            f"stopped after epoch {early.stopped_epoch}: no lower validation cost for "
            f"{early.wait} epochs",
            file=say,
        )
    if early.restore_best and early.best_epoch is not None:
        print(f"kept the parameters of epoch {early.best_epoch} (least validation cost)", file=say)


def interrupted(args: argparse.Namespace) -> str:
    """Where the training interrupted left its work: the last checkpoint, if any."""
    if args.checkpoint is None:
        return "nothing was saved (--checkpoint PATH keeps the training state as it goes)"
    epoch = checkpoint_epoch(args.checkpoint)
    if epoch is None:
        return f"no checkpoint was written to {args.checkpoint} yet"
    return (
        f"the last checkpoint is {args.checkpoint} (epoch {epoch}): run the same command "
        "with --resume to continue from it"
    )


TRAIN = Command(
    "train",
    "train a network and report its test accuracy",
    train_arguments,
    train_command,
    outputs={"--save": None, "--history": None, "--checkpoint": None},
    interrupted=interrupted,
)
