"""The `gpunet` command: train, gradcheck, bench, info, plot, graph, explain. A thin
layer over the library."""

from __future__ import annotations

import argparse
import io
import json
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import __version__, datasets
from ..core.activations import ACTIVATIONS
from ..core.backends import BACKENDS, BackendUnavailableError, select_backend
from ..core.checks import check_output_path
from ..core.costs import COSTS
from ..core.gradcheck import gradcheck
from ..core.network import DTYPES, INITS, Network
from ..core.optimizers import OPTIMIZERS, SGD, Adam
from ..train.distributed import Distributed, launched_ranks
from ..train.loop import DivergenceError, History
from . import bench as throughput
from .bench import time_gradients
from .explain import explain


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def _name_list(text: str) -> str | list[str]:
    names = text.split(",")
    return names[0] if len(names) == 1 else names


def load_data(spec: str, test_size: float, seed: int):
    """(X_train, y_train, X_test, y_test, description) for 'digits' or an MNIST path."""
    if spec == "digits":
        X, y = datasets.digits()
        split = datasets.train_test_split(X, y, test_size=test_size, shuffle=True, seed=seed)
        return (*split, f"digits (8x8), shuffled split with seed {seed}")
    path = Path(spec)
    if path.is_dir():
        try:
            train = datasets.mnist(path, "train")
        except FileNotFoundError:
            # only the 10k test set at hand (as under ../shared): train on its first part
            X, y = datasets.mnist(path, "test")
            split = datasets.train_test_split(X, y, test_size=test_size)
            return (*split, f"MNIST test set at {path}, last {test_size:g} held out")
        return (*train, *datasets.mnist(path, "test"), f"MNIST at {path}")
    train, test = datasets.mnist(path, "train"), datasets.mnist(path, "test")
    return (*train, *test, f"MNIST pickle {path}")


def _optimizer(args: argparse.Namespace):
    if args.optimizer == "adam":
        return Adam(1e-3 if args.lr is None else args.lr, weight_decay=args.weight_decay)
    return SGD(
        0.5 if args.lr is None else args.lr,
        momentum=args.momentum,
        nesterov=args.nesterov,
        weight_decay=args.weight_decay,
    )


def train(args: argparse.Namespace) -> int:
    # with --json, stdout carries the JSON line alone
    say = sys.stderr if args.json else sys.stdout
    # where the results go is checked first: a typo must not cost a training run
    for option, path in (("--save", args.save), ("--history", args.history)):
        if path is not None:
            check_output_path(option, path)
    ctx = Distributed.from_mpi() if args.distributed or launched_ranks() > 1 else None
    root = ctx is None or ctx.is_root
    if not root:
        say = io.StringIO()  # rank 0 alone reports
    X_train, y_train, X_test, y_test, description = load_data(args.data, args.test_size, args.seed)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    sizes = args.sizes or [X_train.shape[1], 30, n_classes]
    if sizes[0] != X_train.shape[1] or sizes[-1] != n_classes:
        raise ValueError(
            f"--sizes must start with {X_train.shape[1]} inputs and end with {n_classes} "
            f"outputs for this data, got {sizes}"
        )
    net = Network(
        sizes,
        args.activations,
        backend=args.backend,
        dtype=args.dtype,
        init=args.init,
        seed=args.seed,
    )
    print(f"data: {description}: {len(y_train)} train, {len(y_test)} test", file=say)
    print(f"backend: {net.backend_reason}", file=say)
    print(f"network: {net.sizes} {'/'.join(net.activation_names)}, {net.dtype.name}", file=say)
    if ctx is not None:
        print(f"distributed: {ctx.size} ranks, batches of {args.batch_size} split", file=say)

    def report(epoch: int, metrics: dict) -> None:
        line = f"epoch {epoch:>3}/{args.epochs}  cost {metrics['cost']:.4f}"
        if "accuracy" in metrics:
            line += f"  accuracy {metrics['accuracy']:.4f}"
        line += f"  test cost {metrics['validation_cost']:.4f}"
        if metrics.get("validation_accuracy") is not None:
            line += f"  test accuracy {metrics['validation_accuracy']:.4f}"
        line += f"  {metrics['seconds']:.2f} s"
        tqdm.write(line, file=say)

    started = time.perf_counter()
    history = net.fit(
        X_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=_optimizer(args),
        cost=args.cost,
        validation=(X_test, y_test),
        seed=args.seed,
        progress=not args.no_progress,
        callbacks=[report],
        distributed=ctx,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        diagnostics=args.diagnostics,
    )
    seconds = time.perf_counter() - started
    result = {
        "test_accuracy": history["validation_accuracy"][-1],
        "test_cost": history["validation_cost"][-1],
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
        "train_examples": len(y_train),
        "test_examples": len(y_test),
        "ranks": history.meta["ranks"],
    }
    print(
        f"test accuracy {result['test_accuracy']:.4f} ({len(y_test)} examples) after "
        f"{history.epochs} epochs, {seconds:.1f} s",
        file=say,
    )
    if args.save and root:
        net.save(args.save)
        print(f"saved to {args.save}", file=say)
    if args.history and root:
        arguments = {key: value for key, value in vars(args).items() if key != "handler"}
        history.meta.update(data=description, arguments=arguments)
        history.save(args.history)
        print(f"history written to {args.history}", file=say)
    if args.json and root:
        print(json.dumps(result))
    return 0


def check_gradients(args: argparse.Namespace) -> int:
    if args.timing:
        return time_gradients_command(args)
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


def bench(args: argparse.Namespace) -> int:
    settings = throughput.Settings(
        backend=args.backend,
        shapes=tuple(args.shape),
        batch_sizes=tuple(args.batch_sizes),
        dtype=args.dtype,
        peers=tuple(args.peers),
        modes=tuple(args.mode),
        repeats=args.repeats,
        min_seconds=args.min_seconds,
        max_seconds=args.max_seconds,
    )
    settings.check()  # before the clock starts: a typo should not cost a sweep
    with tqdm(
        unit="cell",
        disable=True if args.no_progress else None,
        file=sys.stderr,
        leave=False,
    ) as bar:

        def advance(label: str, total: int) -> None:
            bar.total = total
            bar.set_description(label)
            bar.update()

        record = throughput.run(settings, progress=advance)
    record["command"] = " ".join(["gpunet", *map(shlex.quote, args.argv)])
    print(f"backend: {record['backend_reason']}")
    print(throughput.table(record))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        throughput.plot(record, args.plot)
        print(f"wrote {args.plot}")
    return 0


def time_gradients_command(args: argparse.Namespace) -> int:
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


def plot(args: argparse.Namespace) -> int:
    from ..train.plots import plot_histories  # matplotlib: imported only by the commands that draw

    histories = [History.load(path) for path in args.histories]
    output = args.output or Path(args.histories[0]).with_suffix(".png")
    plot_histories(histories, output, labels=[Path(path).stem for path in args.histories])
    print(f"plot written to {output}")
    return 0


def graph(args: argparse.Namespace) -> int:
    from .diagram import draw_graph

    net = Network(args.sizes, args.activations, backend="numpy")
    draw_graph(net, args.output, cost=args.cost, layer=args.layer)
    print(f"graph of {net.sizes} {'/'.join(net.activation_names)} written to {args.output}")
    return 0


def explain_command(args: argparse.Namespace) -> int:
    print(
        explain(
            args.x, args.y, args.w1, args.b1, args.w2, args.b2, cost=args.cost, backend=args.backend
        )
    )
    return 0


def info(args: argparse.Namespace) -> int:
    print(f"gpunet {__version__} on Python {platform.python_version()} ({platform.platform()})")
    backend, reason = select_backend(args.backend)
    print(f"backend: {reason}")
    for key, value in backend.describe().items():
        print(f"  {key}: {value}")
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="gpunet", description="Fully-connected networks trained by explicit backpropagation."
    )
    main.add_argument("--version", action="version", version=f"gpunet {__version__}")
    commands = main.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser, activations: str) -> None:
        sub.add_argument(
            "--activations",
            type=_name_list,
            default=activations,
            help=f"one name, or one per layer comma-separated: {', '.join(ACTIVATIONS)}",
        )
        sub.add_argument(
            "--cost",
            choices=list(COSTS),
            default=None,
            help="default: the output's natural cost (softmax: log_likelihood, "
            "sigmoid: cross_entropy, else quadratic)",
        )
        sub.add_argument("--backend", choices=BACKENDS, default="auto")
        sub.add_argument("--seed", type=int, default=0)

    run = commands.add_parser("train", help="train a network and report its test accuracy")
    run.add_argument(
        "--data",
        default="digits",
        help="'digits' (bundled, the default), an MNIST IDX directory, or mnist.pkl.gz",
    )
    run.add_argument(
        "--test-size",
        type=float,
        default=0.2,
        help="fraction held out when the data has no separate test set",
    )
    run.add_argument(
        "--sizes",
        type=_int_list,
        default=None,
        help="layer widths, e.g. 784,30,10 (default: inputs,30,classes)",
    )
    common(run, "sigmoid")
    run.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd")
    run.add_argument("--lr", type=float, default=None, help="default 0.5 (sgd), 0.001 (adam)")
    run.add_argument("--momentum", type=float, default=0.0)
    run.add_argument("--nesterov", action="store_true")
    run.add_argument(
        "--weight-decay",
        type=float,
        default=0.0,
        help="L2 on the weights; λ/n is Nielsen's regularisation",
    )
    run.add_argument("--epochs", type=int, default=30)
    run.add_argument("--batch-size", type=int, default=10)
    run.add_argument("--dtype", choices=DTYPES, default="float32")
    run.add_argument("--init", choices=INITS, default="lecun")
    run.add_argument("--save", metavar="PATH", help="write the trained network (.npz)")
    run.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with the results as the last line of stdout",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument(
        "--distributed",
        action="store_true",
        help="train over the MPI job's ranks (implied when mpiexec started more than one)",
    )
    run.add_argument("--checkpoint", metavar="PATH", help="save the training state here")
    run.add_argument("--checkpoint-every", type=int, default=1, metavar="N", help="epochs")
    run.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    run.add_argument("--history", metavar="PATH", help="write the History as JSON (for plot)")
    run.add_argument(
        "--diagnostics", action="store_true", help="record per-layer statistics in the History"
    )
    run.set_defaults(handler=train)

    check = commands.add_parser("gradcheck", help="compare backprop with numeric gradients")
    check.add_argument("--sizes", type=_int_list, default=[8, 6, 4])
    common(check, "tanh,softmax")
    check.add_argument("--samples", type=int, default=5)
    check.add_argument("--tolerance", type=float, default=1e-6)
    check.add_argument(
        "--timing",
        action="store_true",
        help="time the numeric gradient against one backprop pass, for networks of --sizes' "
        "depth with every layer --widths wide",
    )
    check.add_argument("--widths", type=_int_list, default=[8, 16, 32, 64])
    check.add_argument("--repeats", type=int, default=3, help="timings: best of this many")
    check.set_defaults(handler=check_gradients)

    measure = commands.add_parser(
        "bench", help="training and inference throughput across batch sizes, beside peers"
    )
    defaults = throughput.Settings()
    measure.add_argument("--backend", choices=BACKENDS, default=defaults.backend)
    measure.add_argument(
        "--shape",
        type=_names,
        default=list(defaults.shapes),
        help=f"comma-separated, from {', '.join(throughput.SHAPES)} (default: all)",
    )
    measure.add_argument(
        "--batch-sizes",
        type=_int_list,
        default=list(defaults.batch_sizes),
        help="comma-separated (default: powers of 4 from 1 to 65536; capped by memory "
        "and by --max-seconds)",
    )
    measure.add_argument("--dtype", choices=throughput.BENCH_DTYPES, default=defaults.dtype)
    measure.add_argument(
        "--peers",
        type=_names,
        default=list(defaults.peers),
        help="comma-separated, from torch (PyTorch eager, and CUDA graphs on a GPU), loop "
        "(one example at a time), numeric (finite differences); '' for none",
    )
    measure.add_argument("--mode", type=_names, default=list(defaults.modes), help="train,infer")
    measure.add_argument(
        "--repeats", type=int, default=defaults.repeats, help="timed runs per cell"
    )
    measure.add_argument(
        "--min-seconds",
        type=float,
        default=defaults.min_seconds,
        help="length of each timed run, at least",
    )
    measure.add_argument(
        "--max-seconds",
        type=float,
        default=defaults.max_seconds,
        help="skip a cell whose estimated time is over this",
    )
    measure.add_argument("--json", metavar="PATH", help="write the full record as JSON")
    measure.add_argument("--plot", metavar="PATH", help="write throughput curves as a PNG")
    measure.add_argument("--no-progress", action="store_true", help="no progress bar")
    measure.set_defaults(handler=bench)
    draw = commands.add_parser("plot", help="plot training histories (from train --history)")
    draw.add_argument("histories", nargs="+", metavar="HISTORY.json", help="one row each")
    draw.add_argument("-o", "--output", help="the PNG (default: the first history's .png)")
    draw.set_defaults(handler=plot)

    chart = commands.add_parser("graph", help="draw a network's forward and backward graph")
    chart.add_argument("--sizes", type=_int_list, default=[784, 30, 30, 10])
    chart.add_argument(
        "--activations",
        type=_name_list,
        default="sigmoid,sigmoid,softmax",
        help=f"one name, or one per layer comma-separated: {', '.join(ACTIVATIONS)}",
    )
    chart.add_argument("--cost", choices=list(COSTS), default=None)
    chart.add_argument("--layer", type=int, default=None, help="the layer drawn in detail")
    chart.add_argument("-o", "--output", required=True, help="the PNG to write")
    chart.set_defaults(handler=graph)

    chain = commands.add_parser(
        "explain", help="the notes' one-neuron chain: hand-derived partials, backprop, numeric"
    )
    for name, default in (
        ("x", 1.0),
        ("y", 0.0),
        ("w1", 0.6),
        ("b1", 0.9),
        ("w2", 2.0),
        ("b2", 2.0),
    ):
        chain.add_argument(f"--{name}", type=float, default=default)
    chain.add_argument("--cost", choices=list(COSTS), default="quadratic")
    chain.add_argument("--backend", choices=BACKENDS, default="auto")
    chain.set_defaults(handler=explain_command)

    about = commands.add_parser("info", help="backend chosen and why, versions, device")
    about.add_argument("--backend", choices=BACKENDS, default="auto")
    about.set_defaults(handler=info)
    return main


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.handler(args)
    except (ValueError, TypeError, FileNotFoundError, BackendUnavailableError) as error:
        print(f"gpunet {args.command}: error: {error}", file=sys.stderr)
        return 2
    except DivergenceError as error:
        print(f"gpunet {args.command}: {error}", file=sys.stderr)
        return 1
