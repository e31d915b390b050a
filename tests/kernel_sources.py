"""The CUDA kernels' declarations, read from kernels/*.cu, for the compile and host tests."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from gpunet.core.backends import kernels

KERNELS = kernels.kernels_dir()
C_DTYPES = {"float": np.dtype(np.float32), "double": np.dtype(np.float64)}


def kernel_signatures(path: Path) -> dict[str, list[str]]:
    """{kernel: [parameter type, ...]} for every __global__ function in a .cu file."""
    text = re.sub(r"//[^\n]*", "", path.read_text(encoding="utf-8"))
    signatures = {}
    for name, params in re.findall(r"__global__\s+void\s+(\w+)\s*\(([^)]*)\)", text):
        types_ = []
        for param in params.split(","):
            declared = re.fullmatch(r"\s*(.*?)\s*\w+\s*", param).group(1)
            types_.append(re.sub(r"\s*\*", "*", " ".join(declared.split())))
        signatures[name] = types_
    return signatures


def all_signatures() -> dict[str, list[str]]:
    signatures = {}
    for path in sorted(KERNELS.glob("*.cu")):
        signatures.update(kernel_signatures(path))
    return signatures


def split_name(expression: str) -> tuple[str, list[str]]:
    """'bias_activation<float, 1>' -> ('bias_activation', ['float', '1'])."""
    base, _, rest = expression.partition("<")
    return base, [a.strip() for a in rest.rstrip(">").split(",")]


def instantiations(names: list[str]) -> str:
    """C++ that takes the address of every kernel named, forcing its instantiation."""
    rows = "\n".join(f"      reinterpret_cast<const void*>(&{name})," for name in names)
    return (
        'extern "C" const void* gpunet_kernel(int i) {\n'
        "  static const void* const table[] = {\n"
        f"{rows}\n"
        "  };\n"
        "  return table[i];\n"
        "}\n"
    )
