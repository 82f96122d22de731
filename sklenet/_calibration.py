"""Calibration of the predicted probabilities: temperature scaling and its measure.

A network trained with label smoothing (the default) is under-confident, one
trained without it is usually over-confident; dividing the logits by one
temperature fitted on held-out rows fixes most of either (Guo et al. 2017, "On
Calibration of Modern Neural Networks"). A scalar changes no ``argmax``, so
predictions and accuracy stay exactly as they were.
"""

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

__all__ = ["expected_calibration_error", "fit_temperature", "temperature_log_loss"]

# Temperatures are searched in [1/100, 100]: far beyond any useful value (the
# networks here land between about 0.5 and 2), yet finite, so that the
# probabilities of a badly fitted model stay representable.
_LOG_T_BOUNDS = (-np.log(100.0), np.log(100.0))


def _as_indices(y, n_classes, labels):
    y = np.asarray(y)
    if labels is None:
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                "y_true must hold column indices (ints in [0, n_classes)) when labels "
                "is None; pass labels=estimator.classes_ to give labels instead."
            )
        indices = y
    else:
        labels = np.asarray(labels)
        if len(labels) != n_classes:
            raise ValueError(
                f"labels has {len(labels)} entries but proba has {n_classes} columns."
            )
        order = np.argsort(labels, kind="stable")
        pos = np.clip(np.searchsorted(labels, y, sorter=order), 0, n_classes - 1)
        indices = order[pos]
        unknown = labels[indices] != y
        if np.any(unknown):
            raise ValueError(f"y_true holds labels not in labels: {np.unique(y[unknown])!r}.")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_classes):
        raise ValueError(f"y_true holds column indices outside [0, {n_classes}).")
    return indices


def _weights(sample_weight, n):
    if sample_weight is None:
        return np.ones(n)
    weight = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if len(weight) != n:
        raise ValueError(f"sample_weight has {len(weight)} entries for {n} samples.")
    if np.any(weight < 0) or not np.all(np.isfinite(weight)):
        raise ValueError("sample_weight must be finite and non-negative.")
    return weight


def expected_calibration_error(y_true, proba, *, n_bins=15, labels=None, sample_weight=None):
    """Expected calibration error of the top-label confidence (classic ECE).

    Each sample's confidence is its highest probability; samples are put in
    ``n_bins`` equal-width bins ``((b - 1) / n_bins, b / n_bins]`` of
    confidence, and the ECE is the mean over samples of the gap between a bin's
    accuracy (how often the most probable class is the true one) and its mean
    confidence: ``sum_b (n_b / n) * |accuracy_b - confidence_b|`` (Naeini et
    al. 2015; Guo et al. 2017 use it with 15 bins). 0 is perfect calibration.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True classes: column indices of ``proba`` (ints in ``[0, n_classes)``),
        or, when ``labels`` is given, labels from ``labels``.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities, e.g. ``estimator.predict_proba(X)``.
    n_bins : int, default=15
        Number of equal-width confidence bins.
    labels : array-like of shape (n_classes,), default=None
        The label of each column of ``proba`` (``estimator.classes_``). None:
        ``y_true`` holds column indices.
    sample_weight : array-like of shape (n_samples,), default=None
        Weight of each sample in the bin counts, accuracies and confidences.

    Returns
    -------
    ece : float
        Expected calibration error, in [0, 1]. NaN when there are no samples
        or the weights sum to 0.

    Notes
    -----
    Ties in the highest probability count the first such column as the
    prediction, as ``argmax`` (and ``predict``) do.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ValueError(f"proba must be 2-d (n_samples, n_classes); got shape {proba.shape}.")
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int; got {n_bins!r}.")
    y = _as_indices(y_true, proba.shape[1], labels)
    if len(y) != len(proba):
        raise ValueError(f"y_true has {len(y)} samples, proba {len(proba)}.")
    weight = _weights(sample_weight, len(y))
    total = weight.sum()
    if total <= 0:
        return float("nan")
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(np.float64)
    # Bin b (1-based) holds confidences in ((b - 1) / n_bins, b / n_bins];
    # a confidence of exactly 0 (not a probability vector's maximum) joins the first.
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    bin_weight = np.bincount(bins, weights=weight, minlength=n_bins)
    gap = np.bincount(bins, weights=weight * (correct - confidence), minlength=n_bins)
    # |sum_i w_i (correct_i - conf_i)| over a bin is n_b * |acc_b - conf_b|.
    return float(np.abs(gap[bin_weight > 0]).sum() / total)


def temperature_log_loss(logits, y, temperature, sample_weight=None):
    """Weighted mean log-loss of ``softmax(logits / temperature)``.

    Parameters
    ----------
    logits : array-like of shape (n_samples, n_classes)
        The network's outputs before the softmax.
    y : array-like of shape (n_samples,)
        True classes as column indices.
    temperature : float
        Positive temperature.
    sample_weight : array-like of shape (n_samples,), default=None
        Weight of each sample.

    Returns
    -------
    loss : float
        The weighted mean negative log-likelihood of the true classes.
    """
    logits = np.asarray(logits, dtype=np.float64)
    y = _as_indices(y, logits.shape[1], None)
    weight = _weights(sample_weight, len(y))
    nll = -log_softmax(logits / temperature, axis=1)[np.arange(len(y)), y]
    return float(np.dot(weight, nll) / weight.sum())


def fit_temperature(logits, y, sample_weight=None):
    """The temperature ``T > 0`` that minimizes the log-loss of ``softmax(logits / T)``.

    Temperature scaling (Guo et al. 2017): one scalar fitted on held-out rows,
    searched on ``log T`` in ``[1/100, 100]`` with bounded Brent's method
    (``scipy.optimize.minimize_scalar``); the log-loss is convex in ``1 / T``,
    so the minimum found is the global one.

    Parameters
    ----------
    logits : array-like of shape (n_samples, n_classes)
        Outputs before the softmax of rows the network did not train on.
    y : array-like of shape (n_samples,)
        Their true classes, as column indices.
    sample_weight : array-like of shape (n_samples,), default=None
        Weight of each row in the log-loss.

    Returns
    -------
    temperature : float
        The fitted temperature. ``1.0`` (no change) when the rows cannot
        determine one: no rows, weights summing to 0, or no misclassified row
        of positive weight, where the log-loss keeps falling as ``T`` goes to 0
        and any temperature below 1 would only make the model's future
        mistakes more costly than the rows can justify.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-d (n_samples, n_classes); got {logits.shape}.")
    y = _as_indices(y, logits.shape[1], None)
    if len(y) != len(logits):
        raise ValueError(f"y has {len(y)} samples, logits {len(logits)}.")
    weight = _weights(sample_weight, len(y))
    keep = weight > 0
    logits, y, weight = logits[keep], y[keep], weight[keep]
    if not len(y) or not np.all(np.isfinite(logits)):
        return 1.0
    true_logit = logits[np.arange(len(y)), y]
    if not np.any(true_logit < logits.max(axis=1)):
        return 1.0
    weight = weight / weight.sum()
    rows = np.arange(len(y))

    def loss(log_t):
        return -np.dot(weight, log_softmax(logits * np.exp(-log_t), axis=1)[rows, y])

    result = minimize_scalar(loss, bounds=_LOG_T_BOUNDS, method="bounded",
                             options={"xatol": 1e-6})
    temperature = float(np.exp(result.x))
    # Brent's method may stop a hair off a flat minimum: never return a
    # temperature that does worse on the rows than leaving the logits alone.
    if not np.isfinite(temperature) or loss(result.x) > loss(0.0):
        return 1.0
    return temperature
