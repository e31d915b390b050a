"""What bench/epoch_vs_torch.py sets side by side: the shapes, their data, gpunet's network and
the same network in PyTorch with gpunet's initial weights, PyTorch's training loop, and the
record of the machine both ran on."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

import gpunet
from bench import record
from gpunet.core.backends import Backend

N_EXAMPLES = 16_384  # rows of one timed epoch at most (256 steps of B rows below B = 64)
LR, ADAM_LR = 0.1, 1e-3  # plain SGD's and Adam's learning rates
DATA_SEED = 20240601
_clock = time.perf_counter


def now() -> float:
    """The benchmarks' clock: wall time, or after use_cpu_clock() the thread's CPU time."""
    return _clock()


def use_cpu_clock() -> None:
    """Time by the calling thread's CPU time (for runs on one thread: the work itself)."""
    global _clock
    _clock = time.thread_time


@dataclass(frozen=True)
class Shape:
    sizes: list[int]
    activations: list[str]
    cost: str  # gpunet's name; the torch loss below is the same batch-mean cost


SHAPES = {
    "mnist-mlp": Shape([784, 256, 256, 10], ["relu", "relu", "softmax"], "log_likelihood"),
    "nielsen": Shape([784, 30, 10], ["sigmoid", "sigmoid"], "cross_entropy"),
    "narrow-deep": Shape([784] + [64] * 8 + [10], ["relu"] * 8 + ["softmax"], "log_likelihood"),
}
MNIST = SHAPES["mnist-mlp"]


def make_data(
    n: int = N_EXAMPLES, seed: int = DATA_SEED, shape: Shape = MNIST
) -> tuple[np.ndarray, np.ndarray]:
    """n rows in [0, 1) and integer labels, float32."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, shape.sizes[0]), dtype=np.float32)
    y = rng.integers(0, shape.sizes[-1], size=n, dtype=np.int64)
    return X, y


def make_gpunet(backend: str | Backend = "numpy", shape: Shape = MNIST) -> gpunet.Network:
    return gpunet.Network(
        shape.sizes, shape.activations, backend=backend, dtype="float32", init="he", seed=0
    )


def make_torch(net: gpunet.Network, shape: Shape = MNIST) -> nn.Sequential:
    """The same network in torch, gpunet's initial weights copied in; the output layer ends
    in logits (its activation lives in the loss and in `torch_outputs`)."""
    act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
    layers: list[nn.Module] = []
    for (n_in, n_out), name in zip(itertools.pairwise(shape.sizes), shape.activations):
        layers += [nn.Linear(n_in, n_out), act.get(name, nn.Identity)()]
    model = nn.Sequential(*layers[:-1])
    weights, biases = net.get_params()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for linear, w, b in zip(linears, weights, biases):
            linear.weight.copy_(torch.from_numpy(w))  # (out, in), like gpunet's W
            linear.bias.copy_(torch.from_numpy(b))
    return model.float()


def torch_loss(shape: Shape):
    """The batch-mean cost of gpunet's `shape.cost` on logits, as torch computes it."""
    if shape.cost == "log_likelihood":
        return nn.CrossEntropyLoss()  # mean over the batch of −ln softmax(z)_y
    bce = nn.BCEWithLogitsLoss(reduction="sum")  # Σ_j per example ...
    return lambda z, y: bce(z, nn.functional.one_hot(y, z.shape[1]).to(z.dtype)) / z.shape[0]


def torch_outputs(shape: Shape, logits: torch.Tensor) -> torch.Tensor:
    """A^L from the logits: what gpunet's forward returns."""
    if shape.activations[-1] == "softmax":
        return torch.softmax(logits, dim=1)
    return torch.sigmoid(logits)


class TorchTrainer:
    """A plain PyTorch training loop, as its tutorials write it."""

    def __init__(self, model: nn.Module, shape: Shape = MNIST, optimizer: str = "sgd") -> None:
        self.model, self.loss_fn = model, torch_loss(shape)
        if optimizer == "sgd":
            self.optimizer = torch.optim.SGD(model.parameters(), lr=LR)  # momentum 0
        else:
            self.optimizer = torch.optim.Adam(model.parameters(), lr=ADAM_LR)
        self.generator = torch.Generator().manual_seed(0)

    def epoch(
        self, X: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = True
    ) -> tuple[float, float]:
        """(wall seconds, mean train cost) for one epoch: randperm and a gather of each
        batch's rows (slices without shuffle), zero_grad, forward, loss, backward, step,
        and the loss summed on the tensor (one host read, as gpunet)."""
        model, loss_fn, optimizer = self.model, self.loss_fn, self.optimizer
        started = now()
        n = X.shape[0]
        order = torch.randperm(n, generator=self.generator) if shuffle else None
        total = torch.zeros((), dtype=torch.float32)
        for start in range(0, n, batch_size):
            if order is None:
                xb, yb = X[start : start + batch_size], y[start : start + batch_size]
            else:
                batch = order[start : start + batch_size]
                xb, yb = X[batch], y[batch]  # gathered by index, as gpunet does
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.detach() * xb.shape[0]  # Σ_x C_x, as gpunet accumulates
        cost = float(total) / n
        return now() - started, cost


def machine() -> dict:
    """The shared machine record (bench/record.py) and PyTorch's threads, version and BLAS."""
    shared = record.machine()
    return {
        **shared,
        "torch_threads": torch.get_num_threads(),
        "versions": {**shared["versions"], "torch": torch.__version__},
        # the lines of torch's build that name its BLAS and kernels (the rest holds paths)
        "torch_build": [
            line.strip(" -")
            for line in torch.__config__.show().splitlines()
            if any(word in line for word in ("Math Kernel", "MKL-DNN", "CPU capability"))
        ],
    }
