"""gpunet.sklearn: estimators that pass scikit-learn's own checks and drop into its tools."""

import importlib
import pickle
import subprocess
import sys

import numpy as np
import pytest

sklearn = pytest.importorskip(
    "sklearn", reason="scikit-learn is the sklearn extra: pip install '.[sklearn]'"
)

import sklearn.neural_network as reference  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import gpunet  # noqa: E402
from gpunet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# the checks' short fits reach max_iter on purpose; the warning itself is tested below
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@parametrize_with_checks([MLPClassifier(backend="numpy"), MLPRegressor(backend="numpy")])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = gpunet.datasets.digits()
    return X[:600], y[:600]


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    labels = rng.integers(0, 3, n)
    return centres[labels] + rng.normal(0, 0.5, (n, 2)), labels


@pytest.mark.parametrize("ours", [MLPClassifier, MLPRegressor])
def test_parameters_are_scikit_learns_with_its_defaults(ours):
    theirs = getattr(reference, ours.__name__)()
    shared = set(ours().get_params()) - {"backend", "dtype"}
    assert shared <= set(theirs.get_params())
    defaults = ours().get_params()
    assert {name: defaults[name] for name in shared} == {
        name: theirs.get_params()[name] for name in shared
    }


@pytest.mark.parametrize(
    "labels", [np.array(["cat", "dog", "emu"]), np.array([-7, 3, 40]), np.array(["no", "yes"])]
)
def test_classes_are_any_labels(labels):
    X, codes = blobs()
    codes = codes % len(labels)
    y = labels[codes]
    clf = MLPClassifier((16,), backend="numpy", random_state=0, learning_rate_init=0.05)
    clf.fit(X, y)
    assert list(clf.classes_) == sorted(labels)
    assert set(clf.predict(X)) <= set(labels) and clf.predict(X).dtype == labels.dtype
    assert clf.score(X, y) > 0.95
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(labels))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (clf.classes_[proba.argmax(axis=1)] == clf.predict(X)).all()
    binary = len(labels) == 2
    assert clf.out_activation_ == ("logistic" if binary else "softmax")
    assert clf.n_outputs_ == (1 if binary else len(labels))
    assert clf.net_.activation_names[-1] == ("sigmoid" if binary else "softmax")


def test_architecture_from_the_parameters():
    X, y = blobs()
    clf = MLPClassifier(
        (5, 4), activation="logistic", backend="numpy", dtype="float32", max_iter=2
    ).fit(X, y)
    assert clf.net_.sizes == [2, 5, 4, 3] and clf.net_.dtype == np.float32
    assert clf.net_.activation_names == ["sigmoid", "sigmoid", "softmax"]
    assert clf.net_.backend.name == "numpy" and clf.n_features_in_ == 2
    assert clf.predict_proba(X).dtype == np.float32
    assert [w.shape for w in clf.coefs_] == [(2, 5), (5, 4), (4, 3)]
    assert [b.shape for b in clf.intercepts_] == [(5,), (4,), (3,)]
    # an int is one hidden layer; () none (multinomial logistic regression)
    assert MLPClassifier(7, backend="numpy", max_iter=1).fit(X, y).net_.sizes == [2, 7, 3]
    assert MLPClassifier((), backend="numpy", max_iter=1).fit(X, y).net_.sizes == [2, 3]


def test_regressor_outputs_follow_y():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    Y = np.column_stack([X @ [1.0, -2.0, 0.5], X[:, 0] * X[:, 1]])
    reg = MLPRegressor((32,), backend="numpy", random_state=0, learning_rate_init=0.01)
    reg.fit(X, Y)
    assert reg.predict(X).shape == (200, 2) and reg.out_activation_ == "identity"
    assert reg.net_.activation_names[-1] == "identity"
    assert reg.score(X, Y) > 0.9
    assert reg.fit(X, Y[:, 0]).predict(X).shape == (200,)


def test_alpha_is_scikit_learns_l2_penalty():
    # one full-batch SGD step from the same weights, ours and scikit-learn's own
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    options = dict(
        hidden_layer_sizes=(5,),
        activation="tanh",
        solver="sgd",
        momentum=0.0,
        alpha=0.3,
        learning_rate_init=0.1,
        batch_size=40,
        shuffle=False,
        random_state=0,
    )
    ours = MLPRegressor(**options, backend="numpy").partial_fit(X, y)
    theirs = reference.MLPRegressor(**options).partial_fit(X, y)
    theirs.coefs_, theirs.intercepts_ = ours.coefs_, ours.intercepts_
    weights = ours.coefs_
    ours.partial_fit(X, y)
    theirs.partial_fit(X, y)
    for mine, sklearns in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(mine, sklearns, rtol=1e-10, atol=1e-12)
    # scikit-learn's loss holds the penalty 0.5·alpha·‖W‖²/n_batch; loss_curve_ does not
    penalty = 0.5 * 0.3 * sum((w**2).sum() for w in weights) / 40
    assert ours.loss_curve_[-1] + penalty == pytest.approx(theirs.loss_curve_[-1], rel=1e-12)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_convergence_counts_epochs_as_scikit_learn(early_stopping):
    # a tol no epoch can meet: both stop at the same epoch, whatever the losses
    X, y = blobs()
    options = dict(hidden_layer_sizes=(8,), tol=1e9, n_iter_no_change=3, random_state=0)
    options["early_stopping"] = early_stopping
    ours = MLPClassifier(**options, backend="numpy").fit(X, y)
    theirs = reference.MLPClassifier(**options).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 5 == len(ours.loss_curve_)


def test_max_iter_warns_convergence_warning():
    X, y = blobs()
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\)"):
        clf = MLPClassifier((8,), backend="numpy", max_iter=3, tol=0.0).fit(X, y)
    assert clf.n_iter_ == 3 and len(clf.loss_curve_) == 3
    assert clf.best_loss_ == min(clf.loss_curve_) and clf.loss_ == clf.loss_curve_[-1]
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None


def test_early_stopping_keeps_the_best_validation_epoch(digits):
    X, y = digits
    clf = MLPClassifier(
        (16,),
        backend="numpy",
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=2,
        learning_rate_init=0.02,
        random_state=0,
    ).fit(X, y)
    assert clf.best_loss_ is None and len(clf.validation_scores_) == clf.n_iter_ < 200
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # the validation set is train_test_split's with the same random_state, stratified
    _, X_val, _, y_val = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    assert clf.score(X_val, y_val) == clf.best_validation_score_
    # the regressor scores R²
    t = X[:, :3] @ [1.0, 2.0, 3.0]
    reg = MLPRegressor((8,), backend="numpy", early_stopping=True, max_iter=5, random_state=0)
    reg.fit(X, t)
    _, X_val, _, t_val = train_test_split(X, t, test_size=0.1, random_state=0)
    assert reg.score(X_val, t_val) == pytest.approx(reg.best_validation_score_, rel=1e-12)


def test_partial_fit_continues_one_epoch_at_a_time(digits):
    X, y = digits
    clf = MLPClassifier((16,), backend="numpy", random_state=0, learning_rate_init=0.01)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    assert not hasattr(clf, "net_")
    for _ in range(15):
        clf.partial_fit(X[:300], y[:300], classes=np.arange(10))
        clf.partial_fit(X[300:], y[300:])
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 30  # n_iter_: this call's, as sklearn
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] and clf.score(X, y) > 0.9
    before = clf.net_.get_params()
    with pytest.raises(ValueError, match="not in `classes_`"):
        clf.partial_fit(X[:5], np.array([0, 1, 2, 3, 11]))
    with pytest.raises(ValueError, match="not the same as on last call"):
        clf.partial_fit(X, y, classes=np.arange(11))
    with pytest.raises(ValueError, match="early_stopping"):
        clf.set_params(early_stopping=True).partial_fit(X, y)
    assert all((a == b).all() for a, b in zip(before[0], clf.net_.get_params()[0]))
    assert len(clf.loss_curve_) == 30
    # the regressor needs no classes; partial_fit after fit trains the fitted network on
    reg = MLPRegressor((8,), backend="numpy", max_iter=3, random_state=0).fit(X, y * 0.1)
    net = reg.net_
    reg.partial_fit(X, y * 0.1)
    assert reg.net_ is net and len(reg.loss_curve_) == 4
    with pytest.raises(ValueError, match="2 outputs, but this network has 1"):
        reg.partial_fit(X, np.column_stack([y, y]))
    assert len(reg.loss_curve_) == 4


def test_clone_set_params_and_pickles_that_train(digits):
    X, y = digits
    clf = MLPClassifier((8,), backend="numpy", max_iter=5, random_state=3)
    assert clone(clf).get_params() == clf.get_params()
    assert clf.set_params(alpha=0.5).alpha == 0.5 and clf.get_params()["alpha"] == 0.5
    clf.fit(X, y)
    copy = pickle.loads(pickle.dumps(clf))
    assert (copy.predict_proba(X) == clf.predict_proba(X)).all()
    with pytest.raises(NotFittedError):
        clone(clf).predict(X)
    before = clf.predict_proba(X)
    copy.partial_fit(X, y)
    assert not np.allclose(copy.predict_proba(X), before)
    assert (clf.predict_proba(X) == before).all()


def test_a_seed_repeats_a_fit(digits):
    X, y = digits
    fits = [
        MLPClassifier((8,), backend="numpy", max_iter=3, random_state=5).fit(X, y) for _ in range(2)
    ]
    assert fits[0].loss_curve_ == fits[1].loss_curve_
    assert (fits[0].predict_proba(X) == fits[1].predict_proba(X)).all()


@pytest.mark.parametrize(
    ("parameters", "error", "match"),
    [
        ({"solver": "lbfgs"}, ValueError, "mini-batches"),
        ({"activation": "softmax"}, ValueError, "output layer"),
        ({"activation": "swish"}, ValueError, "unknown activation"),
        ({"hidden_layer_sizes": (4, 0)}, ValueError, "positive"),
        ({"hidden_layer_sizes": "4"}, TypeError, "tuple of ints"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"learning_rate_init": -1.0}, ValueError, "learning_rate_init"),
        ({"momentum": 1.5}, ValueError, "momentum"),
        ({"validation_fraction": 1.0}, ValueError, "validation_fraction"),
        ({"shuffle": 1}, TypeError, "shuffle"),
        ({"dtype": "float16"}, ValueError, "dtype"),
        ({"backend": "tpu"}, ValueError, "backend"),
    ],
)
def test_bad_parameters_fail_fit_before_it_starts(parameters, error, match):
    X, y = blobs()
    clf = MLPClassifier(**{"backend": "numpy", **parameters})  # no check at construction
    with pytest.raises(error, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "net_")


def test_one_class_and_a_big_batch():
    X, y = blobs()
    with pytest.raises(ValueError, match="1 class"):
        MLPClassifier(backend="numpy").fit(X, np.zeros(len(X), int))
    with pytest.warns(UserWarning, match="clipped"):
        MLPClassifier((4,), backend="numpy", batch_size=1000, max_iter=1).fit(X, y)


def test_verbose_prints_scikit_learns_lines(capsys):
    X, y = blobs()
    MLPClassifier((4,), backend="numpy", max_iter=2, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["Iteration 1", "Iteration 2"]
    assert lines[0].startswith("Iteration 1, loss = ")


def test_grid_search_over_a_pipeline_in_two_processes():
    X, y = gpunet.datasets.digits()
    pipeline = make_pipeline(
        StandardScaler(),
        MLPClassifier(backend="numpy", max_iter=8, learning_rate_init=0.01, random_state=0),
    )
    search = GridSearchCV(
        pipeline, {"mlpclassifier__hidden_layer_sizes": [(8,), (32,)]}, cv=2, n_jobs=2
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    assert search.best_score_ > 0.85
    assert search.best_estimator_.score(X, y) > 0.9


def test_without_scikit_learn_the_error_names_the_extra(monkeypatch):
    for name in [n for n in sys.modules if n.split(".")[0] == "sklearn"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    for name in ("gpunet.sklearn", "gpunet.tools.sklearn"):
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError, match=r"pip install 'gpunet\[sklearn\]'"):
        importlib.import_module("gpunet.sklearn")


def test_the_face_only_re_exports():
    import gpunet.sklearn as face
    import gpunet.tools.sklearn as tools

    assert face.MLPClassifier is tools.MLPClassifier and face.MLPRegressor is tools.MLPRegressor
    # `import gpunet` alone never imports scikit-learn: it is an optional extra
    code = "import sys, gpunet; print('sklearn' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
