"""What fit does around its mini-batch loop, as extensions in the manner of Chainer's trainer
extensions and Keras's callbacks: objects with a few hooks, called in a fixed order.

The loop (gpunet.train.loop.train) calls, for the extensions of `standard_extensions` in
their list order:

    initialize(first)       once, before the first epoch (first > 1 when resumed)
    before_epoch(epoch)     at the start of every epoch, before its shuffle
    after_batch(m)          after every step on a mini-batch of m examples (all ranks' shards)
    after_epoch(epoch)      with the epoch's Epoch record, its metrics the job's (summed over
                            the ranks); an extension may add metrics or set epoch.stop
    complete()              once, after the last epoch, unless an exception ended training
    finalize()              once, however training ended (an exception included)

and the order is

    Divergence        snapshot of the parameters; DivergenceError on a non-finite or
                      exploded cost; the parameters of the last recorded epoch however
                      training ends
    RankConsistency   (distributed) DistributedError unless the ranks' parameters agree
    Validation        (with validation data) validation_cost, validation_accuracy
    Throughput        seconds, samples_per_second
    Diagnostics       (diagnostics=True) the Recorder's per-layer statistics
    Recording         the metrics appended to the History
    Progress          the progress bar (rank 0, on a terminal)
    Callbacks         the user's callbacks (functions, and Callback objects that see the
                      network: gpunet.train.callbacks), on rank 0; stop when one returns
                      True; under MPI rank 0's decision is broadcast to every rank
    Checkpointing     (with a checkpoint path, rank 0) every checkpoint_every epochs, at the
                      last epoch and on a stop

so that the History's keys come in that order and everything after Recording sees the
epoch recorded. To add an extension, subclass Extension, override the hooks it needs, and
insert it into `standard_extensions` where its place in that order is.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from ..core.network import CHUNK
from .callbacks import Callback
from .checkpoint import write_checkpoint
from .history import DivergenceError, History

if TYPE_CHECKING:
    from .diagnostics import Recorder
    from .distributed import Distributed
    from .run import Run

# a plain callback: f(epoch, metrics), True stopping training
EpochFunction = Callable[[int, dict], Any]


@dataclass
class Epoch:
    """One finished epoch as the extensions see it, like the logs Keras hands its callbacks."""

    number: int
    metrics: dict[str, Any]  # cost, accuracy; the extensions add theirs
    seconds: float  # of the training pass, before any extension ran
    final_cost: float  # of the last batch's first rows after the last step, over the ranks
    stop: bool = False  # set by an extension: training ends after this epoch


class Extension:
    """The hooks the training loop calls; each does nothing unless a subclass overrides it."""

    def initialize(self, first: int) -> None:
        """Before the first epoch, `first` (above 1 when the run resumed)."""

    def before_epoch(self, epoch: int) -> None:
        """At the start of epoch `epoch`."""

    def after_batch(self, m: int) -> None:
        """After the step on a mini-batch of m examples."""

    def after_epoch(self, epoch: Epoch) -> None:
        """After the epoch's metrics were taken: read, extend, or stop."""

    def complete(self) -> None:
        """After the last epoch (all of them, or a stop), unless an exception ended training."""

    def finalize(self) -> None:
        """After training, however it ended."""


class Extensions(list):
    """The extensions in their order, each hook called on all of them in turn."""

    def __init__(self, extensions: list[Extension]) -> None:
        super().__init__(extensions)
        # the loop calls after_batch every step: only the extensions that use it
        self._batch_hooks = [
            extension.after_batch
            for extension in self
            if type(extension).after_batch is not Extension.after_batch
        ]

    @contextmanager
    def running(self, first: int) -> Iterator[None]:
        """initialize(first) on all, complete() on all if the body ends without an
        exception, then finalize() on all however it ends."""
        try:
            for extension in self:
                extension.initialize(first)
            yield
            for extension in self:
                extension.complete()
        finally:
            for extension in self:
                extension.finalize()

    def before_epoch(self, epoch: int) -> None:
        """before_epoch(epoch) on every extension."""
        for extension in self:
            extension.before_epoch(epoch)

    def after_batch(self, m: int) -> None:
        """after_batch(m) on the extensions that define it."""
        for hook in self._batch_hooks:
            hook(m)

    def after_epoch(self, epoch: Epoch) -> None:
        """after_epoch(epoch) on every extension."""
        for extension in self:
            extension.after_epoch(epoch)


# an epoch's mean cost this many times the costs training started from means it exploded
EXPLODED = 100
# examples, at most, that the starting costs are taken on: the bound needs their scale, and
# a larger sample cost a tenth of a 16,384-row epoch at batch 4096 (docs/performance.md)
SAMPLE = 256


class Divergence(Extension):
    """Keeps the parameters of the epoch's start, and raises DivergenceError (on every rank
    alike: the costs are the job's) when the epoch's cost is not finite, or exploded: over
    EXPLODED times both the cost of the network training started from and that of outputs
    whose weighted inputs are all zero (a network that ignores its input), each taken on an
    even sample of at most SAMPLE training examples. A learning rate far too large saturates
    sigmoid and softmax outputs on the wrong side, at a finite cost.

    However training ends, the parameters are left at the History's last epoch: back at the
    start of an epoch that was not recorded (it diverged, or something raised, or Ctrl-C
    came, before Recording).
    """

    def __init__(self, net: Any, run: Run, history: History) -> None:
        self.net, self.run, self.history = net, run, history
        self.snapshot = net.backend.empty(net.params.shape, net.dtype)
        self.epoch: int | None = None  # the epoch begun
        self.bound = np.inf

    def initialize(self, first: int) -> None:
        net, run = self.net, self.run
        # an even sample of the examples, gathered: a strided view would slow the GEMMs
        n = run.X.shape[0]
        sample = net.backend.asarray(np.arange(0, n, max(1, n // SAMPLE))[:SAMPLE])
        X, targets = run.X[sample], run.targets[sample]
        labels = None if run.labels is None else run.labels[sample]
        started = net.evaluate_checked(X, targets, labels, run.cost)["cost"]
        self.bound = EXPLODED * max(started, blank_cost(net, targets, run.cost))

    def before_epoch(self, epoch: int) -> None:
        self.net.backend.xp.copyto(self.snapshot, self.net.params)
        self.epoch = epoch

    def after_epoch(self, epoch: Epoch) -> None:
        cost, final = epoch.metrics["cost"], epoch.final_cost
        if not (np.isfinite(cost) and np.isfinite(final)):
            became = f"the cost became {cost if not np.isfinite(cost) else final}"
        elif cost > self.bound:
            became = (
                f"its cost {cost:.4g} is over {EXPLODED} times both the starting network's "
                "and that of outputs ignoring the input"
            )
        else:
            return
        raise DivergenceError(
            f"training diverged in epoch {epoch.number}: {became} (try a smaller learning "
            f"rate); parameters restored to the start of the epoch"
        )

    def finalize(self) -> None:
        if self.epoch is not None and self.history.epochs < self.epoch:
            self.net.backend.xp.copyto(self.net.params, self.snapshot)


def blank_cost(net: Any, targets: Any, cost: Any) -> float:
    """The mean cost of outputs whose weighted inputs z^L are all zero, as a network that
    ignores its input gives them: sigmoids at 1/2, softmax uniform, identity at 0."""
    ops, output, m = net.backend, net.activations[-1], targets.shape[0]
    total = 0.0
    for start in range(0, m, CHUNK):
        y = targets[start : start + CHUNK].T
        z = ops.zeros(y.shape, net.dtype)
        a = output.forward(ops, z, ops.empty(y.shape, net.dtype))
        total += float(cost.value(ops, z, a, y, output))
    return total / m


class RankConsistency(Extension):
    """DistributedError on every rank unless the parameters are bitwise equal on all of them."""

    def __init__(self, net: Any, ctx: Distributed) -> None:
        self.net, self.ctx = net, ctx

    def after_epoch(self, epoch: Epoch) -> None:
        self.ctx.check_consistent(self.net.params, epoch.number)


class Validation(Extension):
    """validation_cost and validation_accuracy on checked validation data (over the ranks'
    shards of it under MPI)."""

    def __init__(self, net: Any, data: tuple[Any, Any, Any], cost: Any, ctx: Distributed | None):
        self.net, self.data, self.cost, self.ctx = net, data, cost, ctx

    def after_epoch(self, epoch: Epoch) -> None:
        net, ctx = self.net, self.ctx
        if ctx is None:
            checked = net.evaluate_checked(*self.data, self.cost)
        else:
            checked = ctx.evaluate(net, *self.data, self.cost)
        epoch.metrics.update(
            validation_cost=checked["cost"], validation_accuracy=checked["accuracy"]
        )


class Throughput(Extension):
    """seconds (of the training pass) and samples_per_second, over `examples` per epoch."""

    def __init__(self, examples: int) -> None:
        self.examples = examples

    def after_epoch(self, epoch: Epoch) -> None:
        epoch.metrics.update(
            seconds=epoch.seconds, samples_per_second=self.examples / epoch.seconds
        )


class Diagnostics(Extension):
    """The per-layer statistics the Recorder accumulated over the epoch (see diagnostics.py)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def after_epoch(self, epoch: Epoch) -> None:
        epoch.metrics.update(self.recorder.epoch())


class Recording(Extension):
    """Appends every epoch's metrics to the History, as Keras's History callback does."""

    def __init__(self, history: History) -> None:
        self.history = history

    def after_epoch(self, epoch: Epoch) -> None:
        self.history.append(epoch.metrics)


class Progress(Extension):
    """A tqdm bar on stderr counting examples over all epochs, shown on a terminal when
    `shown`, with the epoch and its cost."""

    def __init__(self, examples: int, epochs: int, shown: bool) -> None:
        self.examples, self.epochs, self.shown = examples, epochs, shown
        self.bar: Any = None

    def initialize(self, first: int) -> None:
        self.bar = tqdm(
            total=self.epochs * self.examples,
            unit="ex",
            unit_scale=True,
            disable=None if self.shown else True,  # None: only on a terminal
            file=sys.stderr,
            leave=False,
            dynamic_ncols=True,
        )
        self.bar.update((first - 1) * self.examples)

    def before_epoch(self, epoch: int) -> None:
        self.bar.set_description(f"epoch {epoch}/{self.epochs}")

    def after_batch(self, m: int) -> None:
        self.bar.update(m)  # every rank's shard of it is done

    def after_epoch(self, epoch: Epoch) -> None:
        self.bar.set_postfix(cost=f"{epoch.metrics['cost']:.4g}")

    def finalize(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Callbacks(Extension):
    """The user's callbacks on rank 0: each function as callback(epoch, metrics), each
    Callback object through its hooks with the network; one returning True stops training,
    on every rank (rank 0 decides under MPI). When training completes, the parameters the
    objects' on_train_end left on rank 0 (a restored best epoch) go to every rank."""

    def __init__(
        self,
        callbacks: tuple[Callback | EpochFunction, ...],
        net: Any,
        history: History,
        ctx: Distributed | None,
    ) -> None:
        self.callbacks, self.net, self.history, self.ctx = callbacks, net, history, ctx
        self.objects = [callback for callback in callbacks if isinstance(callback, Callback)]
        self.root = ctx is None or ctx.is_root

    def initialize(self, first: int) -> None:
        if self.root:
            for callback in self.objects:
                callback.on_train_begin(self.net, self.history)

    def after_epoch(self, epoch: Epoch) -> None:
        if self.root:
            # every callback is called, even after one asked to stop
            asked = [self._call(callback, epoch) is True for callback in self.callbacks]
            epoch.stop = epoch.stop or any(asked)
        if self.ctx is not None:
            epoch.stop = self.ctx.broadcast(epoch.stop)

    def _call(self, callback: Callback | EpochFunction, epoch: Epoch) -> Any:
        if isinstance(callback, Callback):
            return callback.on_epoch_end(self.net, epoch.number, epoch.metrics)
        return callback(epoch.number, epoch.metrics)

    def complete(self) -> None:
        net, ctx = self.net, self.ctx
        if self.root:
            for callback in self.objects:
                callback.on_train_end(net, self.history)
        if ctx is not None and self.objects:
            params = ctx.broadcast(net.backend.to_numpy(net.params) if self.root else None)
            if not self.root:
                net.backend.xp.copyto(net.params, net.backend.asarray(params))


class Checkpointing(Extension):
    """Writes the checkpoint every `every` epochs, at the last of `epochs` and on a stop."""

    def __init__(self, path: Any, every: int, epochs: int, state: tuple[Any, ...]) -> None:
        self.path, self.every, self.epochs = path, every, epochs
        self.net, self.optimizer, self.rng, self.history = state

    def after_epoch(self, epoch: Epoch) -> None:
        number = epoch.number
        if number % self.every == 0 or number == self.epochs or epoch.stop:
            write_checkpoint(self.path, self.net, self.optimizer, number, self.rng, self.history)


def standard_extensions(
    net: Any,
    run: Run,
    ctx: Distributed | None,
    rng: np.random.Generator,
    history: History,
    recorder: Recorder | None,
) -> Extensions:
    """fit's extensions for a checked Run, in the order of this module's docstring."""
    root = ctx is None or ctx.is_root  # the rank that shows, records and saves
    examples = run.X.shape[0]
    extensions: list[Extension] = [Divergence(net, run, history)]
    if ctx is not None:
        extensions.append(RankConsistency(net, ctx))
    if run.validation is not None:
        extensions.append(Validation(net, run.validation, run.cost, ctx))
    extensions.append(Throughput(examples))
    if recorder is not None:
        extensions.append(Diagnostics(recorder))
    extensions.append(Recording(history))
    extensions.append(Progress(examples, run.epochs, run.progress and root))
    extensions.append(Callbacks(run.callbacks, net, history, ctx))
    if run.checkpoint is not None and root:
        state = (net, run.optimizer, rng, history)
        extensions.append(Checkpointing(run.checkpoint, run.checkpoint_every, run.epochs, state))
    return Extensions(extensions)
