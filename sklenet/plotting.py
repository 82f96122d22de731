"""Figures of the study: sample images, learning curves and the confusion matrix.

Every function takes data (not file names), draws with matplotlib and returns
the :class:`~matplotlib.figure.Figure`; pass ``ax`` to draw into an existing
axes instead. Nothing here calls ``plt.show()``; save a figure with
``fig.savefig(path)``. matplotlib is imported lazily, and when no backend has
been chosen yet the non-interactive ``Agg`` backend is used, so the functions
work on machines without a display.
"""

import sys

import numpy as np

__all__ = ["plot_samples", "plot_history", "plot_confusion_matrix"]


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


def plot_history(history, metric="loss", *, ax=None, label=None, title=None):
    """Training and validation curves per epoch (Fig. 2: loss, Fig. 3: accuracy).

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

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from sklenet.plotting import plot_history
    >>> history = [{"epoch": 1, "train_loss": 0.9, "valid_loss": 0.7},
    ...            {"epoch": 2, "train_loss": 0.5, "valid_loss": 0.6}]
    >>> fig = plot_history(history, "loss")
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['train', 'validation']
    """
    if metric not in ("loss", "accuracy"):
        raise ValueError(f"metric must be 'loss' or 'accuracy', got {metric!r}.")
    if hasattr(history, "history_"):
        history = history.history_
    history = list(history)
    if not history:
        raise ValueError("history is empty: nothing to plot.")
    fig, ax = _new_axes(ax, (5.5, 3.8))
    prefix = "" if label is None else f"{label}: "
    lines = []
    for part, name, style in (("train", "train", "-"), ("valid", "validation", "--")):
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
    return _draw_confusion_matrix(matrix, display_labels, ax=ax, title=title, cmap=cmap,
                                  values_format=None if normalize is None else ".2f")


def _draw_confusion_matrix(matrix, display_labels=None, *, ax=None, title=None,
                           cmap="Blues", values_format=None):
    """Draw a confusion matrix already computed (a study's results hold the counts)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(matrix)
    fig, ax = _new_axes(ax, (max(4.5, 0.6 * n + 2.5), max(4.0, 0.6 * n + 1.8)))
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=display_labels).plot(
        ax=ax, cmap=cmap, colorbar=False, values_format=values_format,
        xticks_rotation=45 if display_labels is not None and n > 4 else "horizontal",
    )
    if title is not None:
        ax.set_title(title)
    return fig
