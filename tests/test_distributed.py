"""Data-parallel training: real MPI jobs of 2 and 4 ranks on this machine (tests/mpi_worker.py)
against single-process runs made here, failures, checkpoints; the `gpunet train` command
under mpiexec."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mpi_worker
import numpy as np
import pytest

import gpunet
from gpunet.tools import cli
from gpunet.train.diagnostics import STATISTICS
from gpunet.train.distributed import Distributed, check_one_gpu_per_rank, launched_ranks

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(mpi_worker.__file__)
# a job that hangs instead of failing must not hang the suite
TIMEOUT = 60


def _mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"  # the mpich wheel's, in this environment
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _missing() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install '.[mpi]')"
    if _mpiexec() is None:
        return "no mpiexec on PATH (pip install mpich)"
    return None


needs_mpi = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def mpirun(ranks: int, *args: str) -> subprocess.CompletedProcess:
    """`mpiexec -n ranks python ARGS...` from the repository root, with the suite's gpunet."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [_mpiexec(), "-n", str(ranks), sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=TIMEOUT,
    )


def worker(ranks: int, scenario: str, out: Path, *options: str) -> subprocess.CompletedProcess:
    return mpirun(ranks, str(WORKER), scenario, str(out), *options)


def single_process_fit(epochs: int = 3, batch_size: int = 8, optimizer: str = "adam"):
    """The worker's training run in this process: one rank, the whole of every batch."""
    net = mpi_worker.network()
    X, y, X_val, y_val = mpi_worker.problem()
    settings = argparse.Namespace(epochs=epochs, batch_size=batch_size, optimizer=optimizer)
    history = net.fit(X, y, validation=(X_val, y_val), **mpi_worker.train_settings(settings))
    return net, history


# --- equivalence with one process ----------------------------------------------------------


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 4])
@pytest.mark.parametrize("batch", [8, 10])  # 10 rows on 4 ranks: shards of 2, 3, 2, 3
def test_averaged_gradient_equals_the_global_batch_gradient(ranks, batch, tmp_path):
    result = worker(ranks, "gradient", tmp_path, "--batch-size", str(batch))
    assert result.returncode == 0, result.stderr
    X, y, *_ = mpi_worker.problem()
    grads_w, grads_b = mpi_worker.network().gradients(X[:batch], y[:batch])
    expected = np.concatenate([g.ravel() for g in [*grads_w, *grads_b]])
    averaged = np.load(tmp_path / "result.npz")["grads"]
    np.testing.assert_allclose(averaged, expected, rtol=1e-12, atol=1e-15)
    assert np.abs(expected).max() > 1e-3  # a gradient that could have been wrong


@needs_mpi
@pytest.mark.parametrize(("ranks", "optimizer"), [(2, "sgd"), (4, "adam")])
def test_training_matches_one_process_with_the_same_batches(ranks, optimizer, tmp_path):
    # 99 examples in batches of 8: the last batch of 3 leaves one of 4 ranks an empty shard
    result = worker(ranks, "train", tmp_path, "--optimizer", optimizer)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # no progress or output from any rank
    got = np.load(tmp_path / "result.npz")
    net, history = single_process_fit(optimizer=optimizer)
    start = mpi_worker.network().params
    assert np.abs(net.params - start).max() > 1e-2  # training moved the parameters
    np.testing.assert_allclose(got["params"], net.params, rtol=1e-10, atol=1e-12)
    for key in ("cost", "accuracy", "validation_cost", "validation_accuracy"):
        np.testing.assert_allclose(got[key], history[key], rtol=1e-10, err_msg=key)


@needs_mpi
@pytest.mark.parametrize("ranks", [2, 4])
def test_diagnostics_are_the_single_process_ones_on_every_rank(ranks, tmp_path):
    # 99 examples in batches of 4: the last batch of 3 leaves rank 0 of 4 an empty shard
    result = worker(ranks, "diagnostics", tmp_path, "--batch-size", "4", "--optimizer", "sgd")
    assert result.returncode == 0, result.stderr
    net = mpi_worker.network(mpi_worker.DIAGNOSED, "normal")
    X, y, *_ = mpi_worker.problem()
    settings = argparse.Namespace(epochs=3, batch_size=4, optimizer="sgd")
    expected = net.fit(X, y, diagnostics=True, **mpi_worker.train_settings(settings))
    histories = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(ranks)]
    for key in STATISTICS:
        assert all(history[key] == histories[0][key] for history in histories), key
        assert len(histories[0][key]) == 3
        for got, want in zip(histories[0][key], expected[key]):
            assert [v is None for v in got] == [v is None for v in want], key
            got, want = (np.array(v, dtype=float) for v in (got, want))
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-15, err_msg=key)
    relu, tanh = (np.array(histories[0]["saturation"])[:, i].astype(float) for i in (0, 1))
    assert relu.min() > 0 and relu.max() < 1 and tanh.min() > 0  # both kinds were seen


# --- failures ------------------------------------------------------------------------------


@needs_mpi
def test_a_raising_rank_stops_the_job_naming_it_and_the_checkpoint_resumes_exactly(tmp_path):
    checkpoint = str(tmp_path / "run.ckpt.npz")
    options = ("--epochs", "4", "--checkpoint", checkpoint, "--checkpoint-every", "2")
    started = time.perf_counter()
    failed = worker(
        2, "train", tmp_path, *options, "--fail", "raise", "--fail-rank", "1", "--fail-epoch", "3"
    )
    assert time.perf_counter() - started < 30
    assert failed.returncode != 0
    assert "rank 1 of 2 failed: RuntimeError: injected failure" in failed.stderr
    assert not (tmp_path / "result.npz").exists()
    assert (
        gpunet.load(checkpoint, backend="numpy").n_parameters == mpi_worker.network().n_parameters
    )

    resumed = worker(2, "train", tmp_path, *options, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    got = np.load(tmp_path / "result.npz")
    net, history = single_process_fit(epochs=4)
    np.testing.assert_allclose(got["params"], net.params, rtol=1e-10, atol=1e-12)
    assert len(got["cost"]) == 4  # the History holds the epochs before the failure too
    np.testing.assert_allclose(got["cost"], history["cost"], rtol=1e-10)


@needs_mpi
def test_a_rank_that_dies_stops_the_job(tmp_path):
    started = time.perf_counter()
    result = worker(2, "train", tmp_path, "--fail", "exit", "--fail-rank", "1")
    assert time.perf_counter() - started < 30
    assert result.returncode != 0


@needs_mpi
def test_parameters_drifting_apart_is_an_error_on_every_rank(tmp_path):
    result = worker(2, "train", tmp_path, "--fail", "drift", "--fail-rank", "1")
    assert result.returncode != 0
    message = "parameters differ across ranks after epoch 1: ranks [1] disagree with rank 0"
    assert result.stderr.count(message) == 2


@needs_mpi
def test_batch_size_not_divisible_by_the_ranks_is_a_value_error_before_any_change(tmp_path):
    result = worker(4, "bad_batch", tmp_path, "--batch-size", "6")
    assert result.returncode == 0, result.stderr
    for rank in range(4):
        line = (tmp_path / f"rank{rank}.txt").read_text()
        assert line.startswith("ValueError: batch_size (6) must be divisible by the number of")
        assert line.endswith("(unchanged: True)")


# --- the command ---------------------------------------------------------------------------


@needs_mpi
def test_gpunet_train_under_mpiexec_equals_one_process(tmp_path, capsys):
    args = ["train", "--epochs", "2", "--dtype", "float64", "--json", "--no-progress"]
    result = mpirun(2, "-m", "gpunet", *args, "--save", str(tmp_path / "two.npz"))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1  # rank 0's JSON line alone
    report = json.loads(result.stdout)
    assert report["ranks"] == 2 and report["epochs"] == 2
    epoch_lines = [line for line in result.stderr.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 2 and result.stderr.count("saved to") == 1

    assert cli.main([*args, "--save", str(tmp_path / "one.npz")]) == 0
    alone = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert alone["ranks"] == 1
    assert report["test_cost"] == pytest.approx(alone["test_cost"], rel=1e-10)
    two, one = (
        gpunet.load(tmp_path / "two.npz", backend="numpy"),
        gpunet.load(tmp_path / "one.npz", backend="numpy"),
    )
    np.testing.assert_allclose(two.params, one.params, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("variables", "ranks"),
    [
        ({}, 1),
        ({"PMI_SIZE": "4"}, 4),
        ({"OMPI_COMM_WORLD_SIZE": "3"}, 3),
        ({"PMI_SIZE": ""}, 1),
        ({"PMIX_RANK": "1", "SLURM_STEP_NUM_TASKS": "8"}, 8),  # srun --mpi=pmix
        ({"SLURM_STEP_NUM_TASKS": "8"}, 1),  # srun without PMI: singletons
        ({"PMIX_RANK": "0"}, 1),
    ],
)
def test_launched_ranks_reads_the_launchers_variables(variables, ranks, monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert launched_ranks() == ranks


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"diagnostics": "yes"}, "diagnostics must be True or False"),
        ({"checkpoint": "run.npz", "resume": 1}, "resume must be True or False"),
        ({"checkpoint": 3}, "checkpoint must be a str or path"),
        ({"epochs": 1.0}, "epochs must be an integer"),
    ],
)
def test_bad_arguments_are_refused_before_mpi_starts(small_data, monkeypatch, options, message):
    def join(cls, comm):
        raise AssertionError("MPI joined before the arguments were checked")

    monkeypatch.setattr(Distributed, "_join", classmethod(join))
    X, y, _ = small_data
    net = gpunet.Network([3, 2], "softmax", seed=0, backend="numpy")
    settings = {"epochs": 1, "batch_size": 2, "lr": 0.1, "distributed": True, **options}
    with pytest.raises(TypeError, match=message):
        net.fit(X, y, **settings)


def test_distributed_must_be_a_flag_or_a_context(small_data):
    X, y, _ = small_data
    net = gpunet.Network([3, 2], "softmax", seed=0, backend="numpy")
    with pytest.raises(TypeError, match="distributed must be True, False, None or a Distributed"):
        net.fit(X, y, epochs=1, batch_size=2, lr=0.1, distributed="yes")


def test_ranks_on_distinct_gpus_pass():
    check_one_gpu_per_rank([("a", "0000:01:00.0"), ("a", "0000:02:00.0"), ("b", "0000:01:00.0")])


def test_two_ranks_on_one_gpu_is_a_clear_error():
    gpus = [("a", "0000:01:00.0"), ("a", "0000:02:00.0"), ("a", "0000:01:00.0")]
    with pytest.raises(ValueError, match=r"ranks 0 and 2 would share the GPU .*NCCL needs"):
        check_one_gpu_per_rank(gpus)


class OneRank:
    """A communicator of one rank, standing in for MPI_COMM_WORLD in this process."""

    def __init__(self):
        self.freed = []

    def Get_rank(self):  # noqa: N802 (mpi4py's names)
        return 0

    def Get_size(self):  # noqa: N802 (mpi4py's names)
        return 1

    def Split_type(self, kind):  # noqa: N802 (mpi4py's names)
        shared = OneRank()
        self.freed = shared.freed  # the split communicator reports its Free here
        return shared

    def Free(self):  # noqa: N802 (mpi4py's names)
        self.freed.append(True)

    def Allreduce(self, send, receive, op):  # noqa: N802 (mpi4py's names)
        pass  # one rank: the sum is the value

    def bcast(self, value, root=0):
        return value

    def allgather(self, value):
        return [value]


@needs_mpi
def test_fit_closes_the_context_it_made_and_not_one_given(small_data, monkeypatch):
    X, y, _ = small_data
    made, closed = [], []

    def join(cls, comm):
        made.append(cls(OneRank()))
        return made[-1]

    monkeypatch.setattr(Distributed, "_join", classmethod(join))
    monkeypatch.setattr(Distributed, "close", lambda self: closed.append(self))
    net = gpunet.Network([3, 2], "softmax", seed=0, backend="numpy")
    net.fit(X, y, epochs=1, batch_size=2, lr=0.1, progress=False, distributed=True)
    assert len(made) == 1 and closed == made
    assert made[0].comm.freed == [True]  # the communicator of the machine's ranks, at once
    given = Distributed(OneRank())
    net.fit(X, y, epochs=1, batch_size=2, lr=0.1, progress=False, distributed=given)
    assert closed == made


@needs_mpi
def test_close_destroys_the_nccl_communicator_once():
    class Communicator:
        destroyed = 0

        def destroy(self):
            self.destroyed += 1

    nccl = Communicator()
    with Distributed(OneRank()) as ctx:
        ctx._nccl = nccl
    assert nccl.destroyed == 1 and ctx._nccl is None
    ctx.close()
    assert nccl.destroyed == 1
