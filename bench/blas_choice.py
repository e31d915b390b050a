"""Which BLAS runs the training step's GEMMs fastest on this CPU: NumPy's OpenBLAS, BLIS
(cython-blis), MKL (the `mkl` wheel, through its C interface) and PyTorch's MKL, on the
eight GEMMs of a [784, 256, 256, 10] step in gpunet's layout (examples as columns).

Each candidate is timed round-robin with the others (many rounds, medians), so that a
load change on a shared machine falls on all alike. Each step's rate (GFLOP/s) is set
beside the rate the same library reaches on one large square GEMM (`--square`, 2048 by
default): the practical peak of this CPU, so a step near it has no faster BLAS to gain.
Two clocks:

  cpu   one thread, the calling thread's CPU time (time.thread_time): the kernel's cost,
        unaffected by other processes taking the core away
  wall  the library's thread count (the CPU count), wall time: what a step waits for

    PYTHONPATH=. python bench/blas_choice.py --json bench/results/blas_choice_cpu.json

A candidate whose library is not installed is skipped and listed as such.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import glob
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from bench import record

SIZES = [784, 256, 256, 10]
Call = Callable[[], object]


def step_operands(
    m: int, rng: np.random.Generator
) -> list[tuple[str, np.ndarray, bool, np.ndarray, bool, np.ndarray]]:
    """The step's GEMMs as (name, A, transpose A, B, transpose B, C): C = op(A) op(B), every
    operand C-contiguous (a transposed view goes to BLAS as its flag)."""

    def matrix(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    X = matrix(m, SIZES[0])
    W = [matrix(n, k) for k, n in itertools.pairwise(SIZES)]
    A = [X.T.copy()] + [matrix(n, m) for n in SIZES[1:-1]]  # A^0 as columns for the shapes
    D = [matrix(n, m) for n in SIZES[1:]]
    gemms = []
    for i, w in enumerate(W):
        # forward Z = W A^{i}: A^0 is X^T, a transposed view of the batch's rows
        b, tb = (X, True) if i == 0 else (A[i], False)
        gemms.append((f"fwd{i + 1}", w, False, b, tb, matrix(w.shape[0], m)))
    for i in reversed(range(len(W))):
        b, tb = (X, False) if i == 0 else (A[i], True)  # BP4: delta (A^{i})^T
        gemms.append((f"dW{i + 1}", D[i], False, b, tb, matrix(*W[i].shape)))
        if i:  # BP2: W^T delta
            gemms.append((f"bp2_{i + 1}", W[i], True, D[i], False, matrix(W[i].shape[1], m)))
    return gemms


def numpy_gemm(a, ta, b, tb, c) -> Call:
    a_, b_ = (a.T if ta else a), (b.T if tb else b)
    return lambda: np.matmul(a_, b_, out=c)


def blis_gemm(a, ta, b, tb, c) -> Call:
    import blis.py

    return lambda: blis.py.gemm(a, b, out=c, trans1=ta, trans2=tb, alpha=1.0, beta=0.0)


def torch_gemm(a, ta, b, tb, c) -> Call:
    import torch

    a_, b_, c_ = (torch.from_numpy(x) for x in (a, b, c))
    a_, b_ = (a_.t() if ta else a_), (b_.t() if tb else b_)
    return lambda: torch.mm(a_, b_, out=c_)


class MKL:
    """cblas_sgemm of the `mkl` wheel's libmkl_rt (measured here, not used by gpunet)."""

    ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

    def __init__(self) -> None:
        candidates = glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*"))
        path = candidates[0] if candidates else ctypes.util.find_library("mkl_rt")
        if path is None:
            raise OSError("libmkl_rt not found")
        self.lib = ctypes.CDLL(path)
        self.lib.cblas_sgemm.restype = None
        self.version = self._version()

    def _version(self) -> str:
        buffer = ctypes.create_string_buffer(256)
        self.lib.mkl_get_version_string(buffer, 256)
        return buffer.value.decode().strip()

    def set_threads(self, n: int) -> None:
        self.lib.MKL_Set_Num_Threads(ctypes.c_int(n))

    def gemm(self, a, ta, b, tb, c) -> Call:
        m, n = c.shape
        k = a.shape[0] if ta else a.shape[1]
        args = (
            self.ROW_MAJOR,
            self.TRANS if ta else self.NO_TRANS,
            self.TRANS if tb else self.NO_TRANS,
            m, n, k,
            ctypes.c_float(1.0),
            a.ctypes.data_as(ctypes.c_void_p), a.shape[1],
            b.ctypes.data_as(ctypes.c_void_p), b.shape[1],
            ctypes.c_float(0.0),
            c.ctypes.data_as(ctypes.c_void_p), c.shape[1],
        )  # fmt: skip
        sgemm = self.lib.cblas_sgemm
        return lambda: sgemm(*args)


def candidates(threads: int) -> tuple[dict[str, Callable], dict[str, str]]:
    """The GEMM makers that can run here at `threads` threads, and why the others cannot."""
    makers: dict[str, Callable] = {"numpy": numpy_gemm}
    missing: dict[str, str] = {}
    try:
        import blis.py  # noqa: F401

        if threads == 1:  # cython-blis is built single-threaded
            makers["blis"] = blis_gemm
    except ImportError as error:
        missing["blis"] = str(error)
    try:
        mkl = MKL()
        mkl.set_threads(threads)
        makers["mkl"] = mkl.gemm
    except (OSError, AttributeError) as error:
        missing["mkl"] = str(error)
    try:
        import torch

        torch.set_num_threads(threads)
        makers["torch"] = torch_gemm
    except ImportError as error:
        missing["torch"] = str(error)
    return makers, missing


def flops(a: np.ndarray, ta: bool, c: np.ndarray) -> int:
    """2·M·N·K for C (M, N) = op(A) op(B), op(A) having K columns."""
    return 2 * c.size * (a.shape[0] if ta else a.shape[1])


def timed_round_robin(fns: dict[str, Call], rounds: int, calls: int, clock) -> dict[str, float]:
    """Median microseconds per call of each function, the order alternating every round."""
    samples: dict[str, list[float]] = {lib: [] for lib in fns}
    for fn in fns.values():
        fn()  # warm-up: first touch, library start-up
    for r in range(rounds):
        for lib in list(fns) if r % 2 == 0 else list(reversed(fns)):
            started = clock()
            for _ in range(calls):
                fns[lib]()
            samples[lib].append((clock() - started) / calls * 1e6)
    return {lib: statistics.median(s) for lib, s in samples.items()}


def measure(m: int, threads: int, rounds: int) -> dict:
    """Median microseconds per GEMM for each candidate, and each one's rate over the step."""
    rng = np.random.default_rng(0)
    makers, missing = candidates(threads)
    clock = time.thread_time if threads == 1 else time.perf_counter
    calls = max(1, 4096 // max(m, 1) // 4)
    table: dict[str, dict[str, float]] = {}
    step_flops = 0
    with threadpool_limits(threads, user_api="blas"):
        for name, a, ta, b, tb, c in step_operands(m, rng):
            fns = {lib: make(a, ta, b, tb, c) for lib, make in makers.items()}
            table[name] = timed_round_robin(fns, rounds, calls, clock)
            step_flops += flops(a, ta, c)
    total = {lib: sum(row[lib] for row in table.values()) for lib in makers}
    rate = {lib: step_flops / us / 1e3 for lib, us in total.items()}
    return {"batch_size": m, "threads": threads, "us_per_gemm": table, "us_per_step": total,
            "flops_per_step": step_flops, "gflops_per_s": rate, "missing": missing}  # fmt: skip


def square_rate(n: int, threads: int, rounds: int) -> dict[str, float]:
    """GFLOP/s of each candidate on one n×n×n GEMM: the practical peak of this CPU."""
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(3))
    makers, _ = candidates(threads)
    clock = time.thread_time if threads == 1 else time.perf_counter
    with threadpool_limits(threads, user_api="blas"):
        fns = {lib: make(a, False, b, False, c) for lib, make in makers.items()}
        us = timed_round_robin(fns, rounds, 1, clock)
    return {lib: flops(a, False, c) / t / 1e3 for lib, t in us.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="1,64,256,1024,4096")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}")
    parser.add_argument("--square", type=int, default=2048, help="the peak's GEMM; 0: none")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results, peaks = [], {}
    for threads in (int(t) for t in args.threads.split(",")):
        if args.square:
            peaks[threads] = peak = square_rate(args.square, threads, max(3, args.rounds // 3))
            print(
                f"square {args.square} threads={threads} GFLOP/s: "
                + "  ".join(f"{lib} {rate:.1f}" for lib, rate in peak.items()),
                flush=True,
            )
        for m in (int(b) for b in args.batch_sizes.split(",")):
            result = measure(m, threads, args.rounds)
            results.append(result)
            clock = "cpu" if threads == 1 else "wall"
            base = result["us_per_step"]["numpy"]
            print(
                f"B={m:5d} threads={threads} ({clock}) us/step: "
                + "  ".join(
                    f"{lib} {us:9.1f} ({us / base:.2f})"
                    for lib, us in result["us_per_step"].items()
                ),
                flush=True,
            )
            if threads in peaks:
                print(
                    "        GFLOP/s over the step (of the square peak): "
                    + "  ".join(
                        f"{lib} {rate:.1f} ({rate / peaks[threads][lib]:.0%})"
                        for lib, rate in result["gflops_per_s"].items()
                    ),
                    flush=True,
                )
    mkl_version = None
    with contextlib.suppress(OSError, AttributeError):
        mkl_version = MKL().version
    record.write(args.json, {
        **record.header("blas_choice", sys.argv[1:] if argv is None else argv),
        "machine": record.machine(),
        "mkl_wheel": mkl_version,
        "square_size": args.square,
        "square_gflops_per_s": {str(t): peak for t, peak in peaks.items()},
        "results": results,
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
