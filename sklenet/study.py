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

The registries (:data:`RECIPES`, :data:`BASELINES`, :data:`DATASETS`) are
plain data, and this module imports neither PyTorch nor scikit-learn until a
function needs them, so that the command line can list the choices without
paying for those imports. They live with the baseline factory in
``sklenet._recipes``, the data loading in ``sklenet._study_data`` and the
description of a fitted model in ``sklenet._model_facts``; this module holds
the protocol and re-exports the public names.
"""

import math
import time
import warnings
from collections import namedtuple

import numpy as np

from ._model_facts import jsonable, model_notes, n_params, shown_params
from ._recipes import (
    BASELINES,
    DEFAULT_BASELINES,
    RECIPE_TITLES,
    RECIPES,
    make_baseline,
    recipe_params,
    strong_recipe,
)
from ._study_data import DATASETS, N_CLASSES, DatasetUnavailableError, load_study_data

# format_table and write_report lived here before sklenet.report; old imports keep working.
from .report import _seconds, format_table, write_report

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

#: Seeds are those numpy's legacy generators (and so scikit-learn) accept.
_MAX_SEED = 2**32 - 1


class ProtocolError(ValueError):
    """The protocol's parameters do not fit the data (too few images for a split)."""


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
        yield _Contender(f"lenet5-{recipe}", RECIPE_TITLES[recipe], "lenet5",
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
        "params": jsonable(shown_params(model)),
        "train_accuracy": train_acc,
        "train_loss": train_loss,
        "valid_accuracy": valid_acc,
        "valid_loss": valid_loss,
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "fit_time": fit_time,
        "predict_time": predict_time,
        "n_params": n_params(model),
        "n_train": int(n_train),
        "notes": model_notes(model),
        "confusion_matrix": confusion_matrix(split.y_test, pred,
                                             labels=split.classes).tolist(),
    }
    if hasattr(model, "history_"):  # LeNet-5: the curves per epoch
        row["history"] = jsonable(model.history_)
        row["epochs"] = int(model.n_iter_)
    return row


def _describe_params(params):
    skip = {"verbose", "random_state"}
    return ", ".join(f"{k}={v}" for k, v in params.items() if k not in skip) or "defaults"


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
    _check_protocol(validation_fraction, random_state)
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
        say(_result_line(rows[-1]))

    return {
        "dataset": _dataset_facts(data, split),
        "protocol": jsonable({
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


def _check_protocol(validation_fraction, random_state):
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1); got {validation_fraction!r}.")
    if not (isinstance(random_state, (int, np.integer)) and 0 <= random_state <= _MAX_SEED):
        raise ValueError(f"random_state must be an integer in [0, 2**32 - 1]; "
                         f"got {random_state!r}.")


def _result_line(row):
    """The progress line of a finished row."""
    loss = "" if row["test_loss"] is None else f", test loss {row['test_loss']:.3f}"
    return (f"  {row['name']}: test accuracy {row['test_accuracy']:.4f}{loss} "
            f"(validation {row['valid_accuracy']:.4f}, fit {_seconds(row['fit_time'])}, "
            f"predict {_seconds(row['predict_time'])})")


def _dataset_facts(data, split):
    """The ``dataset`` entry of the results: the data set's name and the split's sizes."""
    target_names = data["target_names"]
    return {
        "name": data["name"],
        "source": data["source"],
        "n_train": int(len(split.y_train)),
        "n_valid": int(len(split.y_valid)),
        "n_test": int(len(split.y_test)),
        "n_train_eval": int(len(split.y_eval)),
        "image_shape": list(data["image_shape"]),
        "classes": [str(target_names[int(c)]) for c in split.classes],
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

