"""The types the public API's annotations name, beyond NumPy's ArrayLike for inputs."""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray

# What the public methods return: NumPy arrays on the NumPy backend; CuPy's, which NumPy's
# types cannot name but which behave alike, on the CuPy backend.
Floats = NDArray[np.floating[Any]]
Labels = NDArray[np.int64]
# one array per layer: (weights, biases), or (dC/dW^l, dC/db^l)
PerLayer = tuple[list[Floats], list[Floats]]


class Metrics(TypedDict):
    """What Network.evaluate returns: the mean cost, and the fraction right (None for
    targets that are not class labels)."""

    cost: float
    accuracy: float | None
