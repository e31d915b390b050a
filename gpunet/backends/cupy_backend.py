"""The CuPy backend: arrays on an NVIDIA GPU, GEMMs through cuBLAS."""

from __future__ import annotations

import numpy

from .base import Backend


class CupyBackend(Backend):
    """The generic stages on the device; only construct it after `cupy_unavailable()` is None."""

    name = "cupy"

    def __init__(self) -> None:
        import cupy
        import cupyx.scipy.special

        self.xp = cupy
        self.special = cupyx.scipy.special

    def to_numpy(self, x):
        return self.xp.asnumpy(x) if isinstance(x, self.xp.ndarray) else numpy.asarray(x)

    def describe(self) -> dict[str, str]:
        cupy = self.xp
        device = cupy.cuda.Device()
        properties = cupy.cuda.runtime.getDeviceProperties(device.id)
        return {
            "backend": self.name,
            "cupy": cupy.__version__,
            "numpy": numpy.__version__,
            "device": properties["name"].decode(),
            "driver": str(cupy.cuda.runtime.driverGetVersion()),
            "cuda_runtime": str(cupy.cuda.runtime.runtimeGetVersion()),
        }


def cupy_unavailable() -> str | None:
    """None when CuPy can use a GPU here, else one line saying why not."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install 'gpunet[cuda12x]' or 'gpunet[cuda13x]')"
    except Exception as error:  # a broken CUDA install can fail at import with anything
        return f"CuPy failed to import: {error}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDARuntimeError without a driver, or no device node
        return f"CuPy finds no usable CUDA device: {error}"
    if count == 0:
        return "CuPy finds no CUDA device"
    return None
