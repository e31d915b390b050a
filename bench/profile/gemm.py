"""The step's 8 GEMMs: gpunet's (n, m) layout vs examples-as-rows (both OpenBLAS) vs torch (MKL).

For [784, 256, 256, 10] and each batch size: the forward GEMMs, BP4's weight gradients and
BP2's back-propagated deltas, as gpunet's column layout calls them, as the row layout
(torch's orientation) calls them through NumPy, and as torch calls them. Run from the
checkout (the output kept in bench/results/profile):

    PYTHONPATH=. python bench/profile/gemm.py > bench/results/profile/gemm.txt
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import numpy as np
import torch

from bench.profile.common import parser, seconds_per_call
from gpunet.tools.bench import blas_threads

Call = Callable[[], object]


def gemms(batch_size: int, rng: np.random.Generator) -> dict[str, tuple[Call, Call, Call]]:
    """For each GEMM of the step: (gpunet's column layout, the row layout, torch)."""

    def matrix(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    m = batch_size
    X, W1, W2, W3 = matrix(m, 784), matrix(256, 784), matrix(256, 256), matrix(10, 256)
    # gpunet's layout: activations and deltas (n, m), one column per example
    A1, A2, D2, D1 = (matrix(256, m) for _ in range(4))
    D3 = matrix(10, m)
    Z1, Z2, Z3 = matrix(256, m), matrix(256, m), matrix(10, m)
    G1, G2, G3 = matrix(256, 784), matrix(256, 256), matrix(10, 256)
    # the row layout (examples as rows, like torch): (m, n)
    a1, a2, d3, d2, d1 = (np.ascontiguousarray(v.T) for v in (A1, A2, D3, D2, D1))
    z1, z2, z3 = matrix(m, 256), matrix(m, 256), matrix(m, 10)
    # torch on the very same memory
    tX, tW1, tW2, tW3, ta1, ta2, td3, td2, td1, tz1, tz2, tz3, tG1, tG2, tG3 = map(
        torch.from_numpy, (X, W1, W2, W3, a1, a2, d3, d2, d1, z1, z2, z3, G1, G2, G3)
    )
    tb1, tb2, tb3 = torch.zeros(256), torch.zeros(256), torch.zeros(10)
    return {
        "fwd1": (
            lambda: np.matmul(W1, X.T, out=Z1),
            lambda: np.matmul(X, W1.T, out=z1),
            lambda: torch.addmm(tb1, tX, tW1.t(), out=tz1),
        ),
        "fwd2": (
            lambda: np.matmul(W2, A1, out=Z2),
            lambda: np.matmul(a1, W2.T, out=z2),
            lambda: torch.addmm(tb2, ta1, tW2.t(), out=tz2),
        ),
        "fwd3": (
            lambda: np.matmul(W3, A2, out=Z3),
            lambda: np.matmul(a2, W3.T, out=z3),
            lambda: torch.addmm(tb3, ta2, tW3.t(), out=tz3),
        ),
        "dW3": (
            lambda: np.matmul(D3, A2.T, out=G3),
            lambda: np.matmul(d3.T, a2, out=G3),
            lambda: torch.mm(td3.t(), ta2, out=tG3),
        ),
        "bp2_3": (
            lambda: np.matmul(W3.T, D3, out=D2),
            lambda: np.matmul(d3, W3, out=d2),
            lambda: torch.mm(td3, tW3, out=td2),
        ),
        "dW2": (
            lambda: np.matmul(D2, A1.T, out=G2),
            lambda: np.matmul(d2.T, a1, out=G2),
            lambda: torch.mm(td2.t(), ta1, out=tG2),
        ),
        "bp2_2": (
            lambda: np.matmul(W2.T, D2, out=D1),
            lambda: np.matmul(d2, W2, out=d1),
            lambda: torch.mm(td2, tW2, out=td1),
        ),
        "dW1": (
            lambda: np.matmul(D1, X, out=G1),
            lambda: np.matmul(d1.T, X, out=G1),
            lambda: torch.mm(td1.t(), tX, out=tG1),
        ),
    }


def main() -> None:
    args = parser(__doc__).parse_args()
    torch.set_num_threads(blas_threads())  # as in the benchmark: NumPy's BLAS threads
    rng = np.random.default_rng(0)
    for batch_size in args.batch_sizes:
        calls = 100 if batch_size <= 64 else 15
        print(f"\n=== B={batch_size} (median us/call)      gpunet-col  numpy-row   torch(MKL)")
        total = np.zeros(3)
        for name, layouts in gemms(batch_size, rng).items():
            micros = np.array(
                [1e6 * statistics.median(seconds_per_call(f, calls, 9)) for f in layouts]
            )
            total += micros
            print(f"  {name:8s}                   " + "  ".join(f"{u:9.1f}" for u in micros))
        steps = -(-args.examples // batch_size)
        print("  step total                 " + "  ".join(f"{u:9.1f}" for u in total))
        print(
            f"  x {steps} steps (ms/epoch)   " + "  ".join(f"{u * steps / 1e3:9.1f}" for u in total)
        )


if __name__ == "__main__":
    main()
