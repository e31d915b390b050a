"""Mini-batch training: shuffle, backpropagate each batch, step the optimizer, record a History."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..core.checks import check_count, check_flag, check_output_path
from ..core.costs import Cost
from ..core.optimizers import Optimizer, make_optimizer
from .checkpoint import read_checkpoint, restore, write_checkpoint
from .diagnostics import Recorder
from .distributed import Distributed, DistributedError, distributed_context
from .history import DivergenceError, History

Callback = Callable[[int, dict], Any]


def fit(
    net: Any,
    X: Any,
    Y: Any,
    *,
    epochs: int,
    batch_size: int,
    optimizer: str | Optimizer = "sgd",
    lr: float | None = None,
    cost: str | None = None,
    validation: tuple[Any, Any] | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    progress: bool = True,
    callbacks: Sequence[Callback] | None = None,
    distributed: bool | Distributed | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 1,
    resume: bool = False,
    diagnostics: bool = False,
) -> History:
    """Train `net` on rows of X with targets Y (labels (m,) or (m, n_L)); return the History.

    Each epoch visits every example once in mini-batches of batch_size (the last may be
    smaller), shuffled by a generator seeded with `seed`. `validation=(X_val, Y_val)` is
    evaluated after every epoch. Each callback is called as callback(epoch, metrics)
    after every epoch; one that returns True stops training. `diagnostics=True` adds the
    per-layer statistics of gpunet.diagnostics to the History (read back once per epoch).

    `distributed=True` (or a `Distributed`) trains over the ranks mpiexec launched: each
    backpropagates its shard of every mini-batch and the gradients are averaged
    (docs/distributed.md); only rank 0 shows progress and calls the callbacks. A CuPy
    network must be on its rank's GPU: make the `Distributed.from_mpi()` context before
    the network (True joins MPI here, after the network was made, and moves nothing). With
    `checkpoint=path`, the state is saved there every `checkpoint_every` epochs (by rank
    0), and `resume=True` continues from that file as if training had never stopped.
    """
    # every check first: a bad argument must leave the network and the optimizer untouched,
    # and must be seen before MPI starts
    epochs = check_count("epochs", epochs)
    batch_size = check_count("batch_size", batch_size)
    optimizer = make_optimizer(optimizer, lr)
    optimizer.check_params(net.params)
    cost_ = net.cost_function(cost)
    X, targets, labels = net.checked_inputs(X, Y, cost_)
    if validation is not None:
        if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
            raise TypeError("validation must be a pair (X_val, Y_val)")
        validation = net.checked_inputs(*validation, cost_, what="validation ")
    if callable(callbacks) or isinstance(callbacks, (str, bytes)):
        raise TypeError("callbacks must be a list of callables, e.g. callbacks=[report]")
    callbacks = list(callbacks or ())
    for callback in callbacks:
        if not callable(callback):
            raise TypeError(f"callbacks must be callables, got {type(callback).__name__}")
    checkpoint_every = check_count("checkpoint_every", checkpoint_every)
    resume = check_flag("resume", resume)
    diagnostics = check_flag("diagnostics", diagnostics)
    if checkpoint is not None:
        checkpoint = check_output_path("checkpoint", checkpoint)
    elif resume:
        raise ValueError("resume=True needs the checkpoint path to resume from")
    ctx = distributed_context(distributed)
    # a context made here is closed here however fit ends (its NCCL communicator destroyed)
    with ctx if distributed is True else contextlib.nullcontext():
        if ctx is not None:
            ctx.check_batch_size(batch_size)
            ctx.check_device(net.params)
        return _train(
            net,
            X,
            targets,
            labels,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            cost=cost_,
            validation=validation,
            shuffle=shuffle,
            seed=seed,
            progress=progress,
            callbacks=callbacks,
            ctx=ctx,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            resume=resume,
            diagnostics=diagnostics,
        )


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
    """One training step on the rows `batch` of X and targets (checked arrays on net's
    backend, as `Network.checked_inputs` makes them): gather the rows, BP1–BP4, with `ctx` the
    all-reduce of the gradients, then the optimizer's update (through `recorder` when it
    records diagnostics). Returns the workspace, which holds the batch's forward pass.

    Under `ctx`, `batch` is this rank's shard of a global mini-batch of m rows (possibly
    none of them); in one process m is the batch's size.
    """
    ops, m_r = net.backend, batch.shape[0]
    m = m_r if m is None else m
    ws = net.workspace(m_r)
    ops.gather_rows(X, batch, out=ws.x)
    ops.gather_rows(targets, batch, out=ws.y)
    if m_r:
        net.backpropagate(ws.x, ws.y, ws, cost)
    else:  # this rank's shard of a last batch smaller than the rank count
        net.grads.fill(0)
    if ctx is not None:
        ctx.allreduce_gradients(net.grads, m_r / m)
    if recorder is None:
        optimizer.step(ops, net.params, net.grads, net.n_weights)
    else:
        recorder.step(ws, optimizer, m)
    return ws


def _train(
    net: Any,
    X: Any,
    targets: Any,
    labels: Any,
    *,
    epochs: int,
    batch_size: int,
    optimizer: Optimizer,
    cost: Cost,
    validation: tuple[Any, Any, Any] | None,
    shuffle: bool,
    seed: int | None,
    progress: bool,
    callbacks: list[Callback],
    ctx: Distributed | None,
    checkpoint: Path | None,
    checkpoint_every: int,
    resume: bool,
    diagnostics: bool,
) -> History:
    """fit's training loop, on checked arguments."""
    root = ctx is None or ctx.is_root  # the rank that shows, records and saves
    ops, n = net.backend, X.shape[0]
    batch_size = min(batch_size, n)
    rng = np.random.default_rng(seed)
    history = History(
        backend=net.backend.name,
        dtype=net.dtype.name,
        cost=cost.name,
        optimizer=repr(optimizer),
        batch_size=batch_size,
        examples=n,
        ranks=1 if ctx is None else ctx.size,
        diagnostics=diagnostics,
        sizes=net.sizes,
        activations=net.activation_names,
    )
    recorder = Recorder(net, -(-n // batch_size), ctx) if diagnostics else None
    first = 1
    if resume:
        read = read_checkpoint if ctx is None else partial(ctx.from_root, read_checkpoint)
        first = restore(read(checkpoint), net, optimizer, rng, history, epochs) + 1
    snapshot = ops.empty(net.params.shape, net.dtype)
    bar = tqdm(
        total=epochs * n,
        unit="ex",
        unit_scale=True,
        disable=None if progress and root else True,  # None: only on a terminal
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    )
    # a rank that fails alone must take the job down; divergence and drift are seen by all
    collective = (DivergenceError, DistributedError)
    guard = contextlib.nullcontext() if ctx is None else ctx.abort_on_error(*collective)
    with bar, guard:
        bar.update((first - 1) * n)
        for epoch in range(first, epochs + 1):
            bar.set_description(f"epoch {epoch}/{epochs}")
            ops.xp.copyto(snapshot, net.params)
            order = ops.asarray(rng.permutation(n) if shuffle else np.arange(n))
            started = time.perf_counter()
            total, correct = 0.0, 0
            for start in range(0, n, batch_size):
                batch = order[start : start + batch_size]
                m = batch.shape[0]
                if ctx is not None:
                    batch = batch[ctx.shard(m)]
                ws = train_step(
                    net, X, targets, batch, cost, optimizer, ctx=ctx, m=m, recorder=recorder
                )
                # the step changed the parameters, not the batch's forward pass in ws
                total += net.batch_cost(ws, ws.y, cost)
                if labels is not None:
                    correct += (net.classify(ws.activation[-1]) == labels[batch]).sum()
                bar.update(m)  # every rank's shard of it is done
            # the batch costs were taken before each step: the last step is checked by
            # feeding its batch forward once more
            net.feedforward(ws.x, ws)
            final = net.batch_cost(ws, ws.y, cost)
            if ctx is not None:
                total, correct, final = ctx.sum([float(total), float(correct), float(final)])
            metrics = {
                "cost": float(total) / n,  # the epoch's device-to-host reads
                "accuracy": None if labels is None else float(correct) / n,
            }
            seconds = time.perf_counter() - started
            if not (np.isfinite(metrics["cost"]) and np.isfinite(float(final))):
                ops.xp.copyto(net.params, snapshot)
                raise DivergenceError(
                    f"training diverged in epoch {epoch}: the cost became "
                    f"{metrics['cost'] if not np.isfinite(metrics['cost']) else float(final)} "
                    f"(try a smaller learning rate); parameters restored to the start of the epoch"
                )
            if ctx is not None:
                ctx.check_consistent(net.params, epoch)
            if validation is not None:
                checked = (
                    net.evaluate_checked(*validation, cost)
                    if ctx is None
                    else ctx.evaluate(net, *validation, cost)
                )
                metrics.update(
                    validation_cost=checked["cost"], validation_accuracy=checked["accuracy"]
                )
            metrics.update(seconds=seconds, samples_per_second=n / seconds)
            if recorder is not None:
                metrics.update(recorder.epoch())
            history.append(metrics)
            bar.set_postfix(cost=f"{metrics['cost']:.4g}")
            stop = root and any([callback(epoch, metrics) is True for callback in callbacks])
            if ctx is not None:
                stop = ctx.broadcast(stop)  # rank 0's callbacks decide for all
            due = epoch % checkpoint_every == 0 or epoch == epochs or stop
            if checkpoint is not None and root and due:
                write_checkpoint(checkpoint, net, optimizer, epoch, rng, history)
            if stop:
                break
    return history
