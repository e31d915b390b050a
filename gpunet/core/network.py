"""A fully-connected network and the four equations of backpropagation.

Notation (docs/math.md): layer l has W^l of shape (n_l, n_{l-1}) and b^l of shape (n_l,);
examples are columns, so a batch X of m rows enters as A^0 = X^T (a view, no copy).
In code, list index i holds the texts' layer l = i + 1.

    Z^l = W^l A^{l-1} + b^l                A^l = g^l(Z^l)
    BP1  delta^L = grad_A C ⊙ g'(Z^L)
    BP2  delta^l = ((W^{l+1})^T delta^{l+1}) ⊙ g'(Z^l)
    BP3  dC/db^l = Σ_x delta^l
    BP4  dC/dW^l = delta^l (A^{l-1})^T
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import convert
from .activations import Activation, get_activation
from .annotations import Floats, Labels, Metrics, PerLayer
from .backends import BACKENDS, Backend, select_backend
from .checks import check_features, check_targets
from .costs import Cost, get_cost
from .io import FileFormatError, model_arrays, read_model, write_arrays
from .parameters import check_float_dtype, check_sizes, flat_views, initial_params

if TYPE_CHECKING:
    from ..train.history import History

Array = Any
# examples per pass for forward/evaluate: bounds memory for large inputs
CHUNK = 8192
# the cost each output activation is usually paired with (the texts' choices)
NATURAL_COST = {"softmax": "log_likelihood", "sigmoid": "cross_entropy"}


class Workspace:
    """Preallocated buffers for one batch size m: the training step allocates nothing."""

    def __init__(self, net: Network, m: int) -> None:
        ops, dtype, last = net.backend, net.dtype, len(net.activations) - 1
        self.x = ops.empty((m, net.sizes[0]), dtype)  # the batch, rows as at the API
        self.y = ops.empty((m, net.sizes[-1]), dtype)
        # the rows last fed through: x and y, or views of the data when no gather was needed
        self.inputs, self.targets = self.x, self.y
        self.weighted_input, self.activation, self.delta = [], [], []
        for i, (n, g) in enumerate(zip(net.sizes[1:], net.activations)):
            order = ops.batch_order(m, hidden=i != last)
            z = ops.empty((n, m), dtype, order)
            self.weighted_input.append(z)
            # when g' comes from A, A overwrites Z; the output layer keeps Z for a stable cost
            shares = g.derivative_from_output and i != last
            self.activation.append(z if shares else ops.empty((n, m), dtype, order))
            self.delta.append(ops.empty((n, m), dtype, order))


class Network:
    """A fully-connected feedforward network trained by explicit backpropagation.

    Examples:
        >>> net = Network([4, 3, 2], ["relu", "softmax"], backend="numpy", seed=0)
        >>> [w.shape for w in net.weights], [b.shape for b in net.biases]
        ([(3, 4), (2, 3)], [(3,), (2,)])
        >>> X = np.random.default_rng(0).random((5, 4))  # 5 rows of 4 features
        >>> net.forward(X).shape, net.forward(X).sum(axis=1).round(4).tolist()  # softmax
        ((5, 2), [1.0, 1.0, 1.0, 1.0, 1.0])
        >>> bool((net.predict(X) == net.forward(X).argmax(axis=1)).all())
        True
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activations: str | Sequence[str] = "sigmoid",
        *,
        backend: str | Backend = "auto",
        dtype: DTypeLike = "float32",
        init: str = "lecun",
        seed: int | None = None,
    ) -> None:
        self.sizes = check_sizes(sizes)
        if isinstance(activations, str):
            names = [activations] * (len(self.sizes) - 1)
        elif isinstance(activations, (list, tuple)):
            names = list(activations)
        else:
            raise TypeError(
                f"activations must be a name or a list of names, got {type(activations).__name__}"
            )
        if len(names) != len(self.sizes) - 1:
            raise ValueError(
                f"activations must be one name or one per weight layer "
                f"({len(self.sizes) - 1}), got {len(names)}"
            )
        self.activations: list[Activation] = [get_activation(name) for name in names]
        self.dtype = check_float_dtype(dtype)
        weights, biases = initial_params(self.sizes, init, seed)  # checks init and seed
        if isinstance(backend, Backend):
            self.backend, self.backend_reason = backend, f"{backend.name} (given)"
        else:
            self.backend, self.backend_reason = select_backend(backend)
        self._allocate()
        self.set_params(weights, biases)

    def _allocate(self) -> None:
        """The flat parameter and gradient buffers, their per-layer views, no workspaces."""
        # All weights, then all biases, in one flat buffer: an optimizer step or an
        # all-reduce is one call, and weight decay reaches the weights as one slice.
        shapes = list(zip(self.sizes[1:], self.sizes[:-1]))
        self.n_weights = sum(n * k for n, k in shapes)
        self.params = self.backend.empty(self.n_weights + sum(self.sizes[1:]), self.dtype)
        self.grads = self.backend.empty(self.params.shape, self.dtype)
        self.weights, self.grads_w = (
            flat_views(self.params, shapes),
            flat_views(self.grads, shapes),
        )
        bias_shapes = [(n,) for n in self.sizes[1:]]
        self.biases = flat_views(self.params[self.n_weights :], bias_shapes)
        self.grads_b = flat_views(self.grads[self.n_weights :], bias_shapes)
        self._workspaces: dict[int, Workspace] = {}

    # --- copies: pickle and copy.deepcopy keep the views onto one flat buffer -----------

    def __getstate__(self) -> dict[str, Any]:
        # the parameters as a host array: views and workspaces are rebuilt, not copied
        return {
            "sizes": self.sizes,
            "activations": self.activation_names,
            "dtype": self.dtype.name,
            "backend": self.backend.name,
            "backend_reason": self.backend_reason,
            "params": self.backend.to_numpy(self.params),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.sizes = state["sizes"]
        self.activations = [get_activation(name) for name in state["activations"]]
        self.dtype = np.dtype(state["dtype"])
        self.backend, _ = select_backend(state["backend"])
        self.backend_reason = state["backend_reason"]
        self._allocate()
        # a copy into the new buffer: a read-only memory map (joblib's) stays untouched
        self.params[...] = self.backend.asarray(state["params"], self.dtype)

    # --- parameters --------------------------------------------------------------

    @property
    def activation_names(self) -> list[str]:
        return [g.name for g in self.activations]

    @property
    def n_parameters(self) -> int:
        return int(self.params.size)

    def set_params(self, weights: Sequence[ArrayLike], biases: Sequence[ArrayLike]) -> None:
        """Load weights (n_l, n_{l-1}) and biases (n_l,), checked in full before any is copied."""
        self.params[...] = self.checked_params(weights, biases)

    def checked_params(self, weights: Sequence[ArrayLike], biases: Sequence[ArrayLike]) -> Array:
        """The flat buffer set_params would copy in, on this backend; errors as set_params."""
        expected_w = [w.shape for w in self.weights]
        expected_b = [b.shape for b in self.biases]
        for kind, given in (("weights", weights), ("biases", biases)):
            if not isinstance(given, (list, tuple)):
                raise TypeError(
                    f"{kind} must be a list of arrays, one per layer (as get_params returns), "
                    f"got {type(given).__name__}"
                )
        if len(weights) != len(expected_w) or len(biases) != len(expected_b):
            raise ValueError(
                f"expected {len(expected_w)} weight matrices and {len(expected_b)} bias vectors, "
                f"got {len(weights)} and {len(biases)}"
            )
        arrays = []
        for kind, given, shapes in (
            ("weights", weights, expected_w),
            ("biases", biases, expected_b),
        ):
            for i, (array, shape) in enumerate(zip(given, shapes)):
                array = self.backend.to_numpy(array)
                if array.dtype.kind != "f":
                    raise TypeError(f"{kind}[{i}] must be a float array, got dtype {array.dtype}")
                if array.shape != shape:
                    raise ValueError(f"{kind}[{i}] must have shape {shape}, got {array.shape}")
                if not np.isfinite(array).all():
                    raise ValueError(f"{kind}[{i}] contains NaN or inf")
                arrays.append(array.ravel())
        return self.backend.asarray(np.concatenate(arrays), self.dtype)

    def get_params(self) -> PerLayer:
        """Copies of the weights and biases as NumPy arrays."""
        to_numpy = self.backend.to_numpy
        return [to_numpy(w).copy() for w in self.weights], [to_numpy(b).copy() for b in self.biases]

    def __repr__(self) -> str:
        return (
            f"Network({self.sizes}, {self.activation_names}, backend={self.backend.name!r}, "
            f"dtype={self.dtype.name!r})"
        )

    # --- the equations -------------------------------------------------------------

    def workspace(self, m: int) -> Workspace:
        workspace = self._workspaces.get(m)
        if workspace is None:
            # fit needs three sizes (the batch, the last batch, its probe) and validation
            # two more; don't hoard the rest
            if len(self._workspaces) >= 6:
                self._workspaces.clear()
            workspace = self._workspaces[m] = Workspace(self, m)
        return workspace

    def feedforward(self, x: Array, ws: Workspace) -> Array:
        """Z^l = W^l A^{l-1} + b^l and A^l = g^l(Z^l) for every layer, from A^0 = X^T."""
        activation = x.T
        layers = zip(self.weights, self.biases, self.activations, ws.weighted_input, ws.activation)
        for w, b, g, z, a in layers:
            self.backend.matmul(w, activation, out=z)
            activation = self.backend.bias_activation(g, z, b, out=a)
        return activation

    def backpropagate(
        self, x: Array, y: Array, ws: Workspace, cost: Cost, scale: float = 1.0
    ) -> None:
        """BP1–BP4 for the batch-mean cost over rows x, y: fills the flat gradient buffer
        with scale·∂C/∂θ (plain SGD passes scale = lr: its update is then one subtraction)."""
        ops = self.backend
        self.feedforward(x, ws)
        g = self.activations
        delta = cost.delta(  # BP1
            ops, g[-1], ws.weighted_input[-1], ws.activation[-1], y.T, out=ws.delta[-1]
        )
        if scale != 1.0:
            # BP2–BP4 are linear in delta^L: scaling it scales every gradient
            delta *= scale
        for i in reversed(range(len(self.weights))):
            previous = x.T if i == 0 else ws.activation[i - 1]
            ops.bias_gradient(delta, out=self.grads_b[i])  # BP3
            ops.matmul(delta, previous.T, out=self.grads_w[i])  # BP4
            if i:
                # BP2: (W^{l+1})^T delta^{l+1}, then ⊙ g'(Z^l), in place
                back = ops.matmul(self.weights[i].T, delta, out=ws.delta[i - 1])
                delta = ops.activation_delta(
                    g[i - 1], back, ws.weighted_input[i - 1], previous, out=back
                )

    def batch_cost(self, ws: Workspace, y: Array, cost: Cost) -> Array:
        """Σ_x C_x over the batch just fed forward (a device scalar)."""
        return cost.value(
            self.backend, ws.weighted_input[-1], ws.activation[-1], y.T, self.activations[-1]
        )

    def classify(self, output: Array) -> Array:
        """Class labels from output columns: the argmax, or a > 1/2 for a single output."""
        if output.shape[0] == 1:
            return (output[0] > 0.5).astype(np.int64)
        return output.argmax(axis=0)

    # --- public API ----------------------------------------------------------------

    def cost_function(self, cost: str | None) -> Cost:
        """The named cost (or the output's natural one), checked against the output layer."""
        output = self.activations[-1].name
        chosen = get_cost(NATURAL_COST.get(output, "quadratic") if cost is None else cost)
        chosen.check_output(output)
        return chosen

    def checked_inputs(
        self, X: Any, Y: Any, cost: Cost, what: str = ""
    ) -> tuple[Array, Array, Array | None]:
        """Checked X, targets and labels, on this backend in this network's dtype.

        `what` prefixes the argument names in errors ("validation " for validation data).
        """
        X = check_features(X, self.sizes[0], self.dtype, f"{what}X")
        targets, labels = check_targets(
            Y, X.shape[0], self.sizes[-1], cost, self.activations[-1].name, self.dtype, f"{what}Y"
        )
        ops = self.backend
        labels = None if labels is None else ops.asarray(labels)
        return ops.asarray(X, self.dtype), ops.asarray(targets, self.dtype), labels

    def _chunks(self, X: Array):
        """Feed X forward CHUNK rows at a time (views, no copy); yield (rows, workspace, output)."""
        for start in range(0, X.shape[0], CHUNK):
            rows = slice(start, min(start + CHUNK, X.shape[0]))
            ws = self.workspace(rows.stop - start)
            yield rows, ws, self.feedforward(X[rows], ws)

    def forward(self, X: ArrayLike) -> Floats:
        """Output activations A^L for each row of X, shape (m, n_L)."""
        X = self.backend.asarray(check_features(X, self.sizes[0], self.dtype))
        outputs = self.backend.empty((X.shape[0], self.sizes[-1]), self.dtype)
        for rows, _, output in self._chunks(X):
            outputs[rows] = output.T
        return outputs

    def predict(self, X: ArrayLike) -> Labels:
        """Class labels: the argmax of the outputs (a > 1/2 for one sigmoid output)."""
        X = self.backend.asarray(check_features(X, self.sizes[0], self.dtype))
        labels = self.backend.empty(X.shape[0], np.int64)
        for rows, _, output in self._chunks(X):
            labels[rows] = self.classify(output)
        return labels

    def evaluate_checked(self, X: Array, targets: Array, labels: Array | None, cost: Cost) -> dict:
        total, correct = 0.0, 0
        for rows, ws, output in self._chunks(X):
            total += self.batch_cost(ws, targets[rows], cost)
            if labels is not None:
                correct += (self.classify(output) == labels[rows]).sum()
        m = X.shape[0]
        return {
            "cost": float(total) / m,
            "accuracy": None if labels is None else float(correct) / m,
        }

    def evaluate(self, X: ArrayLike, Y: ArrayLike, cost: str | None = None) -> Metrics:
        """{'cost': the mean cost, 'accuracy': fraction right (None without class labels)}."""
        cost_ = self.cost_function(cost)
        return self.evaluate_checked(*self.checked_inputs(X, Y, cost_), cost_)

    def cost(self, X: ArrayLike, Y: ArrayLike, cost: str | None = None) -> float:
        """The cost C = (1/m) Σ_x C_x over the rows of X."""
        return self.evaluate(X, Y, cost)["cost"]

    def gradients(self, X: ArrayLike, Y: ArrayLike, cost: str | None = None) -> PerLayer:
        """(dC/dW^l, dC/db^l) for every layer, for the mean cost over all rows of X."""
        cost_ = self.cost_function(cost)
        X, targets, _ = self.checked_inputs(X, Y, cost_)
        self.backpropagate(X, targets, self.workspace(X.shape[0]), cost_)
        return [g.copy() for g in self.grads_w], [g.copy() for g in self.grads_b]

    def fit(self, X: ArrayLike, Y: ArrayLike, **options: Any) -> History:
        """Train on rows of X with targets Y; the options are those of `gpunet.train.fit`
        (epochs=10, batch_size=32, validation_split=, callbacks=[gpunet.EarlyStopping()], ...)."""
        # the one import from a higher layer: training is built on this class, not in it
        from ..train.loop import fit

        return fit(self, X, Y, **options)

    def to_torch(self) -> Any:
        """The network as a torch.nn.Sequential (Linear + activation per layer), same outputs."""
        return convert.to_torch(self._layers(), self.dtype)

    def to_onnx(self, path: str | os.PathLike[str]) -> None:
        """Write the network as an ONNX model (input X: rows of n_0 features), atomically."""
        convert.to_onnx(self._layers(), self.dtype, path)

    def _layers(self) -> convert.Layers:
        return (self.sizes, self.activation_names, *self.get_params())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the network to path (.npz) via a temporary file and a rename."""
        write_arrays(path, model_arrays(self))


def from_torch(module: Any, *, backend: str | Backend = "auto") -> Network:
    """A Network with the layers of a torch.nn.Sequential of Linear layers and activations."""
    (sizes, activations, weights, biases), dtype = convert.from_torch(module)
    net = Network(sizes, activations, backend=backend, dtype=dtype)
    net.set_params(weights, biases)
    return net


def load(path: str | os.PathLike[str], *, backend: str | Backend = "auto") -> Network:
    """A Network read from a file written by `Network.save`; FileFormatError (a ValueError)
    for anything else, OSError when the file cannot be read.

    Examples:
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     Network([4, 3, 2], "tanh", backend="numpy").save(os.path.join(directory, "n.npz"))
        ...     load(os.path.join(directory, "n.npz"), backend="numpy")
        Network([4, 3, 2], ['tanh', 'tanh'], backend='numpy', dtype='float32')
    """
    if isinstance(backend, str) and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    architecture, weights, biases = read_model(path)
    try:
        net = Network(
            architecture["sizes"],
            architecture["activations"],
            backend=backend,
            dtype=architecture["dtype"],
        )
        net.set_params(weights, biases)
    except (KeyError, ValueError, TypeError) as error:
        raise FileFormatError(path, "a gpunet model file", error) from None
    return net
