"""scikit-learn estimators over gpunet: MLPClassifier and MLPRegressor (`gpunet.sklearn`).

Parameters and defaults are those of scikit-learn's own `sklearn.neural_network` estimators
where the meaning is the same, plus gpunet's `backend` and `dtype`. Training is one
`Network.fit` (BP1–BP4) per `fit` or `partial_fit`, stopped by scikit-learn's rule in a callback.

- activation: a gpunet name (sigmoid, tanh, relu, leaky_relu, identity, softplus, gelu) or
  scikit-learn's 'logistic' (gpunet's sigmoid), for every hidden layer.
- Outputs as scikit-learn's: a classifier of two classes has one sigmoid output and the
  cross-entropy, of more classes a softmax and the log-likelihood; a regressor has
  identity outputs and the quadratic cost ½‖y − a‖².
- alpha: the L2 penalty 0.5·alpha·‖W‖²/n_batch that scikit-learn adds to each batch's mean
  loss, that is gpunet's weight decay alpha/batch_size on the weights (not the biases).
  loss_curve_ holds gpunet's mean training cost per epoch, without that penalty.
- Convergence as scikit-learn's: training stops once more than n_iter_no_change
  consecutive epochs fail to improve the training loss (or, with early_stopping, the
  validation score) by tol; a fit that runs max_iter epochs warns ConvergenceWarning.
- Weights start from Glorot's init (gpunet's xavier), as scikit-learn's do; inputs are
  not scaled (put a StandardScaler in a Pipeline, as with scikit-learn).
- Not here: scikit-learn's solver 'lbfgs', its learning-rate schedules (learning_rate,
  power_t), warm_start, max_fun, sample_weight and multilabel targets.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, ClassVar, TypeVar

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as error:  # an optional extra: say which
    raise ImportError("gpunet.sklearn needs scikit-learn: pip install 'gpunet[sklearn]'") from error

from ..core.checks import check_count, check_flag, check_positive, check_unit_interval
from ..core.network import Network
from ..core.optimizers import SGD, Adam, Optimizer

# input dtypes kept as they come (a float32 X is not copied to float64 first)
FLOATS = (np.float64, np.float32)
SOLVERS = ("sgd", "adam")
# gpunet's seeds are integers; drawn from the estimator's random_state
SEED_BOUND = np.iinfo(np.int32).max
# scikit-learn's name of an output activation -> gpunet's
OUTPUTS = {"logistic": "sigmoid", "softmax": "softmax", "identity": "identity"}

Estimator = TypeVar("Estimator", bound="_MLP")


class _MLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, checks, the training."""

    # validate_data's options for y (the regressor takes several outputs)
    _y_options: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        hidden_layer_sizes: int | tuple[int, ...] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate_init: float = 0.001,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        backend: str = "auto",
        dtype: str = "float64",
    ) -> None:
        # stored as given: scikit-learn's clone and set_params need plain attributes; the
        # checks run in fit
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.backend = backend
        self.dtype = dtype

    # --- fitted attributes in scikit-learn's layout --------------------------------

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices as scikit-learn lays them out: (n_{l-1}, n_l), i.e. (W^l)^T."""
        check_is_fitted(self)
        return [w.T.copy() for w in self.net_.get_params()[0]]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors b^l, shape (n_l,)."""
        check_is_fitted(self)
        return self.net_.get_params()[1]

    # --- training ------------------------------------------------------------------

    def fit(self: Estimator, X: Any, y: Any) -> Estimator:
        """Train a new network on (X, y) for up to max_iter epochs; returns self."""
        return self._fit(X, y, incremental=False)

    def _fit(
        self: Estimator, X: Any, y: Any, *, incremental: bool, classes: Any = None
    ) -> Estimator:
        first = not (incremental and hasattr(self, "net_"))
        hidden = self._checked_parameters(incremental)
        X, y = validate_data(self, X, y, reset=first, dtype=FLOATS, **self._y_options)
        targets, fitted = self._encode(y, classes, first)
        rng = check_random_state(self.random_state) if first else self._random_state
        validation = None
        if self.early_stopping and not incremental:
            # the split train_test_split(X, y, random_state=random_state) makes
            X, X_val, targets, t_val = train_test_split(
                X,
                targets,
                test_size=self.validation_fraction,
                random_state=rng,
                stratify=targets if is_classifier(self) else None,
            )
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small: increase validation_fraction")
            validation = (X_val, t_val)
        batch_size = self._batch_size(X.shape[0])
        if first:
            output = OUTPUTS[fitted["out_activation_"]]
            net = Network(
                [X.shape[1], *hidden, fitted["n_outputs_"]],
                [self._hidden_activation()] * len(hidden) + [output],
                backend=self.backend,
                dtype=self.dtype,
                init="xavier",
                seed=int(rng.randint(SEED_BOUND)),
            )
            optimizer = self._optimizer_for(self.alpha / batch_size)
            # every check has passed: the estimator changes from here on
            vars(self).update(fitted, net_=net, _optimizer=optimizer, _random_state=rng)
            self._start(early=validation is not None)
        self.n_iter_ = 0  # epochs of this call, as scikit-learn counts them

        def end_epoch(epoch: int, metrics: dict) -> bool:
            return self._end_epoch(metrics["cost"], validation) and not incremental

        self.net_.fit(
            X,
            targets,
            epochs=1 if incremental else self.max_iter,
            batch_size=batch_size,
            optimizer=self._optimizer,
            shuffle=self.shuffle,
            seed=int(self._random_state.randint(SEED_BOUND)),
            progress=False,
            callbacks=[end_epoch],
        )
        if validation is not None:
            self.net_.params[...] = self._best_params  # in place: the layer views stay
        converged = self._no_improvement_count > self.n_iter_no_change
        if converged and self.verbose:
            watched = "Validation score" if validation is not None else "Training loss"
            print(
                f"{watched} did not improve more than tol={self.tol:f} for "
                f"{self.n_iter_no_change} consecutive epochs. Stopping."
            )
        if not (incremental or converged):
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and "
                "the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _start(self, *, early: bool) -> None:
        """The records of a new network: scikit-learn's, None where it keeps none."""
        self.loss_curve_: list[float] = []
        self.best_loss_ = None if early else np.inf
        self.validation_scores_ = [] if early else None
        self.best_validation_score_ = -np.inf if early else None
        self._no_improvement_count = 0

    def _end_epoch(self, loss: float, validation: tuple[Any, Any] | None) -> bool:
        """Record an epoch; True once it is the n_iter_no_change + 1st without progress."""
        self.n_iter_ += 1
        self.loss_ = loss
        self.loss_curve_.append(loss)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
        if validation is not None:
            score = self._validation_score(*validation)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            improved = score >= self.best_validation_score_ + self.tol
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self.net_.params.copy()
        elif self.best_loss_ is not None:
            improved = loss <= self.best_loss_ - self.tol
            self.best_loss_ = min(self.best_loss_, loss)
        else:  # partial_fit after a fit with early stopping: no training loss is watched
            improved = True
        self._no_improvement_count = 0 if improved else self._no_improvement_count + 1
        return self._no_improvement_count > self.n_iter_no_change

    # --- checks --------------------------------------------------------------------

    def _checked_parameters(self, incremental: bool) -> list[int]:
        """Check every parameter (ValueError/TypeError naming it); the hidden widths."""
        sizes = self.hidden_layer_sizes
        hidden = list(sizes) if isinstance(sizes, (tuple, list, np.ndarray)) else [sizes]
        if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in hidden):
            raise TypeError(f"hidden_layer_sizes must be an int or a tuple of ints, got {sizes!r}")
        if any(n < 1 for n in hidden):
            raise ValueError(f"hidden_layer_sizes must be positive, got {sizes!r}")
        self._hidden_activation()
        if self.solver not in SOLVERS:
            raise ValueError(
                f"solver must be one of {', '.join(map(repr, SOLVERS))}, got {self.solver!r}"
                + (" (gpunet trains by mini-batches)" if self.solver == "lbfgs" else "")
            )
        check_positive("alpha", self.alpha, allow_zero=True)
        if self.batch_size != "auto":
            check_count("batch_size", self.batch_size)
        check_positive("learning_rate_init", self.learning_rate_init)
        for count in ("max_iter", "n_iter_no_change"):
            check_count(count, getattr(self, count))
        check_positive("tol", self.tol, allow_zero=True)
        for fraction in ("momentum", "beta_1", "beta_2"):
            check_unit_interval(fraction, getattr(self, fraction), allow_zero=True)
        check_unit_interval("validation_fraction", self.validation_fraction)
        check_positive("epsilon", self.epsilon)
        for flag in ("shuffle", "verbose", "nesterovs_momentum", "early_stopping"):
            check_flag(flag, getattr(self, flag))
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        return [int(n) for n in hidden]

    def _hidden_activation(self) -> str:
        # Network checks gpunet's names; softmax is an output, never a hidden layer here
        if self.activation == "softmax":
            raise ValueError("activation='softmax' is an output layer, not a hidden one")
        return "sigmoid" if self.activation == "logistic" else self.activation

    def _batch_size(self, n: int) -> int:
        """batch_size='auto' is min(200, n); a larger one is clipped, with a warning."""
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(f"batch_size {self.batch_size} > {n} examples: clipped", stacklevel=4)
        return min(self.batch_size, n)

    def _optimizer_for(self, weight_decay: float) -> Optimizer:
        if self.solver == "sgd":
            return SGD(
                self.learning_rate_init,
                momentum=self.momentum,
                nesterov=self.nesterovs_momentum and self.momentum > 0,
                weight_decay=weight_decay,
            )
        return Adam(
            self.learning_rate_init,
            betas=(self.beta_1, self.beta_2),
            eps=self.epsilon,
            weight_decay=weight_decay,
        )

    def _checked_features(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=FLOATS)

    def _outputs(self, X: np.ndarray) -> np.ndarray:
        """A^L for checked rows X, as a NumPy array (n, n_outputs_)."""
        return self.net_.backend.to_numpy(self.net_.forward(X))


class MLPClassifier(ClassifierMixin, _MLP):
    """A multi-layer perceptron classifier trained by gpunet, as scikit-learn's MLPClassifier.

    Fitted: classes_, n_outputs_, out_activation_ ('logistic' or 'softmax'), n_iter_,
    loss_, loss_curve_, best_loss_, validation_scores_, best_validation_score_,
    n_features_in_, coefs_, intercepts_ and net_ (the gpunet Network).
    """

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y); the first call needs classes, every label y will hold."""
        if classes is None and not hasattr(self, "net_"):
            raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._fit(X, y, incremental=True, classes=classes)

    def _encode(self, y: np.ndarray, classes: Any, first: bool) -> tuple[np.ndarray, dict]:
        """Class codes 0..k-1 for gpunet, and (on a new network) classes_ and the outputs."""
        check_classification_targets(y)
        if first:
            known = np.unique(y if classes is None else classes)
        else:
            known = self.classes_
            if classes is not None and not np.array_equal(np.unique(classes), known):
                raise ValueError(
                    f"`classes={classes!r}` is not the same as on last call to partial_fit, "
                    f"was: {known!r}"
                )
        if len(known) < 2:
            raise ValueError(f"{type(self).__name__} needs 2 or more classes; got 1 class")
        unknown = np.setdiff1d(y, known)
        if unknown.size:
            raise ValueError(f"`y` has classes not in `classes_` {known!r}: {unknown!r}")
        binary = len(known) == 2
        fitted = {
            "classes_": known,
            "n_outputs_": 1 if binary else len(known),
            "out_activation_": "logistic" if binary else "softmax",
        }
        return np.searchsorted(known, y), fitted

    def _validation_score(self, X: np.ndarray, codes: np.ndarray) -> float:
        """Accuracy, as scikit-learn's early stopping scores a classifier."""
        return float(np.mean(self.net_.backend.to_numpy(self.net_.predict(X)) == codes))

    def predict(self, X: Any) -> np.ndarray:
        """The class of each row of X, from classes_."""
        X = self._checked_features(X)
        codes = self.net_.predict(X)
        return self.classes_[self.net_.backend.to_numpy(codes)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per entry of classes_ (rows sum to 1)."""
        outputs = self._outputs(self._checked_features(X))
        return np.hstack([1 - outputs, outputs]) if outputs.shape[1] == 1 else outputs


class MLPRegressor(RegressorMixin, _MLP):
    """A multi-layer perceptron regressor trained by gpunet, as scikit-learn's MLPRegressor.

    Identity outputs and the quadratic cost; y of shape (n,) or (n, n_outputs). Fitted:
    n_outputs_, out_activation_ ('identity'), n_iter_, loss_, loss_curve_, best_loss_,
    validation_scores_, best_validation_score_, n_features_in_, coefs_, intercepts_, net_.
    """

    _y_options: ClassVar[dict[str, Any]] = {"multi_output": True, "y_numeric": True}

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch over (X, y), continuing from the network trained so far."""
        return self._fit(X, y, incremental=True)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _encode(self, y: np.ndarray, classes: Any, first: bool) -> tuple[np.ndarray, dict]:
        """Targets as (n, n_outputs) floats: gpunet would read (n,) integers as class labels."""
        targets = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if not first and targets.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {targets.shape[1]} outputs, but this network has {self.n_outputs_}"
            )
        return targets, {"n_outputs_": targets.shape[1], "out_activation_": "identity"}

    def _validation_score(self, X: np.ndarray, targets: np.ndarray) -> float:
        """R², as scikit-learn's early stopping scores a regressor."""
        return float(r2_score(targets, self._outputs(X)))

    def predict(self, X: Any) -> np.ndarray:
        """The outputs for each row of X: shape (n,) for one output, else (n, n_outputs_)."""
        outputs = self._outputs(self._checked_features(X))
        return outputs.ravel() if outputs.shape[1] == 1 else outputs
