"""Reproduction of "Classification of Fashion-MNIST Dataset by Using LeNet-5".

:func:`run_study` runs the study's protocol and puts LeNet-5 next to classic
scikit-learn baselines. It returns the results and writes nothing;
:mod:`sklenet.report` turns them into ``results.json``, ``results.md`` and
figures, and the ``sklenet reproduce`` command chains the two.

Protocol
--------
1. Load the training and the official test set (Fashion-MNIST by default).
2. Hold out a stratified 20% of the training set for validation (one split,
   shared by every model).
3. Train each LeNet-5 recipe on the remaining 80%, reporting the training and
   validation loss and accuracy per epoch; train each baseline (a scikit-learn
   Pipeline, with scaling where it needs it) on the same 80%.
4. Evaluate every model on the training portion (a fixed random sample of it,
   see ``train_eval_samples``), on the validation set and on the official test
   set: accuracy, and log-loss wherever the model has ``predict_proba``.

LeNet-5 recipes
---------------
``"study"``
    The study's network: tanh and average pooling (``pooling="avg"``), Adam
    at 1e-3, batch 128, 20 epochs (the library's cosine learning-rate decay).
``"default"``
    ``LeNet5Classifier()`` as it comes: tanh and max pooling.
``"strong"``
    A stronger recipe, still the LeNet-5 network: ReLU, max pooling, random
    1-pixel shifts and horizontal flips, AdamW with weight decay 0.05, lr 2e-3
    with cosine decay, 60 epochs (:func:`strong_recipe`).

The registries below are plain data, and this module imports neither
PyTorch nor scikit-learn until a function needs them, so that the command
line can list the choices without paying for those imports.
"""

import math
import time
import warnings
from collections import namedtuple
from pathlib import Path

import numpy as np

__all__ = [
    "RECIPES",
    "BASELINES",
    "DEFAULT_BASELINES",
    "DATASETS",
    "N_CLASSES",
    "DatasetUnavailableError",
    "ProtocolError",
    "strong_recipe",
    "recipe_params",
    "make_baseline",
    "load_study_data",
    "check_split",
    "run_study",
    "write_report",
    "format_table",
]

#: Named sets of :class:`~sklenet.LeNet5Classifier` parameters.
RECIPES = {
    "study": {"activation": "tanh", "pooling": "avg"},
    "default": {},
    "strong": {
        "activation": "relu",
        "pooling": "max",
        "random_shift": 1,
        "horizontal_flip": True,
        "optimizer": "adamw",
        "weight_decay": 0.05,
        "lr_schedule": "cosine",
        "lr": 2e-3,
        "max_epochs": 60,
    },
}

_RECIPE_TITLES = {
    "study": "LeNet-5 (study: tanh, avg pooling)",
    "default": "LeNet-5 (library default)",
    "strong": "LeNet-5 (strong recipe)",
}

#: Baseline name -> (description, default cap on training samples or None).
BASELINES = {
    "logistic-regression": ("LogisticRegression (100 lbfgs iterations, min-max scaling)", None),
    "random-forest": ("RandomForestClassifier (100 trees)", None),
    "mlp": ("MLPClassifier (100 hidden units, min-max scaling)", None),
    "knn": ("KNeighborsClassifier (k=5, min-max scaling)", None),
    "svc": ("SVC (RBF kernel, C=10, standard scaling)", 10_000),
}

#: Baselines run when none are named.
DEFAULT_BASELINES = ("logistic-regression", "random-forest", "mlp", "knn", "svc")

#: Data sets :func:`load_study_data` knows.
DATASETS = ("auto", "fashion-mnist", "mnist", "digits")

#: Classes of each data set ("auto" is Fashion-MNIST or its digits fallback),
#: known before loading so that the command line can check a split up front.
N_CLASSES = {"auto": 10, "fashion-mnist": 10, "mnist": 10, "digits": 10}

#: Seeds are those numpy's legacy generators (and so scikit-learn) accept.
_MAX_SEED = 2**32 - 1


class DatasetUnavailableError(RuntimeError):
    """The requested data set could not be loaded (missing or corrupted files, no network)."""


class ProtocolError(ValueError):
    """The protocol's parameters do not fit the data (too few images for a split)."""


def strong_recipe():
    """Parameters of the stronger LeNet-5 recipe (still the LeNet-5 network).

    ReLU and max pooling, random shifts of up to 1 pixel and horizontal flips
    of the training images, AdamW (decoupled weight decay 0.05) at 2e-3 with
    cosine decay over 60 epochs. It reached 92.0% test accuracy on
    Fashion-MNIST, against 90.3% for the library default (``docs/results.md``).
    Horizontal flips suit clothes; drop ``horizontal_flip`` for digits.

    Returns
    -------
    params : dict
        Keyword arguments for :class:`~sklenet.LeNet5Classifier`.

    Examples
    --------
    >>> from sklenet import LeNet5Classifier
    >>> from sklenet.study import strong_recipe
    >>> clf = LeNet5Classifier(**strong_recipe())
    >>> clf.activation, clf.random_shift, clf.horizontal_flip
    ('relu', 1, True)
    """
    return recipe_params("strong")


def recipe_params(name):
    """A copy of the :class:`~sklenet.LeNet5Classifier` parameters of a recipe.

    Parameters
    ----------
    name : {"study", "default", "strong"}
        The recipe.

    Returns
    -------
    params : dict

    Examples
    --------
    >>> from sklenet.study import recipe_params
    >>> recipe_params("study")
    {'activation': 'tanh', 'pooling': 'avg'}
    """
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}; got {name!r}.")
    return dict(RECIPES[name])


def make_baseline(name, random_state=0):
    """A fresh scikit-learn baseline (a Pipeline with scaling where it needs it).

    Parameters
    ----------
    name : {"logistic-regression", "random-forest", "mlp", "knn", "svc"}
        The baseline.
    random_state : int, default=0
        Seed of the estimators that use randomness.

    Returns
    -------
    estimator : sklearn estimator

    Examples
    --------
    >>> from sklenet.study import make_baseline
    >>> make_baseline("svc").steps[-1][0]
    'svc'
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler
    from sklearn.svm import SVC

    if name == "logistic-regression":
        return make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=100))
    if name == "random-forest":
        return RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=random_state)
    if name == "mlp":
        return make_pipeline(
            MinMaxScaler(),
            MLPClassifier(hidden_layer_sizes=(100,), early_stopping=True,
                          random_state=random_state),
        )
    if name == "knn":
        return make_pipeline(MinMaxScaler(), KNeighborsClassifier(n_neighbors=5, n_jobs=-1))
    if name == "svc":
        return make_pipeline(StandardScaler(), SVC(C=10, random_state=random_state))
    raise ValueError(f"baseline must be one of {', '.join(BASELINES)}; got {name!r}.")


# --------------------------------------------------------------------------- data
def load_study_data(dataset="auto", *, data_home=None, download=True, log=print):
    """Load the training and test images of the study.

    Parameters
    ----------
    dataset : {"auto", "fashion-mnist", "mnist", "digits"}, default="auto"
        ``"auto"`` loads Fashion-MNIST when its files can be found (locally,
        or by a download when ``download=True``) and otherwise falls back to
        scikit-learn's bundled digits, saying so in one line through ``log``.
        A file that is there but corrupted is an error, never a reason to
        fall back. ``"digits"`` (8x8 images, no official test set) is split
        75/25, stratified, with a fixed seed.
    data_home : str or path, default=None
        Directory holding the original IDX files (see
        :mod:`sklenet.datasets`).
    download : bool, default=True
        Whether missing files may be downloaded.
    log : callable, default=print
        Receives progress and fallback messages.

    Returns
    -------
    data : dict
        ``name``, ``X_train``, ``y_train``, ``X_test``, ``y_test``,
        ``target_names``, ``image_shape`` (height, width), ``source``.

    Raises
    ------
    DatasetUnavailableError
        When an explicitly requested data set cannot be loaded, or when a
        data file is corrupted.

    Examples
    --------
    >>> from sklenet.study import load_study_data
    >>> data = load_study_data("digits")
    >>> data["X_train"].shape, data["image_shape"]
    ((1347, 64), (8, 8))
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {dataset!r}.")
    if dataset == "digits":
        return _digits()
    from . import datasets

    name = "mnist" if dataset == "mnist" else "fashion-mnist"
    title = "MNIST" if name == "mnist" else "Fashion-MNIST"
    loader = datasets.fetch_mnist if name == "mnist" else datasets.fetch_fashion_mnist
    try:
        with warnings.catch_warnings():
            # A data_home that does not exist is reported by the error below.
            warnings.filterwarnings("ignore", message=".*does not exist; looking in")
            train, test = (loader(subset=subset, data_home=data_home,
                                  download_if_missing=download, verbose=bool(download))
                           for subset in ("train", "test"))
    except FileNotFoundError as exc:  # missing files, or every download failed
        if dataset != "auto":
            raise DatasetUnavailableError(f"{title} is not available: {exc}") from exc
        log(f"{title} is not available ({_first_sentence(exc)}); using scikit-learn's "
            f"bundled digits (8x8 images) instead. Pass --data-home DIR with the {title} "
            f"files to run the study on its data set.")
        return _digits()
    except (OSError, ValueError) as exc:  # a file is there but corrupted or malformed
        raise DatasetUnavailableError(f"{title} is not available: {exc}") from exc
    return {
        "name": name,
        "X_train": train.data,
        "y_train": train.target,
        "X_test": test.data,
        "y_test": test.target,
        "target_names": list(train.target_names),
        "image_shape": (28, 28),
        "source": str(Path(train.filenames[0]).parent),
    }


def _first_sentence(exc):
    text = " ".join(str(exc).split())
    return text.split(". ")[0].rstrip(".")


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.data.astype(np.float32), digits.target, test_size=0.25,
        stratify=digits.target, random_state=0,
    )
    return {
        "name": "digits",
        "X_train": X_train,
        "y_train": y_train,
        "X_test": X_test,
        "y_test": y_test,
        "target_names": [str(t) for t in digits.target_names],
        "image_shape": (8, 8),
        "source": "sklearn.datasets.load_digits (bundled)",
    }


def check_split(n_samples, n_classes, validation_fraction):
    """Check that a stratified validation split of ``n_samples`` images is possible.

    Both parts need at least one image per class, as scikit-learn's
    stratified splitters do (they round the validation part up).

    Parameters
    ----------
    n_samples : int
        Images to split.
    n_classes : int
        Classes among them.
    validation_fraction : float
        Fraction held out for validation, in (0, 1).

    Returns
    -------
    n_train, n_valid : int
        The sizes of the two parts.

    Raises
    ------
    ProtocolError
        When a part would hold fewer images than there are classes; the
        message gives the smallest ``n_samples`` that works.

    Examples
    --------
    >>> from sklenet.study import check_split
    >>> check_split(100, 10, 0.2)
    (80, 20)
    >>> check_split(20, 10, 0.2)
    Traceback (most recent call last):
    ...
    sklenet.study.ProtocolError: ... use at least 46 images or a larger validation fraction.
    """
    n_valid = math.ceil(validation_fraction * n_samples)
    n_train = n_samples - n_valid
    if min(n_train, n_valid) >= n_classes:
        return n_train, n_valid
    # The smallest size that works, from the bounds on both parts, then
    # checked step by step against the exact rounding above.
    n = max(2 * n_classes, math.floor((n_classes - 1) / validation_fraction) + 1,
            math.ceil(n_classes / (1 - validation_fraction)) - 1)
    while min(n - math.ceil(validation_fraction * n), math.ceil(validation_fraction * n)) \
            < n_classes:
        n += 1
    other = "a larger" if n_valid < n_classes else "a smaller"
    raise ProtocolError(
        f"a stratified validation split of {validation_fraction:.0%} of {n_samples} images "
        f"leaves {n_valid} for validation and {n_train} for training, but each part needs "
        f"at least one image per class ({n_classes} classes): use at least {n} images or "
        f"{other} validation fraction."
    )


def _subsample(X, y, n, seed):
    """A stratified sample of ``n`` rows (all of them when ``n`` is None or large)."""
    if n is None or n >= len(y):
        return X, y
    classes, counts = np.unique(y, return_counts=True)
    # Stratifying needs every class in both the sample and the rest.
    if len(classes) <= n <= len(y) - len(classes) and np.min(counts) >= 2:
        from sklearn.model_selection import train_test_split

        X, _, y, _ = train_test_split(X, y, train_size=n, stratify=y, random_state=seed)
        return X, y
    rows = np.sort(np.random.default_rng(seed).choice(len(y), n, replace=False))
    return X[rows], y[rows]


_Split = namedtuple("_Split", "X_train y_train X_valid y_valid X_eval y_eval X_test y_test "
                              "classes")


def _split(data, validation_fraction, max_train_samples, max_test_samples,
           train_eval_samples, seed):
    """The protocol's one split of ``data``, shared by every contender."""
    from sklearn.model_selection import train_test_split

    X_full, y_full = _subsample(data["X_train"], data["y_train"], max_train_samples, seed)
    X_test, y_test = _subsample(data["X_test"], data["y_test"], max_test_samples, seed)
    classes = np.unique(y_full)
    try:
        check_split(len(y_full), len(classes), validation_fraction)
    except ProtocolError as exc:
        raise ProtocolError(f"max_train_samples={max_train_samples} and validation_fraction="
                            f"{validation_fraction} on {data['name']}: {exc}") from None
    X_train, X_valid, y_train, y_valid = train_test_split(
        X_full, y_full, test_size=validation_fraction, stratify=y_full, random_state=seed)
    # A different seed than the split's, so the sample is not the split's shadow.
    X_eval, y_eval = _subsample(X_train, y_train, train_eval_samples, (seed + 1) % (_MAX_SEED + 1))
    return _Split(X_train, y_train, X_valid, y_valid, X_eval, y_eval, X_test, y_test, classes)


# ---------------------------------------------------------------------- contenders
#: One model of the study: what to call it, the unfitted estimator, and the
#: cap on the training images it is fitted on (None: all of them).
_Contender = namedtuple("_Contender", "key name kind estimator max_train_samples announce")


def _contenders(recipes, baselines, lenet_params, caps, random_state, verbose):
    from .classifier import LeNet5Classifier

    for recipe in recipes:
        params = {**recipe_params(recipe), **lenet_params,
                  "random_state": random_state, "verbose": max(0, min(int(verbose), 2))}
        yield _Contender(f"lenet5-{recipe}", _RECIPE_TITLES[recipe], "lenet5",
                         LeNet5Classifier(**params), None,
                         f"[LeNet-5 / {recipe}] {_describe_params(params)}")
    for name in baselines:
        description = BASELINES[name][0]
        yield _Contender(name, description, "baseline", make_baseline(name, random_state),
                         caps.get(name), f"[{name}] fitting {description}")


def _fit(contender, split, seed, say):
    """Fit a contender on (a sample of) the training part; returns (seconds, n_images)."""
    from sklearn.exceptions import ConvergenceWarning

    X, y = _subsample(split.X_train, split.y_train, contender.max_train_samples, seed)
    fit_params = {}
    if contender.kind == "lenet5":
        fit_params["validation_data"] = (split.X_valid, split.y_valid)
    else:
        # float32 halves the copy scikit-learn would otherwise make in float64.
        X = np.asarray(X, dtype=np.float32)
    sample_note = "" if len(y) == len(split.y_train) else f" on {len(y)} images"
    say(f"{contender.announce}{sample_note}")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        contender.estimator.fit(X, y, **fit_params)
    return time.perf_counter() - start, len(y)


def _evaluate(model, X, y, classes):
    """(accuracy, log-loss or None, seconds to predict, predictions)."""
    from sklearn.metrics import accuracy_score, log_loss

    start = time.perf_counter()
    proba = None
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        pred = model.classes_[np.argmax(proba, axis=1)]
    else:
        pred = model.predict(X)
    seconds = time.perf_counter() - start
    loss = None if proba is None else float(log_loss(y, proba, labels=classes))
    return float(accuracy_score(y, pred)), loss, seconds, pred


def _row(contender, split, fit_time, n_train):
    """The result row of a fitted contender: every field of it is made here."""
    from sklearn.metrics import confusion_matrix

    model = contender.estimator
    train_acc, train_loss, _, _ = _evaluate(model, split.X_eval, split.y_eval, split.classes)
    valid_acc, valid_loss, _, _ = _evaluate(model, split.X_valid, split.y_valid, split.classes)
    test_acc, test_loss, predict_time, pred = _evaluate(model, split.X_test, split.y_test,
                                                        split.classes)
    row = {
        "key": contender.key,
        "name": contender.name,
        "kind": contender.kind,
        "params": _jsonable(_shown_params(model)),
        "train_accuracy": train_acc,
        "train_loss": train_loss,
        "valid_accuracy": valid_acc,
        "valid_loss": valid_loss,
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "fit_time": fit_time,
        "predict_time": predict_time,
        "n_params": _n_params(model),
        "n_train": int(n_train),
        "notes": _model_notes(model),
        "confusion_matrix": confusion_matrix(split.y_test, pred,
                                             labels=split.classes).tolist(),
    }
    if hasattr(model, "history_"):  # LeNet-5: the curves per epoch
        row["history"] = _jsonable(model.history_)
        row["epochs"] = int(model.n_iter_)
    return row


def _final(model):
    return model.steps[-1][1] if hasattr(model, "steps") else model


def _n_params(model):
    final = _final(model)
    if hasattr(final, "net_"):  # LeNet-5
        return int(sum(p.numel() for p in final.net_.module_.parameters()))
    if hasattr(final, "coefs_"):  # MLP
        return int(sum(c.size for c in final.coefs_) + sum(b.size for b in final.intercepts_))
    if hasattr(final, "coef_") and hasattr(final, "intercept_"):  # linear
        return int(final.coef_.size + np.size(final.intercept_))
    return None


def _model_notes(model):
    final = _final(model)
    if hasattr(final, "support_vectors_"):
        return f"{len(final.support_vectors_)} support vectors"
    if hasattr(final, "estimators_") and hasattr(final.estimators_[0], "tree_"):
        nodes = sum(t.tree_.node_count for t in final.estimators_)
        return f"{len(final.estimators_)} trees, {nodes} nodes"
    if hasattr(final, "n_samples_fit_"):
        return f"stores {final.n_samples_fit_} training images"
    if hasattr(final, "n_iter_") and not hasattr(final, "net_"):
        return f"{int(np.max(final.n_iter_))} iterations"
    return None


def _shown_params(model):
    """Preprocessing steps, then the final estimator's parameters that differ from
    its class defaults (``verbose`` says nothing about the model, so it is left out)."""
    final = _final(model)
    params = {}
    if hasattr(model, "steps"):
        params["preprocessing"] = [type(step).__name__ for _, step in model.steps[:-1]]
    defaults = type(final)().get_params(deep=False)
    params.update(
        (k, v) for k, v in final.get_params(deep=False).items()
        if k != "verbose" and (k not in defaults or repr(v) != repr(defaults[k]))
    )
    return params


def _describe_params(params):
    skip = {"verbose", "random_state"}
    return ", ".join(f"{k}={v}" for k, v in params.items() if k not in skip) or "defaults"


def _seconds(seconds):
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _jsonable(value):
    """``value`` with numpy scalars, tuples, classes and non-finite floats made JSON data."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def _check_choices(values, known, what):
    values = list(values)
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValueError(f"{what} must be taken from {', '.join(known)}; got {unknown[0]!r}.")
    return values


# -------------------------------------------------------------------------- study
def run_study(
    dataset="auto",
    *,
    data_home=None,
    download=True,
    recipes=("study", "default"),
    lenet_params=None,
    baselines=DEFAULT_BASELINES,
    validation_fraction=0.2,
    max_train_samples=None,
    max_test_samples=None,
    baseline_max_train_samples=None,
    train_eval_samples=10_000,
    random_state=0,
    verbose=1,
    log=print,
):
    """Run the study's protocol: LeNet-5 recipes and sklearn baselines on one split.

    Nothing is written to disk; pass the results to
    :func:`sklenet.report.write_report` for ``results.json``, ``results.md``
    and the figures.

    Parameters
    ----------
    dataset : {"auto", "fashion-mnist", "mnist", "digits"} or dict, default="auto"
        The data set's name (see :func:`load_study_data`), or data that
        :func:`load_study_data` returned.
    data_home : str or path, default=None
        Directory holding the original IDX files.
    download : bool, default=True
        Whether missing data files may be downloaded.
    recipes : sequence of {"study", "default", "strong"}, default=("study", "default")
        LeNet-5 recipes to train, one result row each (see :data:`RECIPES`).
    lenet_params : dict, default=None
        :class:`~sklenet.LeNet5Classifier` parameters that override those of
        every recipe (e.g. ``{"max_epochs": 3}``).
    baselines : sequence of str, default=DEFAULT_BASELINES
        scikit-learn baselines (see :data:`BASELINES`), one row each.
    validation_fraction : float, default=0.2
        Stratified fraction of the training set held out for validation.
    max_train_samples, max_test_samples : int, default=None
        Use a stratified sample of this many training (before the validation
        split) or test images; all of them when None.
    baseline_max_train_samples : dict, default=None
        Baseline name -> cap on its training images, overriding the default
        caps of :data:`BASELINES` (SVC: 10,000).
    train_eval_samples : int, default=10_000
        Training accuracy and loss are measured on a fixed sample of this
        many training images.
    random_state : int, default=0
        Seed of the split and of every model, in [0, 2**32 - 1].
    verbose : int, default=1
        0: silent; 1: one line per model and LeNet-5's epochs; 2: also a
        progress bar over the batches.
    log : callable, default=print
        Receives the progress lines.

    Returns
    -------
    results : dict
        JSON-serializable: ``dataset`` (name, sizes, classes), ``protocol``,
        ``models`` (one dict per row: ``key``, ``name``, ``kind``, ``params``,
        ``train_accuracy``, ``train_loss``, ``valid_accuracy``, ``valid_loss``,
        ``test_accuracy``, ``test_loss``, ``fit_time``, ``predict_time``,
        ``n_params``, ``n_train``, ``notes``, ``confusion_matrix``, and for
        LeNet-5 ``history`` and ``epochs``), ``environment`` and
        ``total_time``.

    Raises
    ------
    DatasetUnavailableError
        When the data set cannot be loaded.
    ProtocolError
        When the (sampled) training set is too small for the split.

    Examples
    --------
    >>> from sklenet.study import run_study
    >>> results = run_study("digits", recipes=[], baselines=["knn"], verbose=0)
    >>> [row["key"] for row in results["models"]], results["dataset"]["n_valid"]
    (['knn'], 270)
    """
    started = time.perf_counter()
    say = (log or _silent) if verbose else _silent
    recipes = _check_choices(recipes, RECIPES, "recipes")
    baselines = _check_choices(baselines, BASELINES, "baselines")
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1); got {validation_fraction!r}.")
    if not (isinstance(random_state, (int, np.integer)) and 0 <= random_state <= _MAX_SEED):
        raise ValueError(f"random_state must be an integer in [0, 2**32 - 1]; "
                         f"got {random_state!r}.")
    caps = {name: cap for name, (_, cap) in BASELINES.items()}
    caps.update(baseline_max_train_samples or {})

    data = dataset if isinstance(dataset, dict) else load_study_data(
        dataset, data_home=data_home, download=download, log=log or _silent)
    split = _split(data, validation_fraction, max_train_samples, max_test_samples,
                   train_eval_samples, random_state)
    say(f"Data set: {data['name']} ({data['source']}): {len(split.y_train)} training, "
        f"{len(split.y_valid)} validation (stratified {validation_fraction:.0%}), "
        f"{len(split.y_test)} test images, {len(split.classes)} classes")

    rows = []
    for contender in _contenders(recipes, baselines, dict(lenet_params or {}), caps,
                                 random_state, verbose):
        fit_time, n_train = _fit(contender, split, random_state, say)
        rows.append(_row(contender, split, fit_time, n_train))
        loss = "" if rows[-1]["test_loss"] is None else f", test loss {rows[-1]['test_loss']:.3f}"
        say(f"  {contender.name}: test accuracy {rows[-1]['test_accuracy']:.4f}{loss} "
            f"(validation {rows[-1]['valid_accuracy']:.4f}, fit {_seconds(fit_time)}, "
            f"predict {_seconds(rows[-1]['predict_time'])})")

    target_names = data["target_names"]
    return {
        "dataset": {
            "name": data["name"],
            "source": data["source"],
            "n_train": int(len(split.y_train)),
            "n_valid": int(len(split.y_valid)),
            "n_test": int(len(split.y_test)),
            "n_train_eval": int(len(split.y_eval)),
            "image_shape": list(data["image_shape"]),
            "classes": [str(target_names[int(c)]) for c in split.classes],
        },
        "protocol": _jsonable({
            "validation_fraction": validation_fraction,
            "max_train_samples": max_train_samples,
            "max_test_samples": max_test_samples,
            "train_eval_samples": train_eval_samples,
            "random_state": random_state,
            "recipes": recipes,
            "lenet_params": dict(lenet_params or {}),
            "baselines": baselines,
        }),
        "models": rows,
        "environment": _environment(),
        "total_time": time.perf_counter() - started,
    }


def _silent(*args, **kwargs):
    pass


def _environment():
    import platform

    import sklearn
    import skorch
    import torch

    from ._version import __version__

    return {
        "sklenet": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
    }


def __getattr__(name):
    # The report functions lived here before sklenet.report; old imports keep working.
    if name in ("write_report", "format_table"):
        from . import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
