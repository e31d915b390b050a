"""Micro-benchmarks of alternatives for gpunet's per-step NumPy calls (min of repeats, us/call).

Per batch size: the gather of a batch's rows (take modes), the forward and BP4 GEMMs in
gpunet's layout and in torch's, ReLU' four ways, the bias add and BP3 two ways; then the
SGD step over a flat buffer of the [784, 256, 256, 10] network's size. [gpunet] marks what
gpunet does now. Run from the checkout (the output kept in bench/results/profile):

    PYTHONPATH=. python bench/profile/micro.py > bench/results/profile/micro.txt
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg.blas

from bench.epoch_vs_torch import make_data
from bench.profile.common import parser, seconds_per_call

PARAMETERS = 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10


def micros(function: Callable[[], object], calls: int = 200) -> float:
    """The best of 7 runs of `calls` calls, in microseconds per call."""
    return 1e6 * min(seconds_per_call(function, calls, 7))


def show(label: str, function: Callable[[], object], calls: int = 200, note: str = "") -> None:
    print(f"{label:25s}{micros(function, calls):8.1f} us{note and '   ' + note}")


def step_calls(X: np.ndarray, batch_size: int, rng: np.random.Generator) -> None:
    """The calls of one training step on a batch, each beside its alternatives."""
    m, calls = batch_size, 200 if batch_size <= 64 else 40
    print(f"\n=== B={m}")
    idx = rng.permutation(X.shape[0])[:m]
    x = np.empty((m, 784), np.float32)
    show("take X mode=raise out=", lambda: np.take(X, idx, axis=0, out=x), calls)
    show(
        "take X mode=clip  out=",
        lambda: np.take(X, idx, axis=0, out=x, mode="clip"),
        calls,
        "[gpunet]",
    )
    show("take X mode=wrap  out=", lambda: np.take(X, idx, axis=0, out=x, mode="wrap"), calls)
    show("X[idx] (new array)", lambda: X[idx], calls)
    show("np.take(X, idx, axis=0)", lambda: np.take(X, idx, axis=0), calls)
    # GEMMs in gpunet's layout and the alternatives
    W1 = rng.standard_normal((256, 784), dtype=np.float32)
    Z, Zr = np.empty((256, m), np.float32), np.empty((m, 256), np.float32)
    show("fwd W1@X.T out=(256,B)", lambda: np.matmul(W1, x.T, out=Z), calls, "[gpunet]")
    show("fwd X@W1.T out=(B,256)", lambda: np.matmul(x, W1.T, out=Zr), calls, "[torch layout]")
    d = rng.standard_normal((256, m), dtype=np.float32)
    dr = np.ascontiguousarray(d.T)
    G = np.empty((256, 784), np.float32)
    show("BP4 d@X out=(256,784)", lambda: np.matmul(d, x, out=G), calls, "[gpunet]")
    show("BP4 dr.T@X (rows layout)", lambda: np.matmul(dr.T, x, out=G), calls, "[torch layout]")
    W2, A1 = rng.standard_normal((256, 256), dtype=np.float32), np.maximum(d, 0)
    Z2, G2 = np.empty((256, m), np.float32), np.empty((256, 256), np.float32)
    show("fwd W2@A1", lambda: np.matmul(W2, A1, out=Z2), calls)
    show("BP2 W2.T@d", lambda: np.matmul(W2.T, d, out=Z2), calls)
    show("BP4 d@A1.T", lambda: np.matmul(d, A1.T, out=G2), calls)
    # ReLU' four ways
    a = np.maximum(rng.standard_normal((256, m), dtype=np.float32), 0)
    g = rng.standard_normal((256, m), dtype=np.float32)
    mask, sign = np.empty((256, m), bool), np.empty((256, m), np.float32)

    def preallocated_mask() -> None:
        np.greater(a, 0.0, out=mask)
        np.multiply(g, mask, out=g)

    def copyto_where() -> None:
        np.less_equal(a, 0.0, out=mask)
        np.copyto(g, 0.0, where=mask)

    def sign_multiply() -> None:
        np.sign(a, out=sign)
        np.multiply(g, sign, out=g)

    show("relu' multiply(g, a>0)", lambda: np.multiply(g, a > 0.0, out=g), note="[gpunet]")
    show("relu' prealloc mask", preallocated_mask)
    show("relu' copyto where", copyto_where)
    show("relu' sign*mult (f32)", sign_multiply)
    # the bias add and BP3
    bias, gb, ones = (
        rng.standard_normal(256, dtype=np.float32),
        np.empty(256, np.float32),
        np.ones(m, np.float32),
    )
    show("bias add z += b[:,None]", lambda: np.add(Z, bias[:, None], out=Z), note="[gpunet]")
    show("bias grad sum(axis=1)", lambda: np.sum(d, axis=1, out=gb))
    show("bias grad d@ones (gemv)", lambda: np.matmul(d, ones, out=gb), note="[gpunet]")
    show("relu fwd maximum(z,0)", lambda: np.maximum(Z, 0.0, out=Z), note="[gpunet]")


def sgd_step(rng: np.random.Generator) -> None:
    """Plain SGD over the flat parameter buffer: gpunet's two ufuncs against one saxpy."""
    params = rng.standard_normal(PARAMETERS, dtype=np.float32)
    grads = rng.standard_normal(PARAMETERS, dtype=np.float32) * 1e-6

    def two_ufuncs() -> None:  # grads *= lr; params -= grads
        np.multiply(grads, 0.1, out=grads)
        np.subtract(params, grads, out=params)

    saxpy = scipy.linalg.blas.saxpy
    print()
    show("SGD grads*=lr; p-=grads", two_ufuncs, 500, "[gpunet]")
    show("SGD scipy saxpy (in place)", lambda: saxpy(grads, params, a=-0.1), 500)
    print(f"  saxpy returns same buffer: {saxpy(grads, params, a=-0.1) is params}")


def main() -> None:
    args = parser(__doc__).parse_args()
    X, _ = make_data(args.examples)
    rng = np.random.default_rng(1)
    for batch_size in args.batch_sizes:
        step_calls(X, batch_size, rng)
    sgd_step(rng)


if __name__ == "__main__":
    main()
