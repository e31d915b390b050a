"""Data-parallel training over MPI ranks: a shard of every mini-batch per rank, one
all-reduce of the flat gradient buffer per step.

K ranks see the same shuffled order; each backpropagates its contiguous shard of m_r
examples of the global mini-batch of m. Its mean gradient g_r enters the all-reduce
scaled by m_r/m, so that every rank ends with the global batch mean

    ∇C = Σ_r (m_r/m) g_r        (= (1/K) Σ_r g_r for equal shards)

and applies the same update. CPU ranks all-reduce with MPI in place on the NumPy buffer;
GPU ranks with NCCL on the device buffer (no copy to the host), one device per rank.
docs/distributed.md has the cost model and the measured scaling.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..core.checks import array_module

# the variables launchers set for each rank with the job's size: MPICH's hydra and Slurm's
# PMI-1/PMI-2 (srun --mpi=pmi2), Open MPI
LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
# Slurm's PMIx plugin (srun --mpi=pmix) sets PMIX_RANK in each task but no size; srun gives
# the step's size. SLURM_NTASKS is not enough: the batch script, outside srun, has it too.
PMIX_SIZE_VARIABLES = ("PMIX_RANK", "SLURM_STEP_NUM_TASKS")
# seconds a failing rank waits between its message and MPI_Abort (see abort_on_error)
ABORT_GRACE = 0.5


class DistributedError(RuntimeError):
    """The ranks of a job disagree: their parameters drifted apart."""


def launched_ranks() -> int:
    """The number of ranks mpiexec (or srun) started this process among; 1 outside a launcher."""
    rank, size = PMIX_SIZE_VARIABLES
    names = [*LAUNCHER_SIZE_VARIABLES, size] if rank in os.environ else LAUNCHER_SIZE_VARIABLES
    for name in names:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def nccl_unavailable() -> str | None:
    """None where this rank can all-reduce on its GPU (or has no GPU: MPI does the CPU's),
    else one line saying why not and what to install.

    CuPy's `from cupy.cuda import nccl` succeeds without libnccl and leaves a module whose
    first all-reduce fails with an AttributeError; this asks `nccl.available` instead.
    """
    from ..core.backends import probe

    if probe.cupy_unavailable() is not None:
        return None
    return probe.check_nccl(probe.check_cupy()[1]).problem


def check_one_gpu_per_rank(gpus: Sequence[Any]) -> None:
    """ValueError when two ranks would share a GPU: gpus[r] identifies rank r's physical GPU
    (its machine and PCI bus id). NCCL refuses two ranks on one GPU."""
    first: dict[Any, int] = {}
    for rank, gpu in enumerate(gpus):
        if gpu in first:
            raise ValueError(
                f"ranks {first[gpu]} and {rank} would share the GPU {gpu}: NCCL needs a GPU of "
                f"its own for each rank; start at most as many ranks on a machine as it has "
                f"GPUs, or train on CPU ranks (backend='numpy')"
            )
        first[gpu] = rank


class Distributed:
    """This process's place in a data-parallel job, and the collectives `fit` uses.

    >>> ctx = Distributed.from_mpi()  # doctest: +SKIP
    >>> net.fit(X, y, epochs=10, batch_size=64, lr=0.1, distributed=ctx)  # doctest: +SKIP
    """

    def __init__(self, comm: Any) -> None:
        from mpi4py import MPI

        self._mpi = MPI
        self.comm = comm
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()
        # the ranks on this machine: the rank among them picks the GPU; the communicator
        # is needed for these two numbers only
        local = comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank: int = local.Get_rank()
        self.local_size: int = local.Get_size()
        local.Free()
        self._nccl: Any = None
        # checked here, raised by check_device (before the first step, on every rank
        # alike) once a CuPy network is to be trained: CPU ranks need no NCCL
        self.nccl_problem: str | None = nccl_unavailable()

    @classmethod
    def from_mpi(cls, comm: Any = None) -> Distributed:
        """Join the job that mpiexec launched (MPI_COMM_WORLD unless `comm` is given).

        Call it before creating the Network: where CuPy has GPUs, this rank makes GPU
        local_rank mod the GPU count current (its own GPU when the machine has one per
        rank, or when each rank sees just its own, as CUDA_VISIBLE_DEVICES may arrange),
        so that a CuPy network is allocated there. fit checks it (check_device).
        """
        context = cls._join(comm)
        from ..core.backends.cupy_backend import cupy_unavailable

        if cupy_unavailable() is None:
            import cupy

            cupy.cuda.Device(context.local_rank % cupy.cuda.runtime.getDeviceCount()).use()
        return context

    @classmethod
    def _join(cls, comm: Any) -> Distributed:
        """The context of `comm` (MPI_COMM_WORLD for None), leaving the current device alone."""
        try:
            from mpi4py import MPI
        except ImportError:
            raise ImportError(
                "distributed training needs mpi4py and an MPI library: pip install 'gpunet[mpi]'"
            ) from None
        if comm is not None and not isinstance(comm, MPI.Comm):
            raise TypeError(f"comm must be an mpi4py communicator, got {type(comm).__name__}")
        return cls(MPI.COMM_WORLD if comm is None else comm)

    def close(self) -> None:
        """Destroy the NCCL communicator, if one was made; fit closes the contexts it creates.

        The context stays usable: a later GPU all-reduce makes a new communicator.
        """
        if self._nccl is not None:
            self._nccl.destroy()
            self._nccl = None

    def __enter__(self) -> Distributed:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()

    @property
    def is_root(self) -> bool:
        """Rank 0: the one that prints, records and saves."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"Distributed(rank={self.rank}, size={self.size}, local_rank={self.local_rank})"

    def check_batch_size(self, batch_size: int) -> None:
        """ValueError unless the global mini-batch splits into equal shards, one per rank."""
        if batch_size % self.size:
            raise ValueError(
                f"batch_size ({batch_size}) must be divisible by the number of ranks "
                f"({self.size}): each rank takes batch_size/{self.size} examples of every batch"
            )

    def check_device(self, params: Any) -> None:
        """ValueError on every rank unless each rank's CuPy params are on the GPU from_mpi
        chose for it, the current one, and no two ranks share a GPU; ImportError on every
        rank when one of them lacks NCCL (nccl_problem). A collective.

        A network created before the context is on whichever GPU was current then,
        typically GPU 0 on every rank; NCCL runs on the current device, one GPU per rank.
        """
        if array_module(params) is np:
            return
        import cupy

        gpu = self.local_rank % cupy.cuda.runtime.getDeviceCount()
        current = cupy.cuda.Device().id
        misplaced = None
        if params.device.id != gpu or current != gpu:
            misplaced = (
                f"rank {self.rank}'s network is on GPU {params.device.id}, GPU {current} is "
                f"current, its GPU is {gpu}"
            )
        # every rank learns of every problem, so that all raise alike instead of some waiting
        views = self.comm.allgather(
            (
                misplaced,
                self._mpi.Get_processor_name(),
                cupy.cuda.Device(gpu).pci_bus_id,
                self.nccl_problem,
            )
        )
        missing = sorted({nccl for *_, nccl in views if nccl is not None})
        if missing:
            raise ImportError(f"GPU ranks all-reduce with NCCL: {'; '.join(missing)}")
        problems = [problem for problem, *_ in views if problem is not None]
        if problems:
            raise ValueError(
                f"{'; '.join(problems)}: create the Distributed context "
                f"(Distributed.from_mpi()) before the Network, so that the network is "
                f"allocated on the rank's own GPU"
            )
        check_one_gpu_per_rank([(machine, bus) for _, machine, bus, _ in views])

    def shard(self, m: int) -> slice:
        """This rank's contiguous part of m examples, [⌊r·m/K⌋, ⌊(r+1)·m/K⌋)."""
        return slice(self.rank * m // self.size, (self.rank + 1) * m // self.size)

    def allreduce_gradients(self, grads: Any, weight: float) -> None:
        """grads ← Σ_r weight_r·grads_r over the ranks, in place: one all-reduce per step.

        weight is m_r/m, this rank's share of the global mini-batch.
        """
        grads *= weight
        if array_module(grads) is np:
            self.comm.Allreduce(self._mpi.IN_PLACE, grads, op=self._mpi.SUM)
            return
        if self.nccl_problem is not None:
            raise ImportError(f"GPU ranks all-reduce with NCCL: {self.nccl_problem}")
        import cupy
        from cupy.cuda import nccl

        datatype = {4: nccl.NCCL_FLOAT32, 8: nccl.NCCL_FLOAT64}[grads.itemsize]
        self._nccl_communicator().allReduce(
            grads.data.ptr,
            grads.data.ptr,
            grads.size,
            datatype,
            nccl.NCCL_SUM,
            cupy.cuda.get_current_stream().ptr,
        )

    def _nccl_communicator(self) -> Any:
        if self._nccl is None:
            from cupy.cuda import nccl

            # NCCL has no launcher of its own: rank 0's id reaches the others over MPI
            unique_id = self.comm.bcast(nccl.get_unique_id() if self.is_root else None)
            self._nccl = nccl.NcclCommunicator(self.size, unique_id, self.rank)
        return self._nccl

    def sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the ranks (host scalars: epoch totals, evaluation sums)."""
        buffer = np.array(values, dtype=np.float64)
        self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM)
        return buffer.tolist()

    def any(self, flags: Any) -> np.ndarray:
        """Elementwise logical or over the ranks of a host array of flags."""
        buffer = np.array(flags, dtype=np.uint8)  # a copy: the reduction is in place
        self.comm.Allreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.MAX)
        return buffer.astype(bool)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's value, on every rank."""
        return self.comm.bcast(value, root=0)

    def from_root(self, function: Callable[..., Any], *args: Any) -> Any:
        """function(*args) run on rank 0 alone; its result, or its exception, on every rank."""
        outcome = None
        if self.is_root:
            try:
                outcome = (True, function(*args))
            except Exception as error:
                outcome = (False, error)
        succeeded, value = self.comm.bcast(outcome, root=0)
        if not succeeded:
            raise value
        return value

    def check_consistent(self, params: Any, epoch: int) -> None:
        """DistributedError on every rank unless params are bitwise equal on all of them."""
        words = params.view(np.uint64 if params.itemsize == 8 else np.uint32)
        # a sum of the bit patterns modulo 2^64: exact and independent of summation order,
        # so any differing bit shows, at the cost of one pass and one tiny allgather
        checksums = self.comm.allgather(int(words.sum(dtype=np.uint64)))
        differ = [rank for rank, checksum in enumerate(checksums) if checksum != checksums[0]]
        if differ:
            raise DistributedError(
                f"parameters differ across ranks after epoch {epoch}: ranks {differ} "
                f"disagree with rank 0 (was the network or optimizer changed on one rank?)"
            )

    def evaluate(self, net: Any, X: Any, targets: Any, labels: Any, cost: Any) -> dict:
        """Network.evaluate_checked over this rank's shard of the rows, as means over all."""
        part, m = self.shard(X.shape[0]), X.shape[0]
        m_r = part.stop - part.start
        total = correct = 0.0
        if m_r:
            mine = net.evaluate_checked(
                X[part], targets[part], None if labels is None else labels[part], cost
            )
            total = mine["cost"] * m_r
            correct = 0.0 if labels is None else round(mine["accuracy"] * m_r)
        total, correct = self.sum([total, correct])
        return {"cost": total / m, "accuracy": None if labels is None else correct / m}

    @contextmanager
    def abort_on_error(self, *collective: type[BaseException]) -> Iterator[None]:
        """Abort the whole job when this rank raises, naming it; the others would otherwise
        wait in their next collective forever.

        Exceptions of the `collective` types are raised on every rank alike (they follow
        from reduced values) and pass through unchanged.
        """
        try:
            yield
        except collective:
            raise
        except BaseException as error:
            if self.size == 1:
                raise
            traceback.print_exc()
            print(
                f"gpunet: rank {self.rank} of {self.size} failed: "
                f"{type(error).__name__}: {error}; aborting the job",
                file=sys.stderr,
                flush=True,
            )
            # Abort tears the job down at once, and mpiexec may drop output its proxies have
            # not forwarded yet (seen under load: an empty stderr); give them a moment
            time.sleep(ABORT_GRACE)
            self.comm.Abort(1)


def distributed_context(distributed: Any) -> Distributed | None:
    """fit's `distributed` argument as a context: True joins MPI, False or None is none.

    The context made for True is fit's own, to close when training ends.
    """
    if isinstance(distributed, Distributed) or distributed is None:
        return distributed
    if isinstance(distributed, bool):
        # no device switch: the network already lives where it was created (check_device)
        return Distributed._join(None) if distributed else None
    raise TypeError(
        f"distributed must be True, False, None or a Distributed, got {type(distributed).__name__}"
    )
