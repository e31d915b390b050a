"""One function per CUDA kernel: its argument checks, its argument list, its launch.

Each function takes the launcher first (`kernels.DeviceLauncher`, or a test's host
simulator), checks every array before anything runs (so a bad call changes nothing), packs
the scalars in the types the kernel declares (T as the arrays' dtype, sizes as int64,
flags as int32; see kernels/elementwise.cu) and launches once. The math is that of
`activations.py`, `costs.py`, `optimizers.py` and `base.py`, term for term.
"""

from __future__ import annotations

import numpy

from ..optimizers import AdamStep, SGDStep
from .base import Array
from .kernels import (
    ACTIVATION_IDS,
    Launch,
    check_contiguous,
    check_dtype,
    check_shape,
    element_strides,
    kernel_name,
    matrix_shape,
)

# softmax columns of more rows than this get a warp each (kernels/warps.cuh), fewer a
# thread each: a thread walks its column's rows alone, while neighbouring threads read
# neighbouring columns together (one row at a time, coalesced)
SOFTMAX_WARP_ROWS = 32
# the activations with a bias_activation / activation_delta kernel (softmax has its own)
FORWARD_KERNELS = frozenset({*ACTIVATION_IDS, "softmax"})


def _n(value: int) -> numpy.int64:
    return numpy.int64(value)


def bias_activation(
    launch: Launch, activation: str, weighted_input: Array, bias: Array, out: Array
) -> Array:
    """Z^l += b^l, then A^l = g^l(Z^l) in one pass (out may be weighted_input itself)."""
    if activation not in FORWARD_KERNELS:
        raise ValueError(f"no forward kernel for activation {activation!r}")
    dtype = check_dtype(weighted_input=weighted_input, bias=bias, out=out)
    check_contiguous(weighted_input=weighted_input, bias=bias, out=out)
    n, m = matrix_shape("weighted_input", weighted_input)
    check_shape((n, m), out=out)
    check_shape((n,), bias=bias)
    args = (weighted_input, bias, out, _n(n), _n(m))
    if activation != "softmax":
        launch(kernel_name("bias_activation", dtype, activation), n * m, args)
    elif n > SOFTMAX_WARP_ROWS:
        launch(kernel_name("softmax_forward_warp", dtype), m, args)
    else:
        launch(kernel_name("softmax_forward", dtype), m if n else 0, args)
    return out


def activation_delta(
    launch: Launch,
    activation: str,
    grad_activation: Array,
    weighted_input: Array,
    activation_value: Array,
    out: Array,
) -> Array:
    """BP1/BP2's product delta = dC/dA ⊙ g'(Z), elementwise (out may alias grad_activation)."""
    if activation not in ACTIVATION_IDS:
        raise ValueError(f"no elementwise delta kernel for activation {activation!r}")
    arrays = {
        "grad_activation": grad_activation,
        "weighted_input": weighted_input,
        "activation_value": activation_value,
        "out": out,
    }
    dtype = check_dtype(**arrays)
    check_contiguous(**arrays)
    check_shape(tuple(grad_activation.shape), **arrays)
    size = int(grad_activation.size)
    args = (grad_activation, weighted_input, activation_value, out, _n(size))
    launch(kernel_name("activation_delta", dtype, activation), size, args)
    return out


def softmax_delta(
    launch: Launch, grad_activation: Array, activation_value: Array, out: Array
) -> Array:
    """BP1/BP2's product for softmax: the Jacobian-vector product a ⊙ (v − Σ a ⊙ v) per column."""
    arrays = {"grad_activation": grad_activation, "activation_value": activation_value}
    dtype = check_dtype(**arrays, out=out)
    check_contiguous(**arrays, out=out)
    n, m = matrix_shape("grad_activation", grad_activation)
    check_shape((n, m), activation_value=activation_value, out=out)
    args = (grad_activation, activation_value, out, _n(n), _n(m))
    if n > SOFTMAX_WARP_ROWS:
        launch(kernel_name("softmax_delta_warp", dtype), m, args)
    else:
        launch(kernel_name("softmax_delta", dtype), m if n else 0, args)
    return out


def output_minus_target(launch: Launch, a: Array, y: Array, out: Array) -> Array:
    """(A − Y)/m: BP1's fused output delta; Y is read through its strides (any layout)."""
    dtype = check_dtype(a=a, y=y, out=out)
    check_contiguous(a=a, out=out)
    n, m = matrix_shape("a", a)
    check_shape((n, m), y=y, out=out)
    y_row, y_col = element_strides("y", y)
    scale = dtype.type(1.0 / m) if m else dtype.type(0)
    args = (a, y, _n(y_row), _n(y_col), out, _n(n), _n(m), scale)
    launch(kernel_name("output_minus_target", dtype), n * m, args)
    return out


def row_dot(launch: Launch, x: Array, y: Array, out: Array) -> Array:
    """out[i] = Σ_j x[i, j]·y[i, j] for (n, m) views x and y at any strides, a warp per row.

    BP3 with y a row of ones broadcast over the rows, and any GEMM whose product is one
    element (CuPy's own path for those allocates on every call).
    """
    dtype = check_dtype(x=x, y=y, out=out)
    check_contiguous(out=out)
    n, m = matrix_shape("x", x)
    check_shape((n, m), y=y)
    check_shape((n,), out=out)
    x_row, x_col = element_strides("x", x)
    y_row, y_col = element_strides("y", y)
    args = (x, _n(x_row), _n(x_col), y, _n(y_row), _n(y_col), out, _n(n), _n(m))
    launch(kernel_name("row_dot", dtype), n, args)
    return out


def sgd_update(
    launch: Launch, params: Array, grads: Array, velocity: Array | None, rule: SGDStep
) -> None:
    """`optimizers.sgd_rule` in one pass; grads is left as it was (the generic rule uses
    it as scratch)."""
    arrays = {"params": params, "grads": grads}
    if velocity is not None:
        arrays["velocity"] = velocity
    dtype, size = _check_flat(arrays)
    scalar = dtype.type
    args = (
        params,
        grads,
        params if velocity is None else velocity,  # not read without momentum
        _n(size),
        _n(_decayed(rule.n_decayed, size) if rule.weight_decay else 0),
        scalar(rule.lr),
        scalar(rule.momentum),
        numpy.int32(velocity is not None),
        numpy.int32(bool(rule.nesterov)),
        scalar(rule.weight_decay),
    )
    launch(kernel_name("sgd_update", dtype), size, args)


def adam_update(
    launch: Launch,
    params: Array,
    grads: Array,
    first_moment: Array,
    second_moment: Array,
    rule: AdamStep,
) -> None:
    """`optimizers.adam_rule` in one pass; the step's scalars are computed on the host in
    double precision by the same AdamStep methods as the generic rule's."""
    arrays = {
        "params": params,
        "grads": grads,
        "first_moment": first_moment,
        "second_moment": second_moment,
    }
    dtype, size = _check_flat(arrays)
    scalar = dtype.type
    args = (
        params,
        grads,
        first_moment,
        second_moment,
        _n(size),
        _n(_decayed(rule.n_decayed, size) if rule.weight_decay else 0),
        scalar(rule.beta1),
        scalar(1.0 - rule.beta1),
        scalar(rule.beta2),
        scalar(1.0 - rule.beta2),
        scalar(rule.eps),
        scalar(rule.step_size()),
        scalar(rule.inv_sqrt_bias2()),
        scalar(rule.weight_decay),
    )
    launch(kernel_name("adam_update", dtype), size, args)


def _check_flat(arrays: dict[str, Array]) -> tuple[numpy.dtype, int]:
    """Checks for the optimizer kernels: one dtype, C-contiguous, all of params' size."""
    dtype = check_dtype(**arrays)
    check_contiguous(**arrays)
    size = int(arrays["params"].size)
    check_shape((size,), **arrays)
    return dtype, size


def _decayed(n_decayed: int, size: int) -> int:
    if not 0 <= n_decayed <= size:
        raise ValueError(f"n_decayed must lie in [0, {size}], got {n_decayed}")
    return int(n_decayed)
