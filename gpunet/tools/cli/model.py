"""The commands that use a saved model (a file of `Network.save` or `train --save`):
`gpunet predict`, `gpunet evaluate` and `gpunet export`."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import numpy as np

from ...core.checks import check_features
from ...core.io import write_atomically
from ...core.network import Network, load
from ..data import Examples, read_examples
from .common import Command, MissingExtraError, add_backend, add_cost, add_data, add_split, count

# outputs whose activations are class scores: predict gives their labels
CLASSIFIER_OUTPUTS = ("softmax", "sigmoid")
PREDICTIONS = (".npy", ".csv")


def add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.npz", help="a network saved by train --save")


def predict_arguments(parser: argparse.ArgumentParser) -> None:
    add_model(parser)
    add_data(parser)
    add_split(parser)
    parser.add_argument(
        "-o", "--output", metavar="OUT", help="write the predictions to OUT.npy or OUT.csv"
    )
    parser.add_argument(
        "--proba",
        action="store_true",
        help="the output activations (class probabilities under softmax), not labels",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_backend(parser)
    parser.add_argument(
        "--batch-size", type=count, default=8192, help="rows on the device at a time"
    )


def evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    add_model(parser)
    add_data(parser)
    add_split(parser)
    add_cost(parser, help="default: the output's natural cost, as train uses")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    add_backend(parser)


def export_arguments(parser: argparse.ArgumentParser) -> None:
    add_model(parser)
    parser.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the ONNX file")


def model_and_data(args: argparse.Namespace, labels: bool) -> tuple[Network, Examples]:
    """The saved network and the examples of --data, their columns checked against its inputs."""
    net = load(args.model, backend=args.backend)
    examples = read_examples(
        args.data,
        split=args.split,
        test_size=args.test_size,
        seed=args.seed,
        labels=labels,
        target_column=args.target_column,
    )
    columns, inputs = examples.X.shape[1], net.sizes[0]
    if columns != inputs:
        hint = ""
        if columns == inputs + 1 and Path(args.data).suffix.lower() == ".csv":
            hint = "; is one a label column? --target-column N leaves it out"
        raise ValueError(
            f"the model {args.model} takes {inputs} inputs, but --data {args.data} has "
            f"{columns} column{'s' * (columns != 1)}{hint}"
        )
    return net, examples


def predictions(net: Network, X: np.ndarray, proba: bool, batch_size: int) -> np.ndarray:
    """Labels (argmax) or, with proba or an output that scores no classes, the outputs A^L,
    batch_size rows at a time."""
    run = net.forward if proba or not is_classifier(net) else net.predict
    parts = [
        net.backend.to_numpy(run(X[start : start + batch_size]))
        for start in range(0, X.shape[0], batch_size)
    ]
    return np.concatenate(parts)


def is_classifier(net: Network) -> bool:
    return net.activation_names[-1] in CLASSIFIER_OUTPUTS


def write_csv(file: TextIO | BinaryIO, values: np.ndarray) -> None:
    """One row a line, comma-separated, each number in the shortest form that reads back
    as the same value (NumPy's str of it)."""
    np.savetxt(file, values, fmt="%s", delimiter=",")


def write_predictions(path: str, values: np.ndarray) -> None:
    """The predictions to path, .npy or .csv by its suffix, atomically."""
    if Path(path).suffix.lower() == ".npy":
        write_atomically(path, lambda file: np.save(file, values, allow_pickle=False))
    else:
        write_atomically(path, lambda file: write_csv(file, values))


def predict_command(args: argparse.Namespace) -> int:
    net, examples = model_and_data(args, labels=False)
    X = check_features(examples.X, net.sizes[0], net.dtype, f"--data {args.data}: X")
    values = predictions(net, X, args.proba, args.batch_size)
    if args.output is not None:
        write_predictions(args.output, values)
    if args.json:
        record: dict[str, Any] = {
            "model": args.model,
            "data": examples.description,
            "rows": len(values),
            "kind": "outputs" if values.ndim == 2 else "labels",
            "predictions": values.tolist(),
        }
        if args.output is not None:
            record["output"] = args.output
        print(json.dumps(record))
    elif args.output is not None:
        print(f"{len(values)} predictions for {examples.description} written to {args.output}")
    else:
        write_csv(sys.stdout, values)  # a reader that stops early (| head): see main()
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    net, examples = model_and_data(args, labels=True)
    cost = net.cost_function(args.cost)
    y = examples.y
    if y.ndim == 1 and net.sizes[-1] == 1 and not is_classifier(net):
        y = y[:, None]  # a regression's target per row, whole numbers (prices, counts) too
    odd = y[(y != np.round(y)) | (np.abs(y) >= 2**53)] if y.shape[1:] == (1,) else ()
    if len(odd) and net.sizes[-1] > 1:  # a CSV's label column, read as real numbers
        raise ValueError(
            f"--data {args.data}: its label column holds {odd[0]:g}, not a class label (a whole "
            f"number) of the model's {net.sizes[-1]} outputs"
        )
    checked = net.checked_inputs(examples.X, y, cost, what=f"--data {args.data}: ")
    result = net.evaluate_checked(*checked, cost)
    record = {
        "model": args.model,
        "data": examples.description,
        "rows": len(examples.X),
        "cost_function": cost.name,
        **result,
    }
    if args.json:
        print(json.dumps(record))
        return 0
    accuracy = "-" if result["accuracy"] is None else f"{result['accuracy']:.4f}"
    print(f"model     {args.model}: {net.sizes} {'/'.join(net.activation_names)}")
    print(f"data      {examples.description}: {len(examples.X)} rows")
    print(f"cost      {result['cost']:.6g} ({cost.name})")
    print(f"accuracy  {accuracy}")
    return 0


def export_command(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("onnx") is None:
        raise MissingExtraError("export --onnx needs onnx: pip install 'gpunet[onnx]'")
    net = load(args.model, backend="numpy")
    net.to_onnx(args.onnx)
    print(f"{args.model} ({net.sizes} {'/'.join(net.activation_names)}) exported to {args.onnx}")
    return 0


PREDICT = Command(
    "predict",
    "predict with a saved model: class labels, or outputs with --proba",
    predict_arguments,
    predict_command,
    outputs={"--output": PREDICTIONS},
)
EVALUATE = Command(
    "evaluate",
    "a saved model's cost and accuracy on labelled data",
    evaluate_arguments,
    evaluate_command,
)
EXPORT = Command(
    "export",
    "export a saved model to ONNX",
    export_arguments,
    export_command,
    outputs={"--onnx": ".onnx"},
)
