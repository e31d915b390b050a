"""Mini-batch training: shuffle, backpropagate each batch, step the optimizer, then the
epoch's metrics go through the extensions (extensions.py) into a History."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np

from ..core.costs import Cost
from ..core.optimizers import Optimizer
from .callbacks import Callback
from .checkpoint import read_checkpoint, restore
from .diagnostics import Recorder
from .distributed import Distributed, DistributedError, distributed_context
from .extensions import Epoch, EpochFunction, standard_extensions
from .history import DivergenceError, History
from .run import Run


def fit(
    net: Any,
    X: Any,
    Y: Any,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    optimizer: str | Optimizer | None = None,
    lr: float | None = None,
    cost: str | None = None,
    validation: tuple[Any, Any] | None = None,
    validation_split: float | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    progress: bool = True,
    callbacks: Sequence[Callback | EpochFunction] | None = None,
    distributed: bool | Distributed | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    diagnostics: bool = False,
) -> History:
    """Train `net` on rows of X with targets Y (labels (m,) or (m, n_L)); return the History.

    Each epoch visits every example once in mini-batches of batch_size (the last may be
    smaller), shuffled by a generator seeded with `seed`. The optimizer defaults to SGD at
    `lr` when lr is given, else Adam() (lr 0.001). `validation=(X_val, Y_val)` is
    evaluated after every epoch; `validation_split=f` instead holds out the last
    floor(f·m) rows of X and Y as that validation data, taken before any shuffle as Keras
    takes them. Each callback is a function called as callback(epoch, metrics) after every
    epoch, or a gpunet.Callback object whose hooks also get the network (EarlyStopping,
    SaveBest: gpunet.train.callbacks); one that returns True stops training.
    `diagnostics=True` adds the per-layer statistics of gpunet.train.diagnostics to the
    History (read back once per epoch).

    `seed` governs the shuffle alone (None: fresh entropy, a different order on every run);
    the initial weights come from the Network's seed. A run repeats exactly when both are
    given: Network(..., seed=0).fit(..., seed=0).

    An epoch whose cost is not finite or explodes (over 100 times the cost training started
    from; gpunet.train.extensions.Divergence) raises DivergenceError. Whatever stops training
    with an exception (a callback's, DivergenceError, KeyboardInterrupt), the network is
    left with the parameters of the last finished epoch and the exception carries that
    epoch's History as its attribute `history`.

    `distributed=True` (or a `Distributed`) trains over the ranks mpiexec launched: each
    backpropagates its shard of every mini-batch and the gradients are averaged
    (docs/distributed.md); only rank 0 shows progress and calls the callbacks. A CuPy
    network must be on its rank's GPU: make the `Distributed.from_mpi()` context before
    the network (True joins MPI here, after the network was made, and moves nothing). With
    `checkpoint=path`, the state is saved there every `checkpoint_every` epochs (by rank
    0), and `resume=True` continues from that file as if training had never stopped.
    If a callback raises, or training diverges (DivergenceError), the exception carries the
    History of the epochs already done as its attribute `history`.
    """
    # every check first: a bad argument must leave the network and the optimizer untouched,
    # and must be seen before MPI starts
    run = Run.checked(
        net,
        X,
        Y,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        cost=cost,
        validation=validation,
        validation_split=validation_split,
        shuffle=shuffle,
        seed=seed,
        progress=progress,
        callbacks=callbacks,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        diagnostics=diagnostics,
    )
    ctx = distributed_context(distributed)
    # a context made here is closed here however fit ends (its NCCL communicator destroyed)
    with ctx if distributed is True else contextlib.nullcontext():
        if ctx is not None:
            ctx.check_batch_size(run.batch_size)
            ctx.check_device(net.params)
        return train(net, run, ctx)


def train_step(
    net: Any,
    X: Any,
    targets: Any,
    batch: Any,
    cost: Cost,
    optimizer: Optimizer,
    *,
    ctx: Distributed | None = None,
    m: int | None = None,
    recorder: Recorder | None = None,
) -> Any:
    """One training step on the rows `batch` (indices, or a slice taken as views) of X and
    targets (checked arrays on net's backend, as `Network.checked_inputs` makes them): gather
    the rows, BP1–BP4, with `ctx` the all-reduce of the gradients, then the optimizer's update
    (through `recorder` when it records diagnostics). Returns the workspace, which holds the
    batch's forward pass and, as ws.inputs and ws.targets, its rows.

    Under `ctx`, `batch` is this rank's shard of a global mini-batch of m rows (possibly
    none of them); in one process m is the batch's size.
    """
    ops = net.backend
    if isinstance(batch, slice):  # rows in order (no shuffle): views, nothing gathered
        x, y = X[batch], targets[batch]
        ws = net.workspace(x.shape[0])
    else:
        ws = net.workspace(batch.shape[0])
        x, y = ops.gather_rows(X, batch, out=ws.x), ops.gather_rows(targets, batch, out=ws.y)
    ws.inputs, ws.targets = x, y
    m_r = x.shape[0]
    m = m_r if m is None else m
    # plain SGD folds lr into BP1, its update then one subtraction; not under MPI, whose
    # all-reduce averages the plain gradients
    scale = optimizer.bp1_scale() if ctx is None else None
    if m_r:
        net.backpropagate(x, y, ws, cost, scale or 1.0)
    else:  # this rank's shard of a last batch smaller than the rank count
        net.grads.fill(0)
    if ctx is not None:
        ctx.allreduce_gradients(net.grads, m_r / m)
    if scale is None:
        take_step = partial(optimizer.step, ops, net.params, net.grads, net.n_weights)
    else:
        take_step = partial(optimizer.descend, ops, net.params, net.grads)
    if recorder is None:
        take_step()
    else:
        recorder.step(ws, take_step, m, scale or 1.0)
    return ws


def train(net: Any, run: Run, ctx: Distributed | None) -> History:
    """fit's loop on a checked Run: every epoch, train_step on each shuffled mini-batch, then
    the epoch's metrics, then the extensions (gpunet.train.extensions) in their order."""
    n = run.X.shape[0]
    batch_size = min(run.batch_size, n)
    rng = np.random.default_rng(run.seed)
    history = _new_history(net, run, batch_size, ctx)
    recorder = Recorder(net, -(-n // batch_size), ctx) if run.diagnostics else None
    first = _resumed_epoch(net, run, ctx, rng, history) + 1 if run.resume else 1
    extensions = standard_extensions(net, run, ctx, rng, history, recorder)
    # a rank that fails alone must take the job down; divergence and drift are seen by all
    collective = (DivergenceError, DistributedError)
    guard = contextlib.nullcontext() if ctx is None else ctx.abort_on_error(*collective)
    with _carrying(history), guard, extensions.running(first):
        _epochs(net, run, ctx, rng, recorder, extensions, first)
    return history


@contextlib.contextmanager
def _carrying(history: History) -> Iterator[None]:
    """Any exception out of training carries the History of the finished epochs, as its
    attribute `history` (unless it has one of its own): what was done stays reachable."""
    try:
        yield
    except BaseException as error:
        if not hasattr(error, "history"):
            error.history = history
        raise


def _epochs(
    net: Any,
    run: Run,
    ctx: Distributed | None,
    rng: np.random.Generator,
    recorder: Recorder | None,
    extensions: Any,
    first: int,
) -> None:
    """Epochs first..run.epochs of train's loop (or until an extension stops it)."""
    ops, X, targets, n = net.backend, run.X, run.targets, run.X.shape[0]
    cost, optimizer, batch_size = run.cost, run.optimizer, min(run.batch_size, n)
    for number in range(first, run.epochs + 1):
        extensions.before_epoch(number)
        order = ops.asarray(rng.permutation(n) if run.shuffle else np.arange(n))
        started = time.perf_counter()
        sums = EpochSums(net, cost, run.labels, ctx)
        for batch, m in _batches(order, batch_size, ctx, run.shuffle):
            ws = train_step(
                net, X, targets, batch, cost, optimizer, ctx=ctx, m=m, recorder=recorder
            )
            sums.add(ws, batch)
            extensions.after_batch(m)
        metrics, final_cost = sums.metrics(ws, n)
        epoch = Epoch(number, metrics, time.perf_counter() - started, final_cost)
        extensions.after_epoch(epoch)
        if epoch.stop:
            break


def _batches(
    order: Any, batch_size: int, ctx: Distributed | None, shuffled: bool = True
) -> Iterator[tuple[Any, int]]:
    """Each mini-batch of the shuffled `order` with its size m; under ctx, this rank's shard.
    Unshuffled in one process, a batch is a slice: train_step takes views of its rows."""
    n = order.shape[0]
    for start in range(0, n, batch_size):
        if not shuffled and ctx is None:
            stop = min(start + batch_size, n)
            yield slice(start, stop), stop - start
            continue
        batch = order[start : start + batch_size]
        m = batch.shape[0]
        yield (batch if ctx is None else batch[ctx.shard(m)]), m


# rows of the last batch fed forward again after the epoch's last step (see EpochSums)
PROBE_ROWS = 64


class EpochSums:
    """An epoch's cost and correct classifications, summed over its mini-batches on the device."""

    def __init__(self, net: Any, cost: Cost, labels: Any, ctx: Distributed | None) -> None:
        self.net, self.cost, self.labels, self.ctx = net, cost, labels, ctx
        self.total, self.correct = 0.0, 0

    def add(self, ws: Any, batch: Any) -> None:
        """Add the cost and correct outputs of the batch in ws (fed forward before its step)."""
        # the step changed the parameters, not the batch's forward pass in ws
        self.total += self.net.batch_cost(ws, ws.targets, self.cost)
        if self.labels is not None:
            self.correct += (self.net.classify(ws.activation[-1]) == self.labels[batch]).sum()

    def metrics(self, ws: Any, n: int) -> tuple[dict[str, float | None], float]:
        """The epoch's mean cost and accuracy over n examples, and the cost of the last
        batch's first PROBE_ROWS rows after the last step, as host floats summed over the
        ranks."""
        net, total, correct = self.net, self.total, self.correct
        # the batch costs were taken before each step: the last step is checked by feeding
        # the first rows of its batch forward once more (non-finite parameters or overflowing
        # activations show in any row; a whole batch would cost up to 8% of an epoch)
        rows = min(PROBE_ROWS, ws.inputs.shape[0])
        probe = net.workspace(rows)
        net.feedforward(ws.inputs[:rows], probe)
        final = net.batch_cost(probe, ws.targets[:rows], self.cost)
        if self.ctx is not None:
            total, correct, final = self.ctx.sum([float(total), float(correct), float(final)])
        metrics = {
            "cost": float(total) / n,  # the epoch's device-to-host reads
            "accuracy": None if self.labels is None else float(correct) / n,
        }
        return metrics, float(final)


def _new_history(net: Any, run: Run, batch_size: int, ctx: Distributed | None) -> History:
    """An empty History whose meta describes the run (batch_size: the one used, at most m)."""
    return History(
        backend=net.backend.name,
        dtype=net.dtype.name,
        cost=run.cost.name,
        optimizer=repr(run.optimizer),
        batch_size=batch_size,
        examples=run.X.shape[0],
        ranks=1 if ctx is None else ctx.size,
        diagnostics=run.diagnostics,
        sizes=net.sizes,
        activations=net.activation_names,
    )


def _resumed_epoch(
    net: Any, run: Run, ctx: Distributed | None, rng: np.random.Generator, history: History
) -> int:
    """Restore the run's checkpoint into net, optimizer, rng and history; return its epoch.

    Under MPI rank 0 reads the file and every rank restores what it read.
    """
    read = read_checkpoint if ctx is None else partial(ctx.from_root, read_checkpoint)
    return restore(read(run.checkpoint), net, run.optimizer, rng, history, run.epochs)
