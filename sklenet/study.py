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
   set: accuracy, and log-loss wherever the model has ``predict_proba``; on
   the test set also the expected calibration error (ECE, 15 bins) of those
   probabilities and the points of their reliability diagram.

Seeds
-----
One seed (``random_state``) makes one split and seeds every model. With
``seeds=[0, 1, 2]`` the whole protocol runs once per seed, split included,
and each row gives the mean over the seeds with the lowest and highest value
(see :func:`run_study`); the runs of the separate seeds are kept in the
results.

LeNet-5 recipes
---------------
``"study"``
    The study's network and training, every setting spelled out so that the
    row stays put when the library's defaults change: tanh and average
    pooling, Adam at 1e-3 with cosine decay, batch 128, 20 epochs, no label
    smoothing, float32 arithmetic.
``"default"``
    ``LeNet5Classifier()`` as it comes: tanh and max pooling, a few epochs
    of one-cycle Adam, batches sized to the data (``batch_size="auto"``),
    label smoothing (see :class:`~sklenet.LeNet5Classifier` for the values).
``"strong"``
    A stronger recipe, still the LeNet-5 network: ReLU, max pooling, random
    1-pixel shifts, horizontal flips and random erasing, label smoothing,
    AdamW with weight decay 0.05 and a one-cycle schedule over 80 epochs,
    test-time flips (:func:`strong_recipe`).

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
from .report import format_seconds

__all__ = [
    "RECIPES",
    "BASELINES",
    "DEFAULT_BASELINES",
    "DATASETS",
    "N_CLASSES",
    "DatasetUnavailableError",
    "ProtocolError",
    "TrainingError",
    "strong_recipe",
    "recipe_params",
    "make_baseline",
    "load_study_data",
    "check_split",
    "check_seed",
    "check_seeds",
    "run_study",
]

#: Seeds are those numpy's legacy generators (and so scikit-learn) accept.
_MAX_SEED = 2**32 - 1

#: Confidence bins of the expected calibration error and the reliability diagrams.
N_CALIBRATION_BINS = 15


class ProtocolError(ValueError):
    """The protocol's parameters do not fit the data (too few images for a split)."""


class TrainingError(RuntimeError):
    """A model of the study could not be trained: its ``fit`` failed, or it
    predicts probabilities that are not finite (its training diverged).

    The message names the model and says why.
    """


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


def _sample_rows(y, n, seed):
    """The rows of a stratified sample of ``n`` of ``y``, or None for all of them."""
    if n is None or n >= len(y):
        return None
    from ._input import stratified_split

    rows, _, _ = stratified_split(y, len(y) - n, seed)
    return rows


def _subsample(X, y, n, seed):
    """A stratified sample of ``n`` rows (all of them when ``n`` is None or large)."""
    rows = _sample_rows(y, n, seed)
    return (X, y) if rows is None else (X[rows], y[rows])


_Split = namedtuple("_Split", "X_train y_train X_valid y_valid X_eval y_eval X_test y_test "
                              "test_rows classes")


def _split(data, validation_fraction, max_train_samples, max_test_samples,
           train_eval_samples, seed):
    """The protocol's one split of ``data``, shared by every contender."""
    from ._input import stratified_split

    # Checked before sampling, against every class of the data set: the sample
    # must be able to hold each of them on both sides of the split.
    n_samples = len(data["y_train"])
    if max_train_samples is not None:
        n_samples = min(n_samples, max_train_samples)
    try:
        _, n_valid = check_split(n_samples, len(np.unique(data["y_train"])),
                                 validation_fraction)
    except ProtocolError as exc:
        raise ProtocolError(f"max_train_samples={max_train_samples} and validation_fraction="
                            f"{validation_fraction} on {data['name']}: {exc}") from None
    X_full, y_full = _subsample(data["X_train"], data["y_train"], max_train_samples, seed)
    # The test rows are kept so that a row's misclassified images can be found in the data.
    test_rows = _sample_rows(data["y_test"], max_test_samples, seed)
    if test_rows is None:
        test_rows = np.arange(len(data["y_test"]))
    X_test, y_test = data["X_test"][test_rows], data["y_test"][test_rows]
    classes = np.unique(y_full)
    train, valid, _ = stratified_split(y_full, n_valid, seed)
    X_train, X_valid, y_train, y_valid = X_full[train], X_full[valid], y_full[train], y_full[valid]
    # A different seed than the split's, so the sample is not the split's shadow.
    X_eval, y_eval = _subsample(X_train, y_train, train_eval_samples, (seed + 1) % (_MAX_SEED + 1))
    return _Split(X_train, y_train, X_valid, y_valid, X_eval, y_eval, X_test, y_test,
                  test_rows, classes)


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
        try:
            contender.estimator.fit(X, y, **fit_params)
        except (ValueError, ArithmeticError) as exc:
            # Bad settings, or a training that diverged: the row cannot be made.
            raise TrainingError(f"{contender.name} could not be trained: {exc}") from exc
    return time.perf_counter() - start, len(y)


def _evaluate(contender, X, y, classes):
    """(accuracy, log-loss or None, seconds to predict, predictions, probabilities or None)."""
    from sklearn.metrics import accuracy_score, log_loss

    model = contender.estimator
    start = time.perf_counter()
    proba = None
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        if not np.all(np.isfinite(proba)):
            raise TrainingError(
                f"{contender.name} predicts probabilities that are not finite: its training "
                f"diverged. Try a smaller learning rate.")
        pred = model.classes_[np.argmax(proba, axis=1)]
    else:
        pred = model.predict(X)
    seconds = time.perf_counter() - start
    loss = None if proba is None else float(log_loss(y, proba, labels=classes))
    return float(accuracy_score(y, pred)), loss, seconds, pred, proba


def _calibration(model, y, proba):
    """(ECE, reliability diagram points) of test probabilities, or (None, None) without any."""
    if proba is None:
        return None, None
    from ._calibration import expected_calibration_error
    from .plotting import reliability_curve

    ece = expected_calibration_error(y, proba, n_bins=N_CALIBRATION_BINS,
                                     labels=model.classes_)
    accuracy, confidence, counts = reliability_curve(y, proba, classes=model.classes_,
                                                     n_bins=N_CALIBRATION_BINS)
    return ece, {"accuracy": accuracy.tolist(), "confidence": confidence.tolist(),
                 "counts": counts.tolist()}


def _row(contender, split, fit_time, n_train):
    """The result row of a fitted contender: every field of it is made here."""
    from sklearn.metrics import confusion_matrix

    model = contender.estimator
    train_acc, train_loss, *_ = _evaluate(contender, split.X_eval, split.y_eval, split.classes)
    valid_acc, valid_loss, *_ = _evaluate(contender, split.X_valid, split.y_valid,
                                          split.classes)
    test_acc, test_loss, predict_time, pred, proba = _evaluate(
        contender, split.X_test, split.y_test, split.classes)
    test_ece, reliability = _calibration(model, split.y_test, proba)
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
        "test_ece": test_ece,
        "fit_time": fit_time,
        "predict_time": predict_time,
        "n_params": n_params(model),
        "n_train": int(n_train),
        "notes": model_notes(model),
        "confusion_matrix": confusion_matrix(split.y_test, pred,
                                             labels=split.classes).tolist(),
        "reliability": reliability,
    }
    if hasattr(model, "history_"):  # LeNet-5: the curves per epoch, its worst mistakes
        row["history"] = jsonable(model.history_)
        row["label_smoothing"] = float(model.label_smoothing)  # of history's train_loss
        row["epochs"] = int(model.n_iter_)
        row["misclassified"] = _misclassified(model, split, proba)
    return row


#: How many of the most confident mistakes of a LeNet-5 row the results keep.
N_MISCLASSIFIED = 12


def _misclassified(model, split, proba):
    """The most confident wrong test predictions, most confident first.

    ``index`` points into the data set's whole test set, ``true`` and
    ``predicted`` into the results' list of classes.
    """
    from .plotting import most_confident_errors

    rows, predicted, confidence = most_confident_errors(split.y_test, proba,
                                                        classes=model.classes_,
                                                        n=N_MISCLASSIFIED)
    position = {label: i for i, label in enumerate(split.classes.tolist())}
    return [{"index": int(split.test_rows[r]), "true": position[split.y_test[r].item()],
             "predicted": position[p.item()], "confidence": float(c)}
            for r, p, c in zip(rows, predicted, confidence)]


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
    seeds=None,
    return_estimators=False,
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
    seeds : sequence of int, default=None
        Run the whole protocol once per seed (each one seeding the split, the
        samples and every model, as ``random_state`` does) and report the
        mean over the runs. None: one run, with ``random_state``, which
        ``seeds`` replaces otherwise.
    return_estimators : bool, default=False
        Add ``estimators`` to the results: row key -> the fitted estimator
        (of the first seed). They are not JSON data;
        :func:`sklenet.report.write_report` draws the figure of what LeNet-5
        learned from them and leaves them out of ``results.json``.
    verbose : int, default=1
        0: silent; 1: one line per model and LeNet-5's epochs; 2: also a
        progress bar over the batches.
    log : callable, default=print
        Receives the progress lines.

    Returns
    -------
    results : dict
        JSON-serializable (unless ``return_estimators``): ``dataset`` (name,
        sizes, classes), ``protocol`` (``seeds`` among its entries),
        ``models`` (one dict per row: ``key``, ``name``, ``kind``, ``params``,
        ``train_accuracy``, ``train_loss``, ``valid_accuracy``,
        ``valid_loss``, ``test_accuracy``, ``test_loss``, ``test_ece`` (the
        expected calibration error of the test probabilities, 15 bins of
        top-label confidence), ``fit_time``, ``predict_time``, ``n_params``,
        ``n_train``, ``notes``, ``confusion_matrix``, ``reliability`` (the
        test set's reliability diagram: ``accuracy``, mean ``confidence`` and
        sample ``counts`` of each non-empty bin), and for LeNet-5 ``history``,
        ``label_smoothing`` (that of the history's training loss), ``epochs``
        and ``misclassified``: the most confident wrong test predictions, each
        with the test image's ``index`` in the data set, the ``true`` and
        ``predicted`` class as positions in ``dataset["classes"]`` and the
        ``confidence``), ``environment`` and ``total_time``. Losses, ECE and
        reliability are None for a model without ``predict_proba``.

        With several seeds, the accuracies, losses and times of a row are
        means over the seeds; ``spread`` gives the lowest and highest value
        of each (``{"test_accuracy": [min, max], ...}``), ``per_seed`` the
        row of each seed as a run with that seed alone would give it, and
        the confusion matrix, history and mistakes are those of the first
        seed.

    Raises
    ------
    DatasetUnavailableError
        When the data set cannot be loaded.
    ProtocolError
        When the (sampled) training set is too small for the split.
    TrainingError
        When a model cannot be trained: its ``fit`` raises a ``ValueError``
        or an ``ArithmeticError`` (such as the error of a training whose loss
        stops being finite), or its probabilities are not finite.

    Examples
    --------
    >>> from sklenet.study import run_study
    >>> results = run_study("digits", recipes=[], baselines=["knn"], verbose=0)
    >>> [row["key"] for row in results["models"]], results["dataset"]["n_valid"]
    (['knn'], 270)

    Two seeds: each row holds the mean and the range of the two runs.

    >>> results = run_study("digits", recipes=[], baselines=["knn"], seeds=[0, 1],
    ...                     verbose=0)
    >>> knn = results["models"][0]
    >>> [round(run["test_accuracy"], 4) for run in knn["per_seed"]]
    [0.9711, 0.98]
    >>> round(knn["test_accuracy"], 4), [round(a, 4) for a in knn["spread"]["test_accuracy"]]
    (0.9756, [0.9711, 0.98])
    """
    started = time.perf_counter()
    say = (log or _silent) if verbose else _silent
    recipes = _check_choices(recipes, RECIPES, "recipes")
    baselines = _check_choices(baselines, BASELINES, "baselines")
    seeds = _check_protocol(validation_fraction, random_state, seeds)
    caps = {name: cap for name, (_, cap) in BASELINES.items()}
    caps.update(baseline_max_train_samples or {})

    data = dataset if isinstance(dataset, dict) else load_study_data(
        dataset, data_home=data_home, download=download, log=log or _silent)
    runs, estimators = [], {}
    for i, seed in enumerate(seeds):
        if len(seeds) > 1:
            say(f"Seed {seed} ({i + 1} of {len(seeds)})")
        split = _split(data, validation_fraction, max_train_samples, max_test_samples,
                       train_eval_samples, seed)
        say(f"Data set: {data['name']} ({data['source']}): {len(split.y_train)} training, "
            f"{len(split.y_valid)} validation (stratified {validation_fraction:.0%}), "
            f"{len(split.y_test)} test images, {len(split.classes)} classes")
        rows = []
        for contender in _contenders(recipes, baselines, dict(lenet_params or {}), caps,
                                     seed, verbose):
            fit_time, n_train = _fit(contender, split, seed, say)
            rows.append(_row(contender, split, fit_time, n_train))
            say(_result_line(rows[-1]))
            if return_estimators and i == 0:
                estimators[contender.key] = contender.estimator
        runs.append((split, rows))

    split = runs[0][0]
    results = {
        "dataset": _dataset_facts(data, split),
        "protocol": jsonable({
            "validation_fraction": validation_fraction,
            "max_train_samples": max_train_samples,
            "max_test_samples": max_test_samples,
            "train_eval_samples": train_eval_samples,
            "random_state": seeds[0],
            "seeds": seeds,
            "recipes": recipes,
            "lenet_params": dict(lenet_params or {}),
            "baselines": baselines,
        }),
        "models": _over_seeds([rows for _, rows in runs], seeds),
        "environment": _environment(),
        "total_time": time.perf_counter() - started,
    }
    if return_estimators:
        results["estimators"] = estimators
    return results


#: The numbers of a row that are averaged over seeds.
_MEASURES = ("train_accuracy", "train_loss", "valid_accuracy", "valid_loss", "test_accuracy",
             "test_loss", "test_ece", "fit_time", "predict_time")


def _over_seeds(runs, seeds):
    """One row per model from the rows of each seed's run (the rows themselves for one)."""
    if len(runs) == 1:
        return runs[0]
    merged = []
    for per_seed in zip(*runs):
        row = dict(per_seed[0])
        row["spread"] = {}
        for measure in _MEASURES:
            values = [r[measure] for r in per_seed]
            if None in values:  # no predict_proba: no loss or ECE, whatever the seed
                continue
            row[measure] = float(np.mean(values))
            row["spread"][measure] = [min(values), max(values)]
        row["per_seed"] = [{"seed": seed, **r} for seed, r in zip(seeds, per_seed)]
        merged.append(row)
    return merged


def _check_protocol(validation_fraction, random_state, seeds):
    """Check the protocol's parameters; returns the list of seeds to run."""
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1); got {validation_fraction!r}.")
    if seeds is None:
        return [check_seed(random_state, "random_state")]
    return check_seeds(seeds)


def check_seed(seed, name="seed"):
    """``seed`` as an int, checked: an integer in [0, 2**32 - 1].

    numpy's legacy generators, and so every scikit-learn estimator, take
    seeds in that range.

    Parameters
    ----------
    seed : int
        The seed.
    name : str, default="seed"
        What the error message calls it.

    Returns
    -------
    seed : int

    Raises
    ------
    ValueError
        When ``seed`` is not such an integer; the message names it.

    Examples
    --------
    >>> from sklenet.study import check_seed
    >>> check_seed(7)
    7
    >>> check_seed(-1, "random_state")
    Traceback (most recent call last):
    ...
    ValueError: random_state must be an integer in [0, 4294967295]; got -1.
    """
    if isinstance(seed, bool) or not (isinstance(seed, (int, np.integer))
                                      and 0 <= seed <= _MAX_SEED):
        raise ValueError(f"{name} must be an integer in [0, {_MAX_SEED}]; got {seed!r}.")
    return int(seed)


def check_seeds(seeds):
    """``seeds`` as a list of ints, checked: at least one, each a valid seed, all distinct.

    Parameters
    ----------
    seeds : sequence of int
        The seeds of a run of several seeds (``run_study(seeds=...)``).

    Returns
    -------
    seeds : list of int

    Raises
    ------
    ValueError
        When ``seeds`` is not such a sequence; the message says why.

    Examples
    --------
    >>> from sklenet.study import check_seeds
    >>> check_seeds((0, 1, 2))
    [0, 1, 2]
    >>> check_seeds([1, 1])
    Traceback (most recent call last):
    ...
    ValueError: seeds must differ from one another; got [1, 1].
    """
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ValueError(f"seeds must be a sequence of integers; got {seeds!r}.")
    values = [check_seed(seed, "each seed") for seed in seeds]
    if not values:
        raise ValueError("seeds must hold at least one seed; got an empty sequence.")
    if len(set(values)) < len(values):
        raise ValueError(f"seeds must differ from one another; got {values!r}.")
    return values


def _result_line(row):
    """The progress line of a finished row."""
    loss = "" if row["test_loss"] is None else (
        f", test loss {row['test_loss']:.3f}, ECE {100 * row['test_ece']:.2f}%")
    return (f"  {row['name']}: test accuracy {row['test_accuracy']:.4f}{loss} "
            f"(validation {row['valid_accuracy']:.4f}, fit {format_seconds(row['fit_time'])}, "
            f"predict {format_seconds(row['predict_time'])})")


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

