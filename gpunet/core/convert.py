"""A network's layers as PyTorch modules and as an ONNX graph, and back from PyTorch.

Both formats keep the same parameters as gpunet: `torch.nn.Linear.weight` is W^l of shape
(n_l, n_{l-1}), destination first, and `bias` is b^l, so a `state_dict` holds
`{2k}.weight`, `{2k}.bias` for layer k + 1 (an activation module sits between Linears).
PyTorch and ONNX take examples as rows, as gpunet's API does. torch and onnx are imported
only when a conversion runs; neither is a dependency of gpunet.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .activations import LEAKY_SLOPE
from .io import write_atomically

Layers = tuple[list[int], list[str], list[np.ndarray], list[np.ndarray]]
# ONNX's operator for each activation (identity adds no node); softmax over each row
ONNX_OPS = {
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "relu": ("Relu", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": LEAKY_SLOPE}),
    "softplus": ("Softplus", {}),
    "gelu": ("Gelu", {}),
    "softmax": ("Softmax", {"axis": 1}),
}
ONNX_OPSET = 20  # the first with Gelu


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("PyTorch is not installed: pip install torch") from None
    return torch


def torch_activation(name: str) -> Any:
    """The torch.nn module computing gpunet's activation `name` (None for identity)."""
    nn = _torch().nn
    return {
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE),
        "identity": lambda: None,
        # gpunet's softplus is exact: torch's default switches to z above 20, within 2e-9
        "softplus": nn.Softplus,
        "gelu": nn.GELU,  # the exact erf form, as gpunet's
        "softmax": lambda: nn.Softmax(dim=1),
    }[name]()


def to_torch(layers: Layers, dtype: np.dtype) -> Any:
    """An nn.Sequential of Linear layers and activations with the same parameters."""
    torch = _torch()
    sizes, activations, weights, biases = layers
    modules = []
    for n_in, n_out, name, w, b in zip(sizes[:-1], sizes[1:], activations, weights, biases):
        linear = torch.nn.Linear(n_in, n_out, dtype=getattr(torch, dtype.name))
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        modules.append(linear)
        activation = torch_activation(name)
        modules.append(torch.nn.Identity() if activation is None else activation)
    return torch.nn.Sequential(*modules)


def _activation_name(module: Any) -> str:
    """gpunet's name for a torch activation module, or a TypeError saying what differs."""
    nn = _torch().nn
    kinds = {
        nn.Sigmoid: "sigmoid",
        nn.Tanh: "tanh",
        nn.ReLU: "relu",
        nn.LeakyReLU: "leaky_relu",
        nn.Identity: "identity",
        nn.Softplus: "softplus",
        nn.GELU: "gelu",
        nn.Softmax: "softmax",
    }
    name = kinds.get(type(module))
    if name is None:
        raise TypeError(f"{type(module).__name__} has no gpunet activation")
    mismatch = {
        "leaky_relu": lambda m: m.negative_slope != LEAKY_SLOPE and f"slope {LEAKY_SLOPE}",
        "softplus": lambda m: m.beta != 1 and "beta 1",
        "gelu": lambda m: m.approximate != "none" and "approximate='none'",
        "softmax": lambda m: m.dim not in (1, -1) and "dim=1 (over each row)",
    }.get(name, lambda m: False)(module)
    if mismatch:
        raise TypeError(f"{module!r}: gpunet's {name} needs {mismatch}")
    return name


def from_torch(module: Any) -> tuple[Layers, np.dtype]:
    """The layers of an nn.Sequential of Linear layers, each followed by at most one
    supported activation (none: identity), as host arrays; TypeError for anything else."""
    torch = _torch()
    if not isinstance(module, torch.nn.Sequential):
        raise TypeError(f"module must be a torch.nn.Sequential, got {type(module).__name__}")
    sizes, activations, weights, biases = [], [], [], []
    for index, child in enumerate(module):
        if isinstance(child, torch.nn.Linear):
            if child.bias is None:
                raise TypeError(f"module[{index}] is a Linear without bias; gpunet's layers have b")
            if sizes and sizes[-1] != child.in_features:
                raise TypeError(
                    f"module[{index}] takes {child.in_features} inputs, not {sizes[-1]}"
                )
            if activations and activations[-1] is None:
                activations[-1] = "identity"
            sizes = sizes or [child.in_features]
            sizes.append(child.out_features)
            weights.append(child.weight.detach().cpu().numpy().copy())
            biases.append(child.bias.detach().cpu().numpy().copy())
            activations.append(None)
        elif not weights:
            raise TypeError(f"module[{index}] comes before the first Linear layer")
        elif activations[-1] is not None:
            raise TypeError(f"module[{index}] is a second activation after one Linear layer")
        else:
            activations[-1] = _activation_name(child)
    if not weights:
        raise TypeError("module holds no Linear layer")
    dtypes = {w.dtype for w in weights} | {b.dtype for b in biases}
    if len(dtypes) != 1:
        raise TypeError(f"module mixes dtypes {sorted(str(d) for d in dtypes)}")
    activations = ["identity" if a is None else a for a in activations]
    return (sizes, activations, weights, biases), dtypes.pop()


def _onnx_activation(helper: Any, name: str, dtype: np.dtype, z: str, a: str) -> tuple[list, str]:
    """The nodes computing A = g(Z): ONNX's own operator, or, in float64, where onnxruntime
    has no double kernel for it, the same function from operators it has."""
    op, attributes = ONNX_OPS[name]
    if dtype != np.float64 or name not in ("leaky_relu", "softplus", "gelu"):
        return [helper.make_node(op, [z], [a], **attributes)], a

    def constant(label: str, value: float) -> Any:
        return helper.make_node(
            "Constant",
            [],
            [label],
            value=helper.make_tensor(label, helper.np_dtype_to_tensor_dtype(dtype), [], [value]),
        )

    if name == "leaky_relu":  # max(z, 0.01 z)
        return [
            constant(f"{a}_slope", LEAKY_SLOPE),
            helper.make_node("Mul", [z, f"{a}_slope"], [f"{a}_scaled"]),
            helper.make_node("Max", [z, f"{a}_scaled"], [a]),
        ], a
    if name == "softplus":  # relu(z) + ln(1 + e^{−|z|}), finite for any z
        return [
            constant(f"{a}_one", 1.0),
            helper.make_node("Relu", [z], [f"{a}_relu"]),
            helper.make_node("Abs", [z], [f"{a}_abs"]),
            helper.make_node("Neg", [f"{a}_abs"], [f"{a}_neg"]),
            helper.make_node("Exp", [f"{a}_neg"], [f"{a}_exp"]),
            helper.make_node("Add", [f"{a}_exp", f"{a}_one"], [f"{a}_sum"]),
            helper.make_node("Log", [f"{a}_sum"], [f"{a}_log"]),
            helper.make_node("Add", [f"{a}_relu", f"{a}_log"], [a]),
        ], a
    # gelu: onnxruntime has neither a double Gelu nor a double Erf; computed in float32
    float32 = helper.np_dtype_to_tensor_dtype(np.dtype(np.float32))
    return [
        helper.make_node("Cast", [z], [f"{a}_single"], to=float32),
        helper.make_node("Gelu", [f"{a}_single"], [f"{a}_gelu"]),
        helper.make_node("Cast", [f"{a}_gelu"], [a], to=helper.np_dtype_to_tensor_dtype(dtype)),
    ], a


def to_onnx(layers: Layers, dtype: np.dtype, path: str | os.PathLike[str]) -> None:
    """Write the network as an ONNX model: input X (batch, n_0), output A (batch, n_L)."""
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError("onnx is not installed: pip install onnx") from None
    sizes, activations, weights, biases = layers
    element = helper.np_dtype_to_tensor_dtype(dtype)
    nodes, initializers, current = [], [], "X"
    for l, (name, w, b) in enumerate(zip(activations, weights, biases), 1):
        initializers += [numpy_helper.from_array(w, f"W{l}"), numpy_helper.from_array(b, f"b{l}")]
        # Z^l = A^{l-1} (W^l)^T + b^l: examples are rows here
        nodes.append(helper.make_node("Gemm", [current, f"W{l}", f"b{l}"], [f"Z{l}"], transB=1))
        current = f"Z{l}"
        if name != "identity":
            more, current = _onnx_activation(helper, name, dtype, current, f"A{l}")
            nodes += more
    nodes.append(helper.make_node("Identity", [current], ["A"]))
    graph = helper.make_graph(
        nodes,
        "gpunet",
        [helper.make_tensor_value_info("X", element, ["batch", sizes[0]])],
        [helper.make_tensor_value_info("A", element, ["batch", sizes[-1]])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.producer_name = "gpunet"
    onnx.checker.check_model(model, full_check=True)
    write_atomically(path, lambda file: file.write(model.SerializeToString()))
