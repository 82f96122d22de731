"""Checks and conversions of the images and labels users pass in."""

import math
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils import check_array, check_consistent_length
from sklearn.utils.validation import _check_sample_weight, column_or_1d

__all__ = [
    "flatten_images",
    "check_targets",
    "resolve_image_shape",
    "channel_mean_std",
    "encode_targets",
    "decode_predictions",
    "split_validation",
    "stratified_split",
    "check_sample_shape",
    "check_validation_data",
    "warn_if_scaled_differently",
    "check_classes",
    "scale_loss_weights",
    "has_loss_weight",
]


def flatten_images(X):
    """Return ``(X_2d, sample_shape)``: image stacks become flat rows.

    sklearn's validation works on 2-D tables, so ``(n, H, W)`` and
    ``(n, C, H, W)`` arrays are viewed as ``(n, H*W*C)`` rows and their per-sample
    shape is returned alongside; tables (including DataFrames and sparse
    matrices) pass through with ``sample_shape=None``.
    """
    if sp.issparse(X) or hasattr(X, "columns") or isinstance(X, str):
        return X, None
    ndim = getattr(X, "ndim", None)
    if ndim is None and isinstance(X, (list, tuple)):
        try:
            ndim = np.ndim(X)
        except ValueError:  # ragged nested lists: let check_array report them
            return X, None
    if ndim is None or ndim <= 2:
        return X, None
    X = np.asarray(X)
    if X.ndim > 4:
        raise ValueError(
            f"Expected images shaped (n_samples, n_features), (n_samples, height, width) "
            f"or (n_samples, channels, height, width); got an array with shape {X.shape}."
        )
    if _looks_channels_last(X.shape):
        _, height, width, channels = X.shape
        raise ValueError(
            f"X has shape {X.shape}, which looks like channels-last images (n_samples, "
            f"height, width, channels), as PIL, OpenCV and Keras hold them. LeNet5Classifier "
            f"reads images channels-first, (n_samples, channels, height, width): pass "
            f"X.transpose(0, 3, 1, 2). (If they are {height} channels of {width}x{channels} "
            f"images, pass X.reshape(len(X), -1) with image_shape={(height, width, channels)}.)"
        )
    return X.reshape(len(X), -1), X.shape[1:]


#: Channel counts of real images (grayscale, RGB, RGBA).
_CHANNEL_COUNTS = (1, 3, 4)


def _looks_channels_last(shape):
    """Whether a 4-d ``shape`` reads as ``(n, height, width, channels)`` rather
    than ``(n, channels, height, width)``: a channel count last, another one
    second, and a real image (both sides > 1) in between. ``(n, 300, 1, 1)`` is
    300 channels of 1x1 images, not a 300x1 strip."""
    return (len(shape) == 4 and shape[3] in _CHANNEL_COUNTS
            and shape[1] not in _CHANNEL_COUNTS and min(shape[1], shape[2]) > 1)


def check_targets(y, name="y"):
    """``y`` as an array, with errors that name it for what sklearn reports vaguely.

    Catches a y of more than 2 dimensions, missing labels (None) and a mix of
    numbers and strings before ``check_array`` / ``np.unique`` fail on them with
    messages that don't say they mean ``y``.
    """
    if y is None:  # validate_data says that y is required
        return y
    y = y.to_numpy() if hasattr(y, "to_numpy") else y
    try:
        array = np.asarray(y)
    except ValueError:  # ragged: let check_array report it
        return y
    if array.ndim > 2:
        raise ValueError(
            f"{name} must be 1-d labels (n_samples,) or one-hot rows (n_samples, "
            f"n_classes); got an array with shape {array.shape}."
        )
    if array.dtype == object or (array.dtype.kind == "U" and isinstance(y, (list, tuple))):
        # numpy turns a list of strings and numbers into strings: look at the items.
        flat = array.ravel() if array.dtype == object else np.asarray(y, dtype=object).ravel()
        missing = np.flatnonzero([v is None or (isinstance(v, float) and v != v)
                                  for v in flat])
        if len(missing):
            raise ValueError(
                f"{name} has missing labels (None or NaN) at positions "
                f"{missing[:5].tolist()}{'...' if len(missing) > 5 else ''}; every "
                f"sample needs a label."
            )
        others = {type(v).__name__ for v in flat if not isinstance(v, str)}
        if others and any(isinstance(v, str) for v in flat):
            raise ValueError(
                f"{name} mixes strings with labels of type {sorted(others)}; labels must "
                f"be all strings or all numbers (convert them with {name}.astype(str))."
            )
    return array


def resolve_image_shape(n_features, sample_shape=None, image_shape=None):
    """The ``(channels, height, width)`` of each sample.

    ``image_shape`` (the estimator parameter) wins; then the shape of image-shaped
    input; flat rows of a perfect-square length ``H*H`` are read as ``1 x H x H``
    images, any other length ``n`` as a ``1 x 1 x n`` strip (which the network
    resizes to 28x28 like any other image).
    """
    if image_shape is not None:
        shape = tuple(int(d) for d in image_shape)
        if len(shape) == 2:
            shape = (1,) + shape
        if math.prod(shape) != n_features:
            raise ValueError(
                f"image_shape={tuple(image_shape)} holds {math.prod(shape)} values per "
                f"sample, but X has {n_features} features per sample. Pass "
                f"image_shape=(height, width) or (channels, height, width) whose product "
                f"is {n_features}, or image_shape=None to infer it."
            )
        return shape
    if sample_shape is not None:
        return tuple(sample_shape) if len(sample_shape) == 3 else (1,) + tuple(sample_shape)
    side = math.isqrt(n_features)
    if side * side == n_features:
        return (1, side, side)
    return (1, 1, n_features)


def check_sample_shape(sample_shape, n_features, image_shape):
    """Image-shaped ``X`` must hold images of the fitted ``image_shape``.

    ``sample_shape`` is what :func:`flatten_images` returned (None for flat rows,
    which ``n_features`` checks already).
    """
    if sample_shape is None:
        return
    if resolve_image_shape(n_features, sample_shape, None) != tuple(image_shape):
        raise ValueError(
            f"X holds images of shape {tuple(sample_shape)}, but the model was "
            f"fitted on images of shape (channels, height, width) = "
            f"{tuple(image_shape)}. Pass images of the fitted size."
        )


def check_validation_data(validation_data, n_features, image_shape, classes, one_hot):
    """``(X_val, y_val, w_val)`` checked like ``X, y``; errors name ``validation_data``.

    ``n_features``, ``image_shape``, ``classes`` and ``one_hot`` describe the
    training data the validation set must match.
    """
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError(
            "validation_data must be a pair (X_val, y_val) or a triple "
            "(X_val, y_val, sample_weight_val); got "
            f"{type(validation_data).__name__}."
        )
    X_val, y_val = validation_data[:2]
    w_val = validation_data[2] if len(validation_data) == 3 else None
    try:
        X_val, sample_shape = flatten_images(X_val)
        X_val = check_array(X_val, dtype=(np.float32, np.uint8), order="C",
                            input_name="X_val")
        if X_val.shape[1] != n_features:
            raise ValueError(
                f"X_val has {X_val.shape[1]} features per sample, but X has "
                f"{n_features}."
            )
        check_sample_shape(sample_shape, X_val.shape[1], image_shape)
        y_val = check_array(check_targets(y_val, name="y_val"), ensure_2d=False,
                            dtype=None, input_name="y_val")
        check_consistent_length(X_val, y_val)
        y_val, _, val_one_hot = encode_targets(y_val, classes, name="y_val")
        if val_one_hot != one_hot:
            raise ValueError("y_val must hold labels in the same form as y.")
        if w_val is not None:
            w_val = _check_sample_weight(w_val, X_val, dtype=np.float64,
                                         ensure_non_negative=True)
    except ValueError as error:
        raise ValueError(f"Invalid validation_data: {error}") from error
    return X_val, y_val, w_val


def warn_if_scaled_differently(X, X_val, rows=2000):
    """Warn when ``X_val`` is on another scale than ``X``, as happens to a
    ``validation_data`` passed through a ``Pipeline``, whose earlier steps
    transform ``X`` but not it."""
    train = X[:rows].astype(np.float64)
    valid = X_val[:rows].astype(np.float64)
    spread = train.std() or 1.0
    if abs(valid.mean() - train.mean()) > 0.5 * spread or not (
        0.5 <= (valid.std() or 1.0) / spread <= 2.0
    ):
        warnings.warn(
            f"validation_data is on another scale than X (mean {valid.mean():.3g} vs "
            f"{train.mean():.3g}, std {valid.std():.3g} vs {spread:.3g}). Inside a "
            f"Pipeline, validation_data reaches LeNet5Classifier untransformed by the "
            f"steps before it: pass pipe[:-1].transform(X_val) instead.",
            UserWarning,
            stacklevel=4,  # the caller of fit (through sklearn's _fit_context)
        )


def channel_mean_std(X, n_channels, rows=None, chunk_rows=4096):
    """Per-channel mean and standard deviation of flat image rows.

    Only the rows ``rows`` (all when None) count. Computed in float64 over
    chunks of rows so a large uint8 or float32 dataset is never copied whole; a
    constant channel gets a standard deviation of 1.
    """
    rows = np.arange(len(X)) if rows is None else np.asarray(rows)
    per_channel = X.shape[1] // n_channels

    def chunks():
        for start in range(0, len(rows), chunk_rows):
            yield X[rows[start:start + chunk_rows]].reshape(-1, n_channels, per_channel)

    count = len(rows) * per_channel
    mean = sum(chunk.sum(axis=(0, 2), dtype=np.float64) for chunk in chunks()) / count
    squares = sum(((chunk - mean[None, :, None]) ** 2).sum(axis=(0, 2)) for chunk in chunks())
    std = np.sqrt(squares / count)
    std[~(std > 1e-12)] = 1.0
    return mean, std


def encode_targets(y, classes=None, name="y"):
    """Turn labels into class indices.

    Returns ``(indices, classes, one_hot)``. ``y`` may hold labels of any
    sortable kind (ints, strings, bools), or be a one-hot matrix ``(n, k)``,
    whose classes are its column numbers ``0..k-1``. A column vector gets the
    usual ``DataConversionWarning``.
    """
    y = np.asarray(y) if not hasattr(y, "iloc") else y.to_numpy()
    one_hot = y.ndim == 2 and y.shape[1] > 1
    if one_hot:
        if type_of_target(y) != "multilabel-indicator" or not np.all(y.sum(axis=1) == 1):
            raise ValueError(
                f"y has shape {y.shape}, which is read as one-hot labels, but not every row "
                f"holds exactly one 1 and zeros elsewhere. Pass one-hot rows, or a 1-d array "
                f"of labels (multilabel targets are not supported)."
            )
        indices = y.argmax(axis=1)
        found = np.arange(y.shape[1])
    else:
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        found, indices = np.unique(y, return_inverse=True)
    if classes is None:
        return indices.astype(np.int64), found, one_hot
    if one_hot:
        if y.shape[1] != len(classes):
            raise ValueError(
                f"{name} has {y.shape[1]} one-hot columns but the model knows {len(classes)} "
                f"classes; refit with fit() to change the classes."
            )
        return indices.astype(np.int64), classes, one_hot
    unknown = np.setdiff1d(found, classes)
    if len(unknown):
        known = np.asarray(classes).tolist()
        if name == "y":
            raise ValueError(
                f"y contains labels {unknown.tolist()} that are not in classes {known}, the "
                f"model's classes. partial_fit can only learn the classes given on its "
                f"first call; refit with fit() to change them."
            )
        raise ValueError(
            f"{name} contains labels {unknown.tolist()} that are not among the classes of "
            f"the training labels, {known}: the model can only score classes it learns."
        )
    indices = np.searchsorted(classes, found)[indices]
    return indices.astype(np.int64), classes, one_hot


def check_classes(classes):
    """The sorted distinct labels of ``partial_fit``'s ``classes``, checked as
    ``fit`` checks ``y``: a 1-d array of labels, all numbers or all strings, none
    missing, NaN or infinite."""
    array = check_targets(classes, name="classes")
    if not isinstance(array, np.ndarray) or array.ndim != 1:
        raise ValueError(
            f"classes must be a 1-d array of labels, e.g. classes=np.unique(y_all); got "
            f"{type(classes).__name__} with shape {np.shape(array)}."
        )
    array = check_array(array, ensure_2d=False, dtype=None, ensure_min_samples=0,
                        input_name="classes")
    return np.unique(array)


def scale_loss_weights(weight):
    """``weight`` scaled by the power of two that brings its largest value into [0.5, 1).

    Every loss and score is a weighted mean, unchanged when all the weights are
    multiplied by one number, and a power of two multiplies exactly. The
    weights are cast to float32 for the loss: scaled, weights of any float64
    magnitude (1e-320 as 1e308) keep their ratios there, and their sums cannot
    overflow.
    """
    top = np.max(weight, initial=0.0)
    if not top > 0:
        return weight
    return np.ldexp(weight, -int(np.frexp(top)[1]))


def has_loss_weight(weight, rows):
    """Whether some row of ``rows`` keeps a nonzero weight in float32 (the loss's
    precision), given weights scaled by :func:`scale_loss_weights`."""
    return weight is None or bool(np.any(weight[rows].astype(np.float32) > 0))


def decode_predictions(indices, classes, one_hot, one_hot_dtype):
    """Labels in the form the estimator was fitted on."""
    if one_hot:
        # Row by row: an n_classes x n_classes identity would cost n_classes**2.
        rows = np.zeros((len(indices), len(classes)), dtype=one_hot_dtype)
        rows[np.arange(len(indices)), indices] = 1
        return rows
    return classes[indices]


def split_validation(y, fraction, seed):
    """Indices ``(train, valid)`` of a stratified validation split.

    Degrades gracefully for small data: when a class is too small to stratify, the
    split is a plain shuffled one (with a warning); when there are too few samples
    to hold any out, everything trains and ``valid`` is ``None`` (with a warning).
    """
    n = len(y)
    indices = np.arange(n)
    n_valid = math.ceil(fraction * n)
    if n_valid < 1 or n - n_valid < 1:
        warnings.warn(
            f"validation_fraction={fraction} leaves no samples to validate or to train "
            f"on with {n} samples; training on all of them without validation.",
            UserWarning,
            stacklevel=3,
        )
        return indices, None
    train, valid, stratified = stratified_split(y, n_valid, seed)
    if not stratified:
        warnings.warn(
            f"Some class has too few samples for a stratified validation split of "
            f"{n_valid} of {n} samples; using a plain random split instead.",
            UserWarning,
            stacklevel=3,
        )
    return np.sort(train), np.sort(valid)


def stratified_split(y, n_test, seed):
    """Indices ``(train, test, stratified)`` of a split that puts ``n_test`` rows in ``test``.

    Stratified on ``y`` (scikit-learn's ``train_test_split``) when every class
    can be in both parts, otherwise plainly shuffled; ``stratified`` says which.
    ``n_test`` must leave at least one row in each part. The indices come in the
    splitter's order; the same ``seed`` gives the same split.
    """
    indices = np.arange(len(y))
    try:
        train, test = train_test_split(indices, test_size=n_test, stratify=y,
                                       random_state=seed)
        return train, test, True
    except ValueError:  # a class too small for both parts
        train, test = train_test_split(indices, test_size=n_test, random_state=seed)
        return train, test, False
