"""The training step written other ways, for the throughput benchmark to set beside gpunet's.

Every runner takes mini-batches as index arrays into one pool of examples held where it
computes, and gathers its batch from there as `fit` does:

- `gpunet_runner`: gpunet itself, the step `fit` takes (gather, BP1–BP4, SGD update);
- `gemm_runner`: the GEMMs of that step alone, through the same BLAS: the ceiling;
- `loop_runner`: one example at a time, in the style of Nielsen's network.py: the
  baseline the texts improve on with the fully matrix-based approach;
- `torch_runner`: PyTorch eager (nn.Linear + activation modules, the same cost,
  torch.optim.SGD), and with `graphs=True` the same step captured once in a CUDA graph
  and replayed (GPU only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...core.costs import Cost
from ...core.network import Network
from ...core.optimizers import SGD

Array = Any


@dataclass
class Pool:
    """Examples on the host: x (rows, n_0), y (rows, n_L) targets, labels (rows,) or None."""

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray | None


@dataclass
class Runner:
    """One implementation's training step and inference pass over a batch of pool rows."""

    train: Callable[[Any], None]
    infer: Callable[[Any], None]
    sync: Callable[[], None]  # wait for queued device work; the timer stops after it
    indices: Callable[[np.ndarray], Any]  # host row indices -> the runner's index array
    params: Any = None  # the runner's own copy of the parameters, where it keeps one


def _backend_sync(net: Network) -> Callable[[], None]:
    if net.backend.name == "cupy":
        return net.backend.xp.cuda.Device().synchronize
    return lambda: None


def gpunet_runner(net: Network, pool: Pool, cost: Cost, lr: float) -> Runner:
    """The step of `fit`: gather the batch, backpropagate (BP1–BP4), update with SGD."""
    from ...train.loop import train_step

    ops = net.backend
    x, y = ops.asarray(pool.x, net.dtype), ops.asarray(pool.y, net.dtype)
    optimizer = SGD(lr)

    def train(batch: Array) -> None:
        train_step(net, x, y, batch, cost, optimizer)

    def infer(batch: Array) -> None:
        ws = net.workspace(batch.shape[0])
        ops.gather_rows(x, batch, out=ws.x)
        net.feedforward(ws.x, ws)

    return Runner(train, infer, _backend_sync(net), ops.asarray, net.params)


def step_gemms(sizes: list[int], m: int, mode: str) -> list[tuple[int, int, int]]:
    """(rows, inner, columns) of each GEMM in a step over m examples.

    Forward: Z^l = W^l A^{l-1}, one per layer. Training adds BP4's delta^l (A^{l-1})^T
    for every layer and BP2's (W^{l+1})^T delta^{l+1} for every layer but the first
    (nothing needs the gradient of the input), as gpunet and PyTorch both compute it.
    """
    layers = list(zip(sizes[1:], sizes[:-1]))
    forward = [(n_out, n_in, m) for n_out, n_in in layers]
    if mode == "infer":
        return forward
    weight_gradients = [(n_out, m, n_in) for n_out, n_in in layers]
    backward = [(n_in, n_out, m) for n_out, n_in in layers[1:]]
    return forward + weight_gradients + backward


def gemm_runner(net: Network) -> Runner:
    """The GEMMs of gpunet's step alone (same shapes, transposes and buffers): the ceiling."""
    ops = net.backend

    def workspace(m: int):
        ws = net.workspace(m)
        if not getattr(ws, "filled", False):  # garbage could hold NaNs or denormals: slow
            for buffer in (ws.x, *ws.weighted_input, *ws.activation, *ws.delta):
                buffer.fill(0.01)
            ws.filled = True
        return ws

    def infer(batch: Array) -> None:
        ws = workspace(batch.shape[0])
        activation = ws.x.T
        for w, z, a in zip(net.weights, ws.weighted_input, ws.activation):
            ops.matmul(w, activation, out=z)
            activation = a

    def train(batch: Array) -> None:
        infer(batch)
        ws = workspace(batch.shape[0])
        for i in reversed(range(len(net.weights))):
            previous = ws.x.T if i == 0 else ws.activation[i - 1]
            ops.matmul(ws.delta[i], previous.T, out=net.grads_w[i])
            if i:
                ops.matmul(net.weights[i].T, ws.delta[i], out=ws.delta[i - 1])

    return Runner(train, infer, _backend_sync(net), ops.asarray)


def loop_runner(net: Network, pool: Pool, cost: Cost, lr: float) -> Runner:
    """Nielsen's update_mini_batch: backprop one example (a column) at a time, sum, step."""
    ops, xp = net.backend, net.backend.xp
    weights = [w.copy() for w in net.weights]
    biases = [b.copy()[:, None] for b in net.biases]
    x, y = ops.asarray(pool.x, net.dtype), ops.asarray(pool.y, net.dtype)
    g = net.activations

    def feedforward(activation: Array) -> tuple[list[Array], list[Array]]:
        weighted_inputs, activations = [], [activation]
        for w, b, g_l in zip(weights, biases, g):
            z = w @ activation + b
            activation = g_l.forward(ops, z, xp.empty_like(z))
            weighted_inputs.append(z)
            activations.append(activation)
        return weighted_inputs, activations

    def backprop(example: Array, target: Array) -> tuple[list[Array], list[Array]]:
        """BP1–BP4 for one example: (dC_x/db^l, dC_x/dW^l) for every layer."""
        weighted_inputs, activations = feedforward(example)
        seed = cost.gradient(ops, activations[-1], target, xp.empty_like(activations[-1]))
        delta = g[-1].backward(ops, seed, weighted_inputs[-1], activations[-1], seed)  # BP1
        nabla_b, nabla_w = [delta], [delta @ activations[-2].T]  # BP3, BP4
        for l in range(2, len(weights) + 1):
            back = weights[-l + 1].T @ delta
            delta = g[-l].backward(ops, back, weighted_inputs[-l], activations[-l], back)  # BP2
            nabla_b.insert(0, delta)
            nabla_w.insert(0, delta @ activations[-l - 1].T)
        return nabla_b, nabla_w

    def train(batch: np.ndarray) -> None:
        nabla_b = [xp.zeros_like(b) for b in biases]
        nabla_w = [xp.zeros_like(w) for w in weights]
        for i in batch.tolist():
            delta_b, delta_w = backprop(x[i][:, None], y[i][:, None])
            for total, part in zip(nabla_b + nabla_w, delta_b + delta_w):
                total += part
        for parameter, total in zip(weights + biases, nabla_w + nabla_b):
            parameter -= (lr / len(batch)) * total

    def infer(batch: np.ndarray) -> None:
        for i in batch.tolist():
            feedforward(x[i][:, None])

    return Runner(train, infer, _backend_sync(net), np.asarray, (weights, biases))


class PeerUnavailableError(RuntimeError):
    """A peer that cannot run here (not installed, or no GPU): reported, never dropped."""


def torch_runner(
    net: Network, pool: Pool, cost: Cost, lr: float, *, graphs: bool = False
) -> Runner:
    """The same network, cost and SGD in PyTorch, from the same initial parameters."""
    try:
        import torch
    except ImportError:
        raise PeerUnavailableError("PyTorch is not installed") from None
    device = "cuda" if net.backend.name == "cupy" else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise PeerUnavailableError("this PyTorch build has no usable CUDA device")
    if graphs and device != "cuda":
        raise PeerUnavailableError("CUDA graphs need a GPU")
    dtype = getattr(torch, net.dtype.name)
    model, loss = _torch_model(torch, net, cost, device, dtype)
    x = torch.as_tensor(pool.x, dtype=dtype, device=device)
    if cost.name == "log_likelihood" and net.activations[-1].name == "softmax":
        targets = torch.as_tensor(pool.labels, device=device)
    else:
        targets = torch.as_tensor(pool.y, dtype=dtype, device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)

    def train(batch: Any) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss(model(x[batch]), targets[batch]).backward()
        optimizer.step()

    def infer(batch: Any) -> None:
        with torch.no_grad():
            model(x[batch])

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if graphs:
        train, infer = _graphed(torch, train), _graphed(torch, infer)
    return Runner(
        train,
        infer,
        sync,
        lambda batch: torch.as_tensor(batch, device=device),
        list(model.parameters()),
    )


def _torch_model(torch: Any, net: Network, cost: Cost, device: str, dtype: Any):
    """nn.Sequential with net's parameters copied in, and the loss as the batch-mean cost."""
    nn = torch.nn
    modules = {
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(0.01),
        "identity": nn.Identity,
        "softplus": nn.Softplus,
        "gelu": nn.GELU,
        "softmax": lambda: nn.Softmax(dim=1),
    }
    output = net.activations[-1].name
    # the output activation folds into the loss where PyTorch has the fused, stable form
    if (output, cost.name) == ("softmax", "log_likelihood"):
        loss = nn.CrossEntropyLoss()  # mean over the batch of −ln softmax(z)_y
    elif (output, cost.name) == ("sigmoid", "cross_entropy"):
        bce = nn.BCEWithLogitsLoss(reduction="sum")
        loss = lambda z, y: bce(z, y) / y.shape[0]  # noqa: E731 (Σ_j per example, mean over x)
    elif cost.name == "quadratic":
        loss = lambda a, y: 0.5 * ((a - y) ** 2).sum() / y.shape[0]  # noqa: E731
        output = None
    else:
        raise PeerUnavailableError(f"no PyTorch counterpart set up for {output} + {cost.name}")
    layers: list[Any] = []
    weights, biases = net.get_params()
    for i, (w, b, g) in enumerate(zip(weights, biases, net.activation_names)):
        linear = nn.Linear(w.shape[1], w.shape[0], device=device, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(w))  # (out, in), like gpunet's W
            linear.bias.copy_(torch.as_tensor(b))
        layers.append(linear)
        if not (i == len(weights) - 1 and output is not None):
            layers.append(modules[g]())
    return nn.Sequential(*layers), loss


def _graphed(torch: Any, step: Callable[[Any], None]) -> Callable[[Any], None]:
    """`step` captured once per batch size into a CUDA graph, then replayed on new indices."""
    captured: dict[int, tuple[Any, Any]] = {}

    def replay(batch: Any) -> None:
        m = batch.shape[0]
        if m not in captured:
            static = batch.clone()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up off the default stream, as PyTorch asks
                for _ in range(3):
                    step(static)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                step(static)
            captured[m] = (graph, static)
        graph, static = captured[m]
        static.copy_(batch)
        graph.replay()

    return replay
