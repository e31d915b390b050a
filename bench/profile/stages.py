"""Per-stage timing of gpunet's training step (NumPy backend): fit's loop, a clock on every call.

Each epoch steps through a shuffled order with gpunet.train.train_step, then takes the
batch cost and the accuracy as fit does. The backend times each of its calls (the gather,
every GEMM, bias + activation, BP1–BP4, the SGD update), labelled by the stage of the step
it computes; what the stages leave of the step is the Python around them. The first epoch
warms up; the rest are averaged. Run from the checkout (the output kept in
bench/results/profile):

    PYTHONPATH=. python bench/profile/stages.py > bench/results/profile/stages.txt

With --clock cpu, BLAS runs on one thread and each call is timed by the calling thread's
CPU time: the work itself, unaffected by other processes on a shared machine.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import gpunet
from bench.epoch_vs_torch import LR, make_data, make_gpunet
from bench.profile.common import parser
from gpunet.core.backends import NumpyBackend
from gpunet.train import train_step

EPOCHS = 3  # the first one a warm-up
clock = time.perf_counter  # time.thread_time with --clock cpu
CLOCKED = (
    "gather_rows",
    "matmul",
    "bias_activation",
    "output_minus_target",  # BP1, softmax + log-likelihood cancelled: one call
    "bias_gradient",
    "activation_delta",
    "sgd_update",
    "descend",  # plain SGD: p -= lr·∂C/∂p, lr folded into BP1
)


def stage_labels(net: gpunet.Network) -> list[str]:
    """The backend calls of one training step, in the order train_step makes them."""
    layers, names = len(net.weights), net.activation_names
    labels = ["1 gather X", "1 gather Y"]
    for l in range(1, layers + 1):
        labels += [f"2 fwd GEMM W{l}·A{l - 1}", f"3 fwd bias + {names[l - 1]} L{l}"]
    labels.append("4 BP1 output delta")
    for l in range(layers, 0, -1):
        labels += [f"5 BP3 bias grad L{l}", f"6 BP4 GEMM dW{l}"]
        if l > 1:
            labels += [f"6 BP2 GEMM W{l}^T·delta", f"7 BP2 {names[l - 2]}' L{l - 1}"]
    labels.append("9 SGD step")
    return labels


class ClockedBackend(NumpyBackend):
    """NumPy's backend with a clock on each call of the step, summed per stage label."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[str] = []
        self.calls = 0
        self.seconds: dict[str, float] = defaultdict(float)
        for name in CLOCKED:
            setattr(self, name, self._clocked(getattr(super(), name)))

    def _clocked(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def clocked(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            result = method(*args, **kwargs)
            self.seconds[self.labels[self.calls]] += clock() - started
            self.calls += 1
            return result

        return clocked


def run(X: np.ndarray, y: np.ndarray, batch_size: int) -> None:
    ops = ClockedBackend()
    net = make_gpunet(ops)
    ops.labels = stage_labels(net)
    cost = net.cost_function("log_likelihood")
    inputs, targets, labels = net.checked_inputs(X, y, cost)
    optimizer = gpunet.SGD(LR)
    n, rng, seconds = inputs.shape[0], np.random.default_rng(0), ops.seconds
    for epoch in range(EPOCHS):
        if epoch == 1:
            seconds.clear()
            epoch_started = clock()
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            ops.calls = 0
            started = clock()
            ws = train_step(net, inputs, targets, batch, cost, optimizer)
            stepped = clock()
            net.batch_cost(ws, ws.y, cost)
            costed = clock()
            (net.classify(ws.activation[-1]) == labels[batch]).sum()
            done = clock()
            assert ops.calls == len(ops.labels), "train_step's calls are not the labels'"
            seconds["8 batch cost"] += costed - stepped
            seconds["8 accuracy (argmax, labels[batch])"] += done - costed
            seconds["~ step total"] += done - started
    epochs = EPOCHS - 1
    print(
        f"\n=== B={batch_size}: {(clock() - epoch_started) / epochs:.3f} s/epoch "
        f"(instrumented, {-(-n // batch_size)} steps)"
    )
    total = seconds["~ step total"]
    stages = sum(share for label, share in seconds.items() if not label.startswith("~"))
    seconds["~ the rest (workspace, Python)"] = total - stages
    for label in sorted(seconds):
        share = seconds[label]
        print(f"  {label:45s} {share / epochs * 1e3:8.1f} ms/epoch  {share / total * 100:5.1f}%")
    gemm = sum(share for label, share in seconds.items() if "GEMM" in label)
    print(f"  {'[all GEMMs]':45s} {gemm / epochs * 1e3:8.1f} ms/epoch  {gemm / total * 100:5.1f}%")


def main() -> None:
    global clock
    options = parser(__doc__)
    options.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = options.parse_args()
    X, y = make_data(args.examples)
    limit = None
    if args.clock == "cpu":
        clock, limit = time.thread_time, threadpool_limits(1, user_api="blas")
    for batch_size in args.batch_sizes:
        run(X, y, batch_size)
    if limit is not None:
        limit.restore_original_limits()


if __name__ == "__main__":
    main()
