"""NCCL for GPU ranks: checked when the Distributed context is made, raised on every rank
before the first step of a CuPy network, with the command that installs it."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from gpunet.core.backends import probe
from gpunet.train import distributed
from gpunet.train.distributed import Distributed

pytest.importorskip("mpi4py", reason="distributed training needs mpi4py (pip install '.[mpi]')")

MISSING = "NCCL is not available to CuPy (libnccl.so.2 not found): pip install 'nvidia-nccl-cu13'"


class OneRank:
    """A communicator of one rank (the parts Distributed and check_device use)."""

    def Get_rank(self):  # noqa: N802 (mpi4py's names)
        return 0

    def Get_size(self):  # noqa: N802
        return 1

    def Split_type(self, kind):  # noqa: N802
        return OneRank()

    def Free(self):  # noqa: N802
        pass

    def allgather(self, value):
        return [value]


class DeviceArray(np.ndarray):
    """A host array posing as a CuPy array on GPU 0."""

    device = types.SimpleNamespace(id=0)


@pytest.fixture
def gpu_rank(monkeypatch):
    """This process as a GPU rank whose CuPy has no NCCL (a stand-in cupy module)."""
    cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
        Device=lambda i=0: types.SimpleNamespace(id=0, pci_bus_id="0000:01:00.0"),
    )
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(ndarray=DeviceArray, cuda=cuda))
    monkeypatch.setattr(probe, "cupy_unavailable", lambda: None)
    monkeypatch.setattr(probe, "check_cupy", lambda: (probe.Check("cupy", None), object()))
    monkeypatch.setattr(probe, "check_nccl", lambda cupy: probe.Check("nccl", MISSING))


def test_cpu_ranks_need_no_nccl(monkeypatch):
    monkeypatch.setattr(probe, "cupy_unavailable", lambda: "no usable CUDA device")
    assert distributed.nccl_unavailable() is None
    assert Distributed(OneRank()).nccl_problem is None


def test_a_gpu_rank_without_nccl_is_told_what_to_install(gpu_rank):
    ctx = Distributed(OneRank())
    assert ctx.nccl_problem == MISSING  # checked at creation
    params = np.zeros(4).view(DeviceArray)
    with pytest.raises(ImportError, match="GPU ranks all-reduce with NCCL: NCCL is not"):
        ctx.check_device(params)  # fit's first call, before any step
    with pytest.raises(ImportError, match="pip install 'nvidia-nccl-cu13'"):
        ctx.allreduce_gradients(params, 1.0)  # not an AttributeError from inside CuPy


def test_nccl_check_names_the_wheel_for_the_cuda_major(monkeypatch):
    with_nccl = types.SimpleNamespace(available=True, get_version=lambda: 22707)
    without = types.SimpleNamespace(available=False)
    monkeypatch.setattr(probe, "built_for", lambda cupy: 12)
    for module, problem in ((with_nccl, None), (without, "nvidia-nccl-cu12>=2.27.7,<3")):
        monkeypatch.setitem(sys.modules, "cupy.cuda.nccl", module)
        monkeypatch.setitem(sys.modules, "cupy.cuda", types.SimpleNamespace(nccl=module))
        check = probe.check_nccl(object())
        if problem is None:
            assert check.problem is None and check.detail == "22707"
        else:
            assert problem in check.problem and "'.[nccl-cuda12x]'" in check.problem
