"""Optimizers: one `step` updates every parameter at once, through the flat buffer.

The network keeps all weights, then all biases, in one flat array (with per-layer
views), and the gradients likewise; an optimizer step is therefore a handful of
array operations whatever the depth, and weight decay reaches the weights only.
The update rules themselves (`sgd_rule`, `adam_rule`) are written here once over an
array module; a backend runs them (`Backend.sgd_update`), the CuPy one as one kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import check_flag, check_positive, check_unit_interval

Array = Any


class Optimizer:
    """Holds hyperparameters and per-parameter state; `step` applies one update."""

    name: str
    lr: float

    def step(self, backend: Any, params: Any, grads: Any, n_weights: int) -> None:
        """Update params in place from grads (grads is overwritten as scratch)."""
        raise NotImplementedError

    def bp1_scale(self) -> float | None:
        """The factor BP1 may scale delta^L by so that this optimizer's step becomes
        `descend` (p -= grads, one pass), or None: only an update that is a fixed multiple of
        the gradient has one (BP2–BP4 being linear in delta^L)."""
        return None

    def descend(self, backend: Any, params: Any, scaled_grads: Any) -> None:
        """The step for gradients already scaled by bp1_scale(): p -= grads."""
        self.attach(params)
        backend.descend(params, scaled_grads)

    _size: int | None = None
    # the arrays `state` returns once the optimizer has stepped
    state_keys: frozenset[str] = frozenset()

    def check_params(self, params: Any) -> None:
        """ValueError when this optimizer holds state for another network's parameters."""
        if self._size is not None and self._size != params.size:
            raise ValueError(
                f"this {self.name} optimizer holds state for {self._size} parameters, "
                f"not {params.size}: use a new optimizer for another network"
            )

    def attach(self, params: Any) -> None:
        """Bind to a network's flat parameters; a different network is a ValueError."""
        self.check_params(params)
        self._size = params.size

    def state(self, backend: Any) -> dict[str, np.ndarray]:
        """The per-parameter state as NumPy arrays (empty before the first step): a checkpoint's."""
        raise NotImplementedError

    def load_state(self, backend: Any, params: Any, state: dict[str, np.ndarray]) -> None:
        """Take back what `state` returned, for `params`, checked in full before any change."""
        raise NotImplementedError

    def check_state(self, params: Any, state: dict[str, np.ndarray]) -> None:
        """ValueError unless `state` is one `state` could have returned for `params`."""
        keys = self.state_keys
        if set(state) not in (set(), keys):
            raise ValueError(
                f"state for a {self.name} optimizer must hold {', '.join(sorted(keys))} "
                f"or nothing, got {', '.join(sorted(state)) or 'nothing'}"
            )
        for key, value in state.items():
            shape = () if key == "steps" else params.shape
            if np.shape(value) != shape:
                raise ValueError(f"optimizer state {key} must have shape {shape}")
        self.check_params(params)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class SGD(Optimizer):
    """Mini-batch gradient descent, w -> w − lr·∂C/∂w, with momentum as torch.optim.SGD.

    Examples:
        >>> import gpunet
        >>> X, y = gpunet.datasets.digits()
        >>> net = gpunet.Network([64, 30, 10], "sigmoid", backend="numpy", seed=0)
        >>> sgd = SGD(0.1, momentum=0.9, weight_decay=1e-4)
        >>> sgd
        SGD(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0001)
        >>> history = net.fit(X, y, epochs=2, batch_size=32, optimizer=sgd, seed=0, progress=False)
        >>> history["cost"][1] < history["cost"][0]
        True
        >>> SGD(0.1, nesterov=True)
        Traceback (most recent call last):
        ...
        ValueError: nesterov=True needs a momentum > 0
    """

    name = "sgd"
    state_keys = frozenset({"velocity"})

    def __init__(
        self,
        lr: float,
        *,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        self.lr = check_positive("lr", lr)
        self.momentum = check_unit_interval("momentum", momentum, allow_zero=True)
        self.nesterov = check_flag("nesterov", nesterov)
        if self.nesterov and not self.momentum:
            raise ValueError("nesterov=True needs a momentum > 0")
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self._velocity = None

    def bp1_scale(self) -> float | None:
        # p -= lr·∂C/∂p and nothing else (a subclass that changes step overrides this too)
        return None if self.momentum or self.weight_decay else self.lr

    def step(self, backend: Any, params: Any, grads: Any, n_weights: int) -> None:
        self.attach(params)
        if self.momentum and self._velocity is None:
            self._velocity = backend.zeros(params.shape, params.dtype)
        rule = SGDStep(self.lr, self.momentum, self.nesterov, self.weight_decay, n_weights)
        backend.sgd_update(params, grads, self._velocity, rule)

    def state(self, backend: Any) -> dict[str, np.ndarray]:
        return {} if self._velocity is None else {"velocity": backend.to_numpy(self._velocity)}

    def load_state(self, backend: Any, params: Any, state: dict[str, np.ndarray]) -> None:
        self.check_state(params, state)
        self.attach(params)
        velocity = state.get("velocity")
        self._velocity = None if velocity is None else backend.asarray(velocity, params.dtype)


class Adam(Optimizer):
    """Adam with bias correction and L2 weight decay on the weights, as torch.optim.Adam.

    Examples:
        >>> Adam(1e-3)
        Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0)
    """

    name = "adam"
    state_keys = frozenset({"first_moment", "second_moment", "steps"})

    def __init__(
        self,
        lr: float = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.lr = check_positive("lr", lr)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        beta1, beta2 = betas
        self.betas = (
            check_unit_interval("betas[0]", beta1, allow_zero=True),
            check_unit_interval("betas[1]", beta2, allow_zero=True),
        )
        self.eps = check_positive("eps", eps)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self._moments = None
        self._steps = 0

    def step(self, backend: Any, params: Any, grads: Any, n_weights: int) -> None:
        self.attach(params)
        if self._moments is None:
            self._moments = tuple(backend.zeros(params.shape, params.dtype) for _ in range(2))
        self._steps += 1
        rule = AdamStep(self.lr, *self.betas, self.eps, self._steps, self.weight_decay, n_weights)
        backend.adam_update(params, grads, *self._moments, rule)

    def state(self, backend: Any) -> dict[str, np.ndarray]:
        if self._moments is None:
            return {}
        first, second = (backend.to_numpy(moment) for moment in self._moments)
        return {"first_moment": first, "second_moment": second, "steps": np.array(self._steps)}

    def load_state(self, backend: Any, params: Any, state: dict[str, np.ndarray]) -> None:
        self.check_state(params, state)
        self.attach(params)
        if not state:
            self._moments, self._steps = None, 0
            return
        self._moments = tuple(
            backend.asarray(state[key], params.dtype) for key in ("first_moment", "second_moment")
        )
        self._steps = int(state["steps"])


@dataclass(frozen=True)
class SGDStep:
    """The scalars of one `sgd_rule` update, as a backend receives them."""

    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    n_decayed: int  # weight decay reaches the first n_decayed entries: the weights


@dataclass(frozen=True)
class AdamStep:
    """The scalars of one `adam_rule` update, as a backend receives them."""

    lr: float
    beta1: float
    beta2: float
    eps: float
    step: int  # this update's number, from 1: the bias corrections' exponent
    weight_decay: float
    n_decayed: int

    def step_size(self) -> float:
        """lr/(1 − β1^t): the first moment's bias correction folded into the rate."""
        return self.lr / (1.0 - self.beta1**self.step)

    def inv_sqrt_bias2(self) -> float:
        """1/sqrt(1 − β2^t): the second moment's bias correction under the square root."""
        return 1.0 / (1.0 - self.beta2**self.step) ** 0.5


def sgd_rule(xp: Any, params: Array, grads: Array, velocity: Array | None, s: SGDStep) -> None:
    """p -= lr·(g + λp) with optional (Nesterov) momentum, as torch.optim.SGD does.

    Weight decay applies to the first n_decayed entries (the weights, not the
    biases), which makes weight_decay = λ/n Nielsen's L2 rule.
    """
    if s.weight_decay:
        grads[: s.n_decayed] += s.weight_decay * params[: s.n_decayed]
    if velocity is not None:
        velocity *= s.momentum
        velocity += grads
        if s.nesterov:
            grads += s.momentum * velocity
        else:
            xp.copyto(grads, velocity)
    grads *= s.lr
    params -= grads


def adam_rule(
    xp: Any, params: Array, grads: Array, first_moment: Array, second_moment: Array, s: AdamStep
) -> None:
    """Adam with bias correction and L2 decay on the weights, as torch.optim.Adam does."""
    if s.weight_decay:
        grads[: s.n_decayed] += s.weight_decay * params[: s.n_decayed]
    first_moment *= s.beta1
    first_moment += (1.0 - s.beta1) * grads
    second_moment *= s.beta2
    grads *= grads
    second_moment += (1.0 - s.beta2) * grads
    # grads is free now: reuse it for the denominator sqrt(v_hat) + eps
    xp.sqrt(second_moment, out=grads)
    grads *= s.inv_sqrt_bias2()
    grads += s.eps
    xp.divide(first_moment, grads, out=grads)
    grads *= s.step_size()
    params -= grads


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(optimizer: str | Optimizer, lr: float | None) -> Optimizer:
    """An optimizer object from a name and learning rate, or the object given."""
    if isinstance(optimizer, Optimizer):
        if lr is not None:
            raise ValueError("pass lr to the optimizer object, not to fit(), when giving one")
        return optimizer
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be a name or an Optimizer, got {type(optimizer).__name__}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {optimizer!r}; expected one of {', '.join(OPTIMIZERS)}"
        )
    if lr is None:
        if optimizer == "sgd":
            raise ValueError("lr is required with optimizer='sgd' (e.g. lr=0.5)")
        return Adam()
    return OPTIMIZERS[optimizer](lr)
