"""Figures of the study: sample images, learning curves, the confusion matrix,
reliability diagrams, what the network learned and its worst mistakes.

Every function takes data (not file names), draws with matplotlib and returns
the :class:`~matplotlib.figure.Figure`; pass ``ax`` to draw into an existing
axes instead. Nothing here calls ``plt.show()``; save a figure with
``fig.savefig(path)``. matplotlib is imported lazily, and when no backend has
been chosen yet the non-interactive ``Agg`` backend is used, so the functions
work on machines without a display.
"""

import sys

import numpy as np

__all__ = ["plot_samples", "plot_history", "plot_confusion_matrix",
           "plot_confusion_matrix_counts", "reliability_curve", "plot_reliability",
           "plot_learned_features", "most_confident_errors", "plot_misclassified",
           "plot_mistakes"]


def _pyplot():
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        # Headless-safe default; an explicitly chosen backend is left alone.
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _new_axes(ax, figsize):
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


def _as_images(X, image_shape=None):
    X = np.asarray(X)
    if X.ndim == 4:  # (n, channels, h, w): show the first channel
        return X[:, 0]
    if X.ndim == 3:
        return X
    if X.ndim != 2:
        raise ValueError(f"X must be 2-, 3- or 4-dimensional, got shape {X.shape}.")
    if image_shape is None:
        side = int(round(np.sqrt(X.shape[1])))
        if side * side != X.shape[1]:
            raise ValueError(
                f"Rows of {X.shape[1]} values are not square images; pass image_shape."
            )
        image_shape = (side, side)
    return X.reshape((len(X),) + tuple(image_shape[-2:]))


def plot_samples(X, y, *, target_names=None, n_per_class=1, max_classes=10,
                 image_shape=None, random_state=0, title=None, cmap="gray_r"):
    """Grid of sample images with their class names (Fig. 1 of the study).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), (n_samples, h, w) \
            or (n_samples, channels, h, w)
        Images; flat rows must be square unless ``image_shape`` is given.
    y : array-like of shape (n_samples,)
        Labels (indices into ``target_names`` when that is given).
    target_names : sequence of str, default=None
        Name of each label; the labels themselves are shown when None.
    n_per_class : int, default=1
        Images shown per class (one row per image index, one column per class).
    max_classes : int, default=10
        Show at most this many classes (the first ones, in sorted order).
    image_shape : tuple of int, default=None
        ``(height, width)`` of flat rows that are not square.
    random_state : int or None, default=0
        Which images are picked.
    title : str, default=None
        Figure title.
    cmap : str, default="gray_r"
        Colormap (``gray_r``: dark ink on white, as in the study).

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklenet.plotting import plot_samples
    >>> X, y = load_digits(return_X_y=True)
    >>> fig = plot_samples(X, y, n_per_class=2)
    >>> len(fig.axes)
    20
    """
    plt = _pyplot()
    images = _as_images(X, image_shape)
    y = np.asarray(y)
    if len(images) != len(y):
        raise ValueError(f"X has {len(images)} images but y has {len(y)} labels.")
    classes = np.unique(y)[:max_classes]
    rng = np.random.default_rng(random_state)
    n_cols, n_rows = len(classes), n_per_class
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(1.25 * n_cols, 1.45 * n_rows + (0.4 if title else 0)),
        squeeze=False, layout="constrained",
    )
    for j, label in enumerate(classes):
        rows = np.flatnonzero(y == label)
        picked = rng.choice(rows, size=min(n_per_class, len(rows)), replace=False)
        name = str(label) if target_names is None else str(target_names[int(label)])
        for i in range(n_rows):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if i < len(picked):
                ax.imshow(images[picked[i]], cmap=cmap, interpolation="nearest")
            else:
                ax.set_axis_off()
            if i == 0:
                ax.set_title(name, fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def _history_series(history, key):
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    values = [np.nan if row.get(key) is None else float(row[key]) for row in history]
    return np.asarray(epochs), np.asarray(values, dtype=float)


def plot_history(history, metric="loss", *, ax=None, label=None, title=None,
                 label_smoothing=None):
    """Training and validation curves per epoch (Fig. 2: loss, Fig. 3: accuracy).

    The two loss curves measure different things: the training loss is the
    objective the network minimizes on its (augmented) training batches,
    label-smoothed when ``label_smoothing > 0``, whose floor is then well
    above zero; the validation loss is the plain log-loss of the held-out
    rows. The legend says which is which, so that a training curve above the
    validation curve is not read as underfitting.

    Parameters
    ----------
    history : list of dict or fitted LeNet5Classifier
        ``history_`` of a fitted :class:`~sklenet.LeNet5Classifier` (records
        with ``epoch``, ``train_<metric>`` and ``valid_<metric>``), or the
        estimator itself.
    metric : {"loss", "accuracy"}, default="loss"
        Which curves to draw.
    ax : matplotlib Axes, default=None
        Axes to draw into; a new figure is made when None.
    label : str, default=None
        Prefix of the legend entries (to overlay several models on one axes).
    title : str, default=None
        Axes title.
    label_smoothing : float, default=None
        The label smoothing of the training loss; read from the estimator
        when one is given, taken as 0 otherwise.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from sklenet.plotting import plot_history
    >>> history = [{"epoch": 1, "train_loss": 0.9, "valid_loss": 0.7},
    ...            {"epoch": 2, "train_loss": 0.5, "valid_loss": 0.6}]
    >>> fig = plot_history(history, "loss", label_smoothing=0.1)
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['training loss (label-smoothed objective)', 'validation log-loss']
    """
    if metric not in ("loss", "accuracy"):
        raise ValueError(f"metric must be 'loss' or 'accuracy', got {metric!r}.")
    if hasattr(history, "history_"):
        if label_smoothing is None:
            label_smoothing = history.label_smoothing
        history = history.history_
    history = list(history)
    if not history:
        raise ValueError("history is empty: nothing to plot.")
    fig, ax = _new_axes(ax, (5.5, 3.8))
    prefix = "" if label is None else f"{label}: "
    if metric == "loss":
        names = ("training loss (label-smoothed objective)" if label_smoothing
                 else "training loss", "validation log-loss")
    else:
        names = ("training accuracy", "validation accuracy")
    lines = []
    for part, name, style in (("train", names[0], "-"), ("valid", names[1], "--")):
        epochs, values = _history_series(history, f"{part}_{metric}")
        if np.all(np.isnan(values)):
            continue
        color = None if not lines else lines[0].get_color()
        (line,) = ax.plot(epochs, values, style, marker="o", markersize=3,
                          color=color, label=f"{prefix}{name}")
        lines.append(line)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    ax.legend()
    if title is not None:
        ax.set_title(title)
    return fig


def plot_confusion_matrix(y_true, y_pred, *, target_names=None, normalize=None,
                          ax=None, title=None, cmap="Blues"):
    """Confusion matrix of predictions, through sklearn's ``ConfusionMatrixDisplay``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted labels.
    target_names : sequence of str, default=None
        Display name of each label (indexed by the sorted labels).
    normalize : {"true", "pred", "all"} or None, default=None
        Passed to :func:`sklearn.metrics.confusion_matrix`.
    ax : matplotlib Axes, default=None
        Axes to draw into; a new figure is made when None.
    title : str, default=None
        Axes title.
    cmap : str, default="Blues"
        Colormap.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from sklenet.plotting import plot_confusion_matrix
    >>> fig = plot_confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0], target_names=["a", "b"])
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['a', 'b']
    """
    from sklearn.metrics import confusion_matrix

    y_true = np.asarray(y_true)
    labels = np.unique(np.concatenate([y_true, np.asarray(y_pred)]))
    matrix = confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
    display_labels = None
    if target_names is not None:
        display_labels = [str(target_names[int(label)]) for label in labels]
    return plot_confusion_matrix_counts(
        matrix, display_labels=display_labels, ax=ax, title=title, cmap=cmap,
        values_format=None if normalize is None else ".2f")


def plot_confusion_matrix_counts(matrix, *, display_labels=None, ax=None, title=None,
                                 cmap="Blues", values_format=None):
    """A confusion matrix already computed, e.g. one a study's results hold.

    Parameters
    ----------
    matrix : array-like of shape (n_classes, n_classes)
        Counts (or fractions): true classes in rows, predicted in columns, as
        :func:`sklearn.metrics.confusion_matrix` returns them.
    display_labels : sequence of str, default=None
        Name of each class, in the order of the rows; their numbers when None.
    ax : matplotlib Axes, default=None
        Axes to draw into; a new figure is made when None.
    title : str, default=None
        Axes title.
    cmap : str, default="Blues"
        Colormap.
    values_format : str, default=None
        Format of the numbers in the cells (e.g. ``".2f"``); sklearn's choice
        when None.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from sklenet.plotting import plot_confusion_matrix_counts
    >>> fig = plot_confusion_matrix_counts([[5, 1], [0, 4]], display_labels=["a", "b"])
    >>> [t.get_text() for t in fig.axes[0].texts]
    ['5', '1', '0', '4']
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    matrix = np.asarray(matrix)
    n = len(matrix)
    fig, ax = _new_axes(ax, (max(4.5, 0.6 * n + 2.5), max(4.0, 0.6 * n + 1.8)))
    ConfusionMatrixDisplay(matrix, display_labels=display_labels).plot(
        ax=ax, cmap=cmap, colorbar=False, values_format=values_format,
        xticks_rotation=45 if display_labels is not None and n > 4 else "horizontal",
    )
    if title is not None:
        ax.set_title(title)
    return fig


def reliability_curve(y_true, proba, *, classes=None, n_bins=15):
    """The reliability diagram's points of the top-label confidence.

    Each sample's confidence is the highest probability it is given; the
    samples are put in ``n_bins`` equal-width bins of confidence, and each
    bin that holds samples gives its mean confidence and its accuracy (how
    often the most probable class is the true one), through
    :func:`sklearn.calibration.calibration_curve`. A calibrated model's
    points lie on the diagonal.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities, e.g. ``clf.predict_proba(X)``.
    classes : array-like of shape (n_classes,), default=None
        The label of each column of ``proba`` (``clf.classes_``); the column
        numbers when None.
    n_bins : int, default=15
        Number of equal-width confidence bins.

    Returns
    -------
    accuracy, confidence, counts : ndarray of shape (n_nonempty_bins,)
        Per non-empty bin, in increasing confidence: the accuracy, the mean
        confidence and the number of samples.

    Examples
    --------
    >>> import numpy as np
    >>> from sklenet.plotting import reliability_curve
    >>> proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.3, 0.7]])
    >>> accuracy, confidence, counts = reliability_curve([0, 1, 1, 1], proba, n_bins=5)
    >>> accuracy.tolist(), confidence.round(2).tolist(), counts.tolist()
    ([1.0, 1.0, 0.5], [0.6, 0.7, 0.9], [1, 1, 2])
    """
    from sklearn.calibration import calibration_curve

    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    classes = np.arange(proba.shape[1]) if classes is None else np.asarray(classes)
    if len(y_true) != len(proba):
        raise ValueError(f"y_true and proba hold {len(y_true)} and {len(proba)} samples; "
                         f"they must hold the same number.")
    predicted = np.argmax(proba, axis=1)
    confidence = proba[np.arange(len(proba)), predicted]
    correct = (classes[predicted] == y_true).astype(int)
    accuracy, mean_confidence = calibration_curve(correct, confidence, n_bins=n_bins,
                                                  strategy="uniform", pos_label=1)
    # The same bins as calibration_curve: ((b - 1) / n_bins, b / n_bins].
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], confidence), minlength=n_bins)
    return accuracy, mean_confidence, counts[counts > 0]


def plot_reliability(accuracy, confidence, *, counts=None, ece=None, ax=None, label=None,
                     title=None):
    """Reliability diagram: accuracy against confidence, with the diagonal of a
    calibrated model, through sklearn's ``CalibrationDisplay``.

    Parameters
    ----------
    accuracy, confidence : array-like of shape (n_bins,)
        Per confidence bin, what :func:`reliability_curve` returns.
    counts : array-like of shape (n_bins,), default=None
        Samples per bin; drawn as a histogram under the curve when given.
    ece : float, default=None
        Expected calibration error, shown in the legend when given.
    ax : matplotlib Axes, default=None
        Axes to draw into; a new figure is made when None.
    label : str, default=None
        Legend entry of the curve.
    title : str, default=None
        Axes title.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from sklenet.plotting import plot_reliability
    >>> fig = plot_reliability([0.5, 0.9], [0.6, 0.95], ece=0.07, label="model")
    >>> fig.axes[0].get_legend_handles_labels()[1]
    ['Perfectly calibrated', 'model (ECE 7.00%)']
    """
    from sklearn.calibration import CalibrationDisplay

    fig, ax = _new_axes(ax, (4.5, 4.2))
    name = label or "model"
    if ece is not None:
        name = f"{name} (ECE {100 * ece:.2f}%)"
    CalibrationDisplay(np.asarray(accuracy), np.asarray(confidence), None).plot(
        ax=ax, name=name)
    if counts is not None:
        counts = np.asarray(counts, dtype=float)
        share = counts / counts.sum() if counts.sum() else counts
        ax.bar(confidence, share, width=0.04, alpha=0.3, color="gray",
               label="share of samples")
        ax.legend(loc="upper left")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (highest predicted probability)")
    ax.set_ylabel("accuracy")
    if title is not None:
        ax.set_title(title)
    return fig


def _label_name(label, target_names):
    return str(label) if target_names is None else str(target_names[int(label)])


def _symmetric_norm(values):
    """A colour scale centred on 0, so that the diverging colormap shows the sign."""
    from matplotlib.colors import Normalize

    vmax = float(np.max(np.abs(values))) or 1.0
    return Normalize(-vmax, vmax)


def _bare(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def plot_learned_features(clf, X, y, *, target_names=None, max_classes=10, title=None,
                          cmap="RdBu_r"):
    """What LeNet-5 learned: C1's filters and the C1 and C3 feature maps of one image per class.

    The top panel shows the six 5x5 filters of C1 (of the first input
    channel). Below, one row per class holds the first image of that class
    in ``X`` as the network sees it, then its six C1 feature maps (28x28)
    and its sixteen C3 feature maps (10x10). Feature maps are the outputs
    of the convolutions, before the activation and the pooling, taken with
    forward hooks on ``net_.module_.lenet5.c1`` and ``.c3`` during one
    prediction pass. Weights and each layer's maps share a colour scale
    centred on zero (red positive, blue negative), shown by a colour bar.

    Parameters
    ----------
    clf : fitted LeNet5Classifier
        The network to look into.
    X : array-like of images
        Images in any form ``clf`` accepts (e.g. test images).
    y : array-like of shape (n_samples,)
        Their labels, to pick one image per class.
    target_names : sequence of str, default=None
        Name of each label (indexed by the label); the labels themselves
        when None.
    max_classes : int, default=10
        Show at most this many classes (the first ones of ``clf.classes_``
        present in ``y``).
    title : str, default=None
        Figure title.
    cmap : str, default="RdBu_r"
        Diverging colormap of the weights and feature maps.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``6 + 1`` axes for the filters and their colour bar, then ``23``
        per class (the image, 6 C1 and 16 C3 maps) and two colour bars.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklenet import LeNet5Classifier
    >>> from sklenet.plotting import plot_learned_features
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = LeNet5Classifier(max_epochs=1, random_state=0).fit(X[:300], y[:300])
    >>> fig = plot_learned_features(clf, X[300:], y[300:], max_classes=3)
    >>> len(fig.axes), fig.axes[7].get_title()
    (78, '0')
    """
    from ._training import layer_outputs

    plt = _pyplot()
    y = np.asarray(y)
    classes = [c for c in clf.classes_ if np.any(y == c)][:max_classes]
    if not classes:
        raise ValueError("y holds none of the classes the classifier knows.")
    rows = [int(np.flatnonzero(y == c)[0]) for c in classes]
    images = _network_input(clf, np.asarray(X)[rows])
    maps = layer_outputs(clf.net_, images, ["c1", "c3"])
    filters = clf.net_.module_.lenet5.c1.weight.detach().float().cpu().numpy()[:, 0]
    c1, c3 = maps["c1"], maps["c3"]

    n_cols = 1 + c1.shape[1] + c3.shape[1]
    fig = plt.figure(figsize=(0.55 * n_cols + 0.5, 2.9 + 0.6 * len(classes)),
                     layout="constrained")
    # Small gaps: two dozen small maps a row need the room more than the margins do.
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.01, hspace=0.01)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.6, 1.3 + 0.6 * len(classes)])
    axes = top.subplots(1, len(filters), squeeze=False)[0]
    norm = _symmetric_norm(filters)
    for i, (ax, kernel) in enumerate(zip(axes, filters)):
        im = ax.imshow(kernel, cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_title(f"filter {i + 1}", fontsize=8)
        _bare(ax)
    top.colorbar(im, ax=axes, label="weight", shrink=0.9)
    top.suptitle("C1: the six 5x5 filters")

    grid = bottom.subplots(len(classes), n_cols, squeeze=False)
    pictures = images.float().numpy()[:, 0]
    layers = [("C1", c1, 1), ("C3", c3, 1 + c1.shape[1])]
    norms = {name: _symmetric_norm(values) for name, values, _ in layers}
    for r, label in enumerate(classes):
        ax = grid[r, 0]
        ax.imshow(pictures[r], cmap="gray_r", interpolation="nearest")
        ax.set_title(_label_name(label, target_names), fontsize=8)
        _bare(ax)
        for name, values, first in layers:
            for k in range(values.shape[1]):
                ax = grid[r, first + k]
                ax.imshow(values[r, k], cmap=cmap, norm=norms[name], interpolation="nearest")
                _bare(ax)
                if r == 0:
                    ax.set_title(f"{name} {k + 1}", fontsize=7)
    for name, values, first in layers:
        mappable = plt.cm.ScalarMappable(norm=norms[name], cmap=cmap)
        bottom.colorbar(mappable, ax=grid[:, first:first + values.shape[1]].ravel().tolist(),
                        location="bottom", shrink=0.8, label=f"{name} output")
    bottom.suptitle("C1 and C3 feature maps (convolution outputs) of one image per class")
    if title:
        fig.suptitle(title)
    return fig


def _network_input(clf, X):
    """``X`` as the ``(n, C, H, W)`` tensor of images that ``clf`` feeds its network."""
    import torch
    from sklearn.utils import check_array

    from ._input import flatten_images

    rows, _ = flatten_images(X)
    rows = check_array(rows, dtype=(np.float32, np.uint8), order="C")
    if rows.shape[1] != clf.n_features_in_:
        raise ValueError(f"X has {rows.shape[1]} features per image, but {type(clf).__name__} "
                         f"was fitted on {clf.n_features_in_}.")
    return torch.from_numpy(rows).view((-1,) + tuple(clf.image_shape_))


def most_confident_errors(y_true, proba, *, classes=None, n=12):
    """The ``n`` most confident wrong predictions, most confident first.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities, e.g. ``clf.predict_proba(X)``.
    classes : array-like of shape (n_classes,), default=None
        The label of each column of ``proba`` (``clf.classes_``); the column
        numbers when None.
    n : int, default=12
        How many mistakes to return, at most.

    Returns
    -------
    rows : ndarray of int
        The rows of the mistakes; ties keep the order of the rows.
    predicted : ndarray
        The label predicted for each of them.
    confidence : ndarray of float
        The probability given to that label.

    Examples
    --------
    >>> import numpy as np
    >>> from sklenet.plotting import most_confident_errors
    >>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> rows, predicted, confidence = most_confident_errors([0, 0, 1], proba)
    >>> rows.tolist(), predicted.tolist(), confidence.tolist()
    ([1, 2], [1, 0], [0.8, 0.6])
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba)
    classes = np.arange(proba.shape[1]) if classes is None else np.asarray(classes)
    predicted = np.argmax(proba, axis=1)
    confidence = proba[np.arange(len(proba)), predicted]
    wrong = np.flatnonzero(classes[predicted] != y_true)
    rows = wrong[np.argsort(-confidence[wrong], kind="stable")][:n]
    return rows, classes[predicted[rows]], confidence[rows]


def plot_misclassified(X, y_true, proba, *, classes=None, target_names=None, n_images=12,
                       n_cols=6, image_shape=None, title=None, cmap="gray_r"):
    """The test images a model got wrong with the most confidence.

    Each image is titled with its true class, the predicted class and the
    probability the model gave to it.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), (n_samples, h, w) \
            or (n_samples, channels, h, w)
        Images; flat rows must be square unless ``image_shape`` is given.
    y_true : array-like of shape (n_samples,)
        True labels.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities, e.g. ``clf.predict_proba(X)``.
    classes : array-like of shape (n_classes,), default=None
        The label of each column of ``proba`` (``clf.classes_``); the column
        numbers when None.
    target_names : sequence of str, default=None
        Name of each label (indexed by the label); the labels themselves
        when None.
    n_images : int, default=12
        How many mistakes to show, at most.
    n_cols : int, default=6
        Images per row.
    image_shape : tuple of int, default=None
        ``(height, width)`` of flat rows that are not square.
    title : str, default=None
        Figure title.
    cmap : str, default="gray_r"
        Colormap of the images.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sklenet.plotting import plot_misclassified
    >>> X = np.eye(4)  # four 2x2 images
    >>> proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    >>> fig = plot_misclassified(X, [0, 0, 1, 1], proba, target_names=["cat", "dog"])
    >>> [ax.get_title() for ax in fig.axes if ax.get_title()]
    ['true: cat\\npredicted: dog (80%)', 'true: dog\\npredicted: cat (60%)']
    """
    images = _as_images(X, image_shape)
    y_true = np.asarray(y_true)
    if not len(images) == len(y_true) == len(proba):
        raise ValueError(f"X, y_true and proba hold {len(images)}, {len(y_true)} and "
                         f"{len(proba)} samples; they must hold the same number.")
    rows, predicted, confidence = most_confident_errors(y_true, proba, classes=classes,
                                                         n=n_images)
    return plot_mistakes(
        images[rows], [_label_name(t, target_names) for t in y_true[rows]],
        [_label_name(p, target_names) for p in predicted], confidence,
        n_cols=n_cols, title=title, cmap=cmap)


def plot_mistakes(X, true_names, predicted_names, confidence, *, image_shape=None, n_cols=6,
                  title=None, cmap="gray_r"):
    """Mistakes already chosen, e.g. those a study's results recorded.

    Each image is titled with its true class, the predicted class and the
    probability the model gave to it; :func:`plot_misclassified` chooses
    the mistakes from a model's probabilities and draws them with this.

    Parameters
    ----------
    X : array-like of shape (n_images, n_features), (n_images, h, w) \
            or (n_images, channels, h, w)
        The images; flat rows must be square unless ``image_shape`` is given.
    true_names, predicted_names : sequence of str
        The true and the predicted class of each image.
    confidence : sequence of float
        The probability given to each predicted class.
    image_shape : tuple of int, default=None
        ``(height, width)`` of flat rows that are not square.
    n_cols : int, default=6
        Images per row.
    title : str, default=None
        Figure title.
    cmap : str, default="gray_r"
        Colormap of the images.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sklenet.plotting import plot_mistakes
    >>> fig = plot_mistakes(np.eye(4)[:1], ["cat"], ["dog"], [0.8])
    >>> [ax.get_title() for ax in fig.axes]
    ['true: cat\\npredicted: dog (80%)']
    """
    images = _as_images(X, image_shape)
    if not len(images) == len(true_names) == len(predicted_names) == len(confidence):
        raise ValueError(f"X, true_names, predicted_names and confidence hold "
                         f"{len(images)}, {len(true_names)}, {len(predicted_names)} and "
                         f"{len(confidence)} entries; they must hold the same number.")
    plt = _pyplot()
    n_cols = max(1, min(n_cols, len(images)))
    n_rows = max(1, -(-len(images) // n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.7 * n_cols, 2.0 * n_rows + 0.5),
                             squeeze=False, layout="constrained")
    if not len(images):
        axes[0, 0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    for i, ax in enumerate(axes.ravel()):
        _bare(ax)
        if i >= len(images):
            ax.set_axis_off()
            continue
        ax.imshow(images[i], cmap=cmap, interpolation="nearest")
        ax.set_title(f"true: {true_names[i]}\npredicted: {predicted_names[i]} "
                     f"({confidence[i]:.0%})", fontsize=8, color="firebrick")
    fig.suptitle((title or "The most confident mistakes")
                 + "\n(true class; predicted class and the probability given to it)")
    return fig
