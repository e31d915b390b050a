"""The public API as a typed program uses it: CI runs `mypy --strict` on this file (gpunet
ships py.typed, so mypy reads the package's annotations), and tests/test_packaging.py runs it.

Each assignment to an annotated name is a check: were a public signature to return another
type, mypy would say so here.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

import gpunet


def main(directory: Path) -> float:
    X: NDArray[np.float32]
    y: NDArray[np.int64]
    X, y = gpunet.datasets.digits()
    X_train, y_train, X_test, y_test = gpunet.datasets.train_test_split(
        X, y, test_size=0.2, shuffle=True, seed=0
    )
    first: NDArray[np.float32] = X_train[:5]

    net = gpunet.Network([64, 30, 10], ["relu", "softmax"], backend="numpy", seed=0)
    optimizer: gpunet.Optimizer = gpunet.SGD(0.1, momentum=0.9)
    history: gpunet.History = net.fit(
        X_train, y_train, epochs=2, batch_size=32, optimizer=optimizer, seed=0, progress=False
    )
    epochs: int = history.epochs

    outputs: NDArray[np.floating] = net.forward(first)
    labels: NDArray[np.int64] = net.predict(X_test)
    metrics: gpunet.Metrics = net.evaluate(X_test, y_test)
    cost: float = net.cost(X_test.tolist(), y_test.tolist())  # any array-like
    grads_w, grads_b = net.gradients(X_test[:10], y_test[:10])
    weights, biases = net.get_params()
    net.set_params(weights, biases)

    path = directory / "digits.npz"
    net.save(path)
    same: gpunet.Network = gpunet.load(path, backend="numpy")
    assert (same.predict(X_test) == labels).all()
    assert outputs.shape == (5, 10) and epochs == 2
    assert grads_w[0].shape == weights[0].shape and grads_b[1].shape == biases[1].shape
    mean_cost: float = metrics["cost"]
    accuracy = metrics["accuracy"]
    assert accuracy is not None and abs(cost - mean_cost) < 1e-6
    return accuracy


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        print(f"test accuracy {main(Path(directory)):.4f}")
    sys.exit(0)
