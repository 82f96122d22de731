"""The scikit-learn estimator :class:`LeNet5Classifier`.

It owns the sklearn side: parameters, validation of data and labels, the
validation split, weights and the fitted attributes. Everything about the
skorch net (building, training, snapshots, inference) is in
:mod:`sklenet._training`.

File formats and exporters (:mod:`sklenet.persistence`, :mod:`sklenet.export`)
reach a fitted estimator through one seam defined here, never through its
private attributes: :func:`fitted_model` describes it as a
:class:`FittedModel` (the one writer), :func:`rebuild_estimator` builds an
estimator from one (the one reader), and :func:`check_params` runs the
parameter checks of ``fit`` without fitting.
"""

import dataclasses
import inspect
import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils import (
    check_random_state,
    compute_class_weight,
)
from sklearn.utils._param_validation import (
    InvalidParameterError,
    Interval,
    StrOptions,
)
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import _training
from ._batching import TensorSubset, auto_batch_size
from ._calibration import fit_temperature
from ._input import (
    channel_mean_std,
    check_classes,
    check_sample_shape,
    check_targets,
    check_validation_data,
    decode_predictions,
    encode_targets,
    flatten_images,
    has_loss_weight,
    resolve_image_shape,
    scale_loss_weights,
    split_validation,
    warn_if_scaled_differently,
)
from ._options import (
    ACTIVATIONS,
    DEVICES,
    LR_SCHEDULES,
    OPTIMIZERS,
    POOLINGS,
    INFERENCE_PRECISIONS,
    PRECISIONS,
    available_device,
    resolve_device,
)
from ._speed import resolve_precision

__all__ = ["LeNet5Classifier", "FittedModel", "fitted_model", "rebuild_estimator",
           "check_params"]

#: skorch's history keys renamed in ``history_``; other scalars recorded by
#: callbacks (``EpochScoring("f1_macro")``...) keep their names.
_HISTORY_KEYS = {
    "train_loss": "train_loss",
    "train_acc": "train_accuracy",
    "valid_loss": "valid_loss",
    "valid_acc": "valid_accuracy",
    "lr": "lr",
    "dur": "duration",
}


def _skorch_bookkeeping(key):
    """History keys skorch records for itself: batch counts, and the "best so
    far" flags of the standard scores (a user's scoring keeps its flag)."""
    return key.endswith("_batch_count") or key.removesuffix("_best") in _HISTORY_KEYS


def _history_record(row):
    """One epoch of the net's history as ``history_`` shows it: the renamed
    standard keys (None when not recorded) and every other scalar value."""
    record = {"epoch": row["epoch"]}
    record.update({name: None if row.get(key) is None else float(row[key])
                   for key, name in _HISTORY_KEYS.items()})
    record.update({key: value.item() if isinstance(value, np.generic) else value
                   for key, value in row.items()
                   if key not in record and not _skorch_bookkeeping(key)
                   and isinstance(value, (bool, Real, str, np.generic))})
    return record


def _working_copy(estimator):
    """A shallow copy of ``estimator`` with an attribute dict of its own.

    A training call runs on the copy and :func:`_commit` hands the copy's dict
    to the estimator in one assignment, so every fitted attribute changes at
    once and only when the call completes: an exception or Ctrl-C anywhere
    before leaves the estimator as it was, and a ``predict`` running in another
    thread sees the old model or the new one, never a mix. Training never
    mutates the objects the attributes refer to (it builds a new net).
    """
    work = object.__new__(type(estimator))
    work.__dict__.update(estimator.__dict__)
    return work


def _commit(estimator, work):
    estimator.__dict__ = work.__dict__
    return estimator


def _as_tensor(X):
    with warnings.catch_warnings():
        # Read-only arrays (memmaps) are fine: the data is only ever read.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(X)


def _draw_seed(random_state):
    """The one seed a training call draws from ``random_state``.

    An int always gives the same seed; a ``RandomState`` is consumed once per
    call (as in scikit-learn, repeated fits then differ); None draws from
    numpy's global generator. Everything random in the call derives from it:
    the weights and the validation split from the seed itself, shuffling,
    augmentation and dropout from the seed plus the epochs already trained, so
    a continued fit does not replay them.
    """
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _usable_optimizer(optimizer):
    """Whether the optimizer class ``optimizer`` can train LeNet5Classifier's network:
    a ``torch.optim.Optimizer`` that takes ``lr`` and ``weight_decay``, works on
    dense gradients and steps without a closure."""
    if not issubclass(optimizer, torch.optim.Optimizer) or issubclass(
            optimizer, torch.optim.SparseAdam):
        return False
    accepted = inspect.signature(optimizer).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    closure = inspect.signature(optimizer.step).parameters.get("closure")
    return (takes_any or {"lr", "weight_decay"} <= set(accepted)) and not (
        closure is not None and closure.default is inspect.Parameter.empty)


class LeNet5Classifier(ClassifierMixin, BaseEstimator):
    """LeNet-5 convolutional network classifier, trained with PyTorch through skorch.

    Images come in as flat rows ``(n_samples, height * width)``, as
    ``(n_samples, height, width)`` or ``(n_samples, channels, height, width)``
    arrays, lists or DataFrames, with uint8 0-255 or float pixels: the input
    scale is learned from the training data. Images of any other size than 28x28
    are resized to 28x28 inside the network. Flat rows whose length is not a
    perfect square are read as ``1 x n_features`` strips (any tabular data then
    trains, which is rarely what a CNN is for). Labels may be of any kind, or
    one-hot rows; predictions come back in the same form.

    Parameters
    ----------
    max_epochs : int, default=9
        Number of passes over the training data.
    batch_size : int or "auto", default="auto"
        Samples per mini-batch. ``"auto"``: the power of two nearest
        ``n_train / 200`` (about 200 steps per epoch), clipped to [32, 256],
        where ``n_train`` is the number of training images after the
        validation split (1,077 digits: 32; Fashion-MNIST's 48,000: 256).
        ``batch_size_`` holds the value used.
    lr : float, default=6e-3
        Learning rate: the initial one when ``lr_schedule="cosine"``, the peak
        one when ``lr_schedule="onecycle"``.
    optimizer : {"adam", "adamw", "sgd"} or torch optimizer class, default="adamw"
        ``"adamw"`` is Adam with decoupled weight decay; ``"sgd"`` uses
        momentum 0.9. A ``torch.optim.Optimizer`` subclass is
        instantiated with ``lr`` and ``weight_decay`` (optimizers whose ``step``
        needs a closure, such as LBFGS, are not supported).
    lr_schedule : {"onecycle", "cosine", "constant"}, default="onecycle"
        ``"onecycle"`` sets the rate before every batch: a linear warm-up from
        ``lr / 25`` to ``lr`` over the first 15% of the steps of the ``fit``,
        then a cosine decay to 0. ``"cosine"`` decays it from ``lr`` towards 0
        over the ``max_epochs`` of the ``fit`` (one value per epoch). Every
        ``fit``, a warm-start one included, runs its schedule afresh from
        ``lr``; ``partial_fit`` always trains at ``lr``.
    weight_decay : float, default=0.05
        Weight decay passed to the optimizer (decoupled with ``"adamw"``, an
        L2 penalty with ``"adam"`` and ``"sgd"``).
    label_smoothing : float in [0, 1), default=0.0
        Label smoothing of the cross-entropy loss: the targets put
        ``1 - label_smoothing`` on the true class and spread
        ``label_smoothing`` evenly over all classes. The reported losses are
        the smoothed ones in training, the plain log-loss in validation.
        Smoothing makes the network under-confident in a way the temperature
        of ``calibration`` cannot undo (docs/results.md, "Calibration").
    ema_decay : float in [0, 1), default=0.0
        Keep an exponential moving average of the weights, updated after every
        training step with this decay, and make it the model's weights at the
        end of each ``fit``. 0 disables it. Validation scores during training
        are those of the raw weights.
    validation_fraction : float or None, default=0.2
        Fraction of the training data held out, stratified by class, to report
        validation loss and accuracy each epoch (the study's 20% split) and to
        drive early stopping. ``0`` or ``None`` trains on everything. Ignored
        when ``fit`` receives ``validation_data``.
    calibration : {"temperature"} or None, default="temperature"
        Calibrate ``predict_proba`` and ``predict_log_proba`` by temperature
        scaling (Guo et al. 2017): after training, ``fit`` finds the one
        temperature ``T`` that minimizes the (weighted) log-loss of the
        validation rows, and the probabilities become ``softmax(logits / T)``.
        A scalar moves no ``argmax``: ``predict`` and accuracy are unchanged.
        It corrects a network's systematic over-confidence (``T > 1``) or,
        with ``label_smoothing``, under-confidence (``T < 1``), not the shape
        label smoothing gives the probabilities. It costs one inference pass
        over the validation rows (about 1% of the default's ``fit``). It
        needs rows the network did not train on: without a validation set
        (``validation_fraction=0`` or ``None``, too few samples to split off
        any, ``partial_fit``) the probabilities are not calibrated and
        ``temperature_`` is 1.0, silently (a warning would fire on every
        such fit of the default). ``None``: never calibrate.
    early_stopping : bool, default=False
        Stop when the validation loss (the training loss without a validation
        set) has not improved for ``patience`` epochs, and keep the weights of
        the best epoch.
    patience : int, default=5
        Epochs without improvement tolerated by early stopping.
    activation : {"tanh", "relu"}, default="tanh"
        Non-linearity of the network (the study uses tanh).
    pooling : {"max", "avg"}, default="max"
        Subsampling layers S2 and S4 (the study averages: ``pooling="avg"``
        gives the study's configuration).
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss: ``{label: weight}``, or
        ``"balanced"`` for ``n_samples / (n_classes * np.bincount(y))`` over the
        training rows (sklearn's ``compute_class_weight``). Multiplied with
        ``sample_weight``. ``partial_fit`` accepts a dict only.
    dropout : float, default=0.0
        Dropout probability before the two fully connected layers.
    random_shift : int, default=0
        Data augmentation: move each training image by up to this many pixels.
    horizontal_flip : bool, default=False
        Data augmentation: mirror training images left-right at random (right
        for clothes, wrong for digits).
    random_erasing : float in [0, 1], default=0.0
        Data augmentation (random erasing, "cutout"): with this probability,
        set a random rectangle covering 2-33% of a training image to 0 (the
        background of MNIST-like images), after any shift and flip.
    test_time_flip : bool, default=False
        Predict from the mean of the logits of each image and of its mirror
        image (test-time augmentation; twice the prediction cost). Suits models
        trained with ``horizontal_flip=True``.
    image_shape : tuple of int or None, default=None
        ``(height, width)`` or ``(channels, height, width)`` of each sample when
        ``X`` holds flat rows that are not square grayscale images. Image
        arrays are read channels-first, ``(n_samples, channels, height,
        width)``; channels-last arrays ``(n_samples, height, width, channels)``
        are refused with a message saying how to transpose them.
    precision : {"float32", "bfloat16", "auto"}, default="auto"
        Arithmetic of the convolutions in training (prediction is set by
        ``inference_precision``). ``"bfloat16"`` runs them under
        ``torch.autocast`` in bfloat16 (pooling, activations, fully connected
        layers, weights, loss and optimizer stay float32): about 1.2x faster
        on CPUs with AMX or AVX512-BF16, Fashion-MNIST test accuracy within a
        few tenths of a point of float32. ``"auto"`` (the default) uses
        bfloat16 only where it is native (such CPUs, CUDA devices that support
        it) and float32 elsewhere, so the trained weights depend on the
        hardware: an int ``random_state`` gives the same model on every run on
        one machine, not across CPUs. ``"float32"`` trains with the same
        arithmetic everywhere.
    inference_precision : {"float32", "bfloat16"}, default="float32"
        Arithmetic of ``predict``, ``predict_proba`` and ``extract_features``.
        ``"float32"`` (true float32 on CUDA too, without TF32) gives one
        answer for the same fitted weights on every machine and device and
        in the exported ONNX model (within 1e-5), whatever ``precision``
        trained them. ``"bfloat16"`` autocasts the convolutions, for speed
        where bfloat16 is native; its probabilities differ from float32's by
        up to a few 1e-3. Predictions stay independent of the batch they come
        in either way.
    channels_last : bool, default=True
        Keep images and convolution weights in NHWC memory layout, which
        oneDNN's convolutions and the pooling kernels process much faster on
        CPUs than NCHW. Same float32 arithmetic (results differ only in rounding).
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train and predict; ``"auto"`` picks CUDA when available. A
        model trained on CUDA loads and predicts on a CPU-only machine (with a
        warning); ``net_.device`` tells where the fitted model runs.
    n_threads : int or None, default=None
        PyTorch CPU threads of each ``fit``, ``predict`` and ``extract_features``
        call. ``None`` picks automatically, never more than the caller allows
        (``torch.get_num_threads()``: ``OMP_NUM_THREADS``,
        ``torch.set_num_threads``, threadpoolctl limits, joblib's limits in
        its workers; capped by ``joblib.cpu_count()``): one thread for steps
        (batches, inference chunks) of fewer than 128 images, whose kernels
        are too short to share, and for calls on fewer than 8,192 images (all
        epochs together); else no more than the CPUs idle at the start of the
        call (watched for 50 ms), since on busy cores each extra thread makes
        every kernel wait for a descheduled one. An int is used as given; ``-1``
        means the limit, ``-2`` one less. The caller's thread count is
        restored after each call. The thread count changes the order of the
        sums, hence the last bits of the weights: pin it for bit-identical
        fits on a machine whose load varies.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, the validation split, shuffling, dropout
        and augmentation. An int gives identical predictions on every run on
        the same machine with the same thread count (see ``n_threads``). A fit
        draws from its own generators only, never from torch's global one, so
        fits in parallel threads are reproducible too.
    verbose : int, default=0
        0 is silent; 1 prints one line per epoch (loss, accuracy, time);
        2 also shows a progress bar over the batches of each epoch.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit`` call instead
        of starting afresh (when classes and image shape are unchanged). The
        weights, optimizer state and history carry over; every training
        setting changed with ``set_params`` (``lr``, ``optimizer``,
        ``batch_size``, ``dropout``, ``callbacks``...) takes effect. Changing
        ``activation`` or ``pooling`` raises a ``ValueError``: those need a
        fresh fit.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks, or ``(name, callback)`` pairs, set up by skorch
        as on any skorch net (so ``Checkpoint`` / ``LoadInitState`` resume
        training). Scoring callbacks see class indices from ``net.predict`` and
        probabilities from ``net.predict_proba``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (column numbers when fitted on one-hot rows).
    n_features_in_ : int
        Number of values per sample (``channels * height * width``).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when ``X`` was a DataFrame with string column names.
    image_shape_ : tuple of int
        ``(channels, height, width)`` the samples were read as.
    history_ : list of dict
        One record per epoch: ``epoch``, ``train_loss``, ``train_accuracy``,
        ``valid_loss``, ``valid_accuracy`` (None without validation),
        ``lr`` (the learning rate at the end of the epoch) and ``duration`` in seconds.
    n_iter_ : int
        Number of epochs trained so far.
    batch_size_ : int
        The batch size of the last training call (``batch_size`` resolved).
    temperature_ : float
        The temperature dividing the logits in ``predict_proba`` and
        ``predict_log_proba``. Each ``fit`` (a warm-start one included)
        fits it afresh on its validation rows for the network it trained;
        1.0 with ``calibration=None`` or without validation rows, and after
        ``partial_fit``, whose network a temperature fitted earlier no longer
        describes.
    net_ : sklenet._training.LeNet5Net
        The fitted skorch net (a ``NeuralNetClassifier`` working on class
        indices); ``net_.module_`` is the PyTorch module (input standardization
        followed by :class:`~sklenet.LeNet5`). Pickles (pickle, joblib, skops)
        hold it as plain arrays, not torch objects.

    Notes
    -----
    Every ``fit`` and ``partial_fit`` either completes or changes nothing: on
    any exception, Ctrl-C (``KeyboardInterrupt``, which is re-raised) included,
    the estimator keeps its weights, optimizer state, history and fitted
    attributes, and a first fit that is interrupted leaves it unfitted. Early
    stopping still ends a fit normally. See ``docs/reliability.md``.

    See Also
    --------
    sklenet.LeNet5 : The PyTorch module.
    sklearn.neural_network.MLPClassifier : A fully connected network.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from sklenet import LeNet5Classifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> clf = LeNet5Classifier(random_state=0).fit(X_train, y_train)
    >>> clf.image_shape_
    (1, 8, 8)
    >>> clf.predict(X_test[:5]).shape
    (5,)
    >>> clf.score(X_test, y_test) > 0.9
    True
    """


    _parameter_constraints = {
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "lr_schedule": [StrOptions(set(LR_SCHEDULES))],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "ema_decay": [Interval(Real, 0, 1, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "calibration": [StrOptions({"temperature"}), None],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "pooling": [StrOptions(set(POOLINGS))],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "random_shift": [Interval(Integral, 0, None, closed="left")],
        "horizontal_flip": ["boolean"],
        "random_erasing": [Interval(Real, 0, 1, closed="both")],
        "test_time_flip": ["boolean"],
        "image_shape": [tuple, list, None],
        "precision": [StrOptions(set(PRECISIONS))],
        "inference_precision": [StrOptions(set(INFERENCE_PRECISIONS))],
        "channels_last": ["boolean"],
        "device": [StrOptions(set(DEVICES))],
        "n_threads": [Interval(Integral, 1, None, closed="left"),
                      Interval(Integral, None, -1, closed="right"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "callbacks": [list, None],
    }

    def __init__(
        self,
        *,
        max_epochs=9,
        batch_size="auto",
        lr=6e-3,
        optimizer="adamw",
        lr_schedule="onecycle",
        weight_decay=0.05,
        label_smoothing=0.0,
        ema_decay=0.0,
        validation_fraction=0.2,
        calibration="temperature",
        early_stopping=False,
        patience=5,
        activation="tanh",
        pooling="max",
        class_weight=None,
        dropout=0.0,
        random_shift=0,
        horizontal_flip=False,
        random_erasing=0.0,
        test_time_flip=False,
        image_shape=None,
        precision="auto",
        inference_precision="float32",
        channels_last=True,
        device="auto",
        n_threads=None,
        random_state=None,
        verbose=0,
        warm_start=False,
        callbacks=None,
    ):
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.ema_decay = ema_decay
        self.validation_fraction = validation_fraction
        self.calibration = calibration
        self.early_stopping = early_stopping
        self.patience = patience
        self.activation = activation
        self.pooling = pooling
        self.class_weight = class_weight
        self.dropout = dropout
        self.random_shift = random_shift
        self.horizontal_flip = horizontal_flip
        self.random_erasing = random_erasing
        self.test_time_flip = test_time_flip
        self.image_shape = image_shape
        self.precision = precision
        self.inference_precision = inference_precision
        self.channels_last = channels_last
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, validation_data=None):
        """Train LeNet-5 on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, height, width) \
                or (n_samples, channels, height, width)
            Training images.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Labels, or one-hot rows.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss (a weighted mean, so a weight of
            2 counts as two copies of the sample). Held-out validation rows
            keep their weights: the validation loss and accuracy are weighted.
        validation_data : tuple (X_val, y_val) or (X_val, y_val, w_val), default=None
            A validation set to use instead of splitting ``validation_fraction``
            off ``X``. Inside a ``Pipeline`` it reaches this step untransformed
            by the steps before it: pass it only where those steps don't change
            the images.

        Returns
        -------
        self : LeNet5Classifier
            The fitted estimator.
        """
        self._check_settings()
        return _commit(self, _working_copy(self)._fit(X, y, sample_weight, validation_data))

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch on ``(X, y)`` at the learning rate ``lr``.

        Continues from the current weights and optimizer state; no validation
        split is made and no learning-rate schedule applies. With no validation
        rows to calibrate on, ``temperature_`` becomes 1.0: a temperature
        fitted for the earlier weights no longer describes the new ones (the
        next ``fit`` with validation rows fits one again).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, height, width) \
                or (n_samples, channels, height, width)
            Training images.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Labels, or one-hot rows.
        classes : array-like of shape (n_classes,), default=None
            All the classes that may ever appear. Required on the first call
            (unless ``y`` is one-hot); on later calls it must be omitted or equal.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the loss.

        Returns
        -------
        self : LeNet5Classifier
            The estimator, trained one epoch more.
        """
        # Validated on every call, not only the first (as _fit_context would):
        # settings changed with set_params take effect in the next epoch.
        self._validate_params()
        self._check_settings()
        if self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' is not supported by partial_fit: the class "
                "frequencies of one batch are not those of the data. Pass a dict of "
                "class weights, or use fit."
            )
        first_call = not hasattr(self, "net_")
        if classes is not None:
            classes = check_classes(classes)
        if not first_call and classes is not None and not np.array_equal(
            classes, self.classes_
        ):
            raise ValueError(
                f"classes={classes.tolist()} differs from the classes of the "
                f"first partial_fit call, {self.classes_.tolist()}. Refit with fit() to "
                f"change the classes."
            )
        work = _working_copy(self)
        return _commit(self, work._partial_fit(X, y, classes, sample_weight, first_call))

    def _fit(self, X, y, sample_weight, validation_data):
        X, y, sample_shape = self._check_X_y(X, y, reset=True)
        image_shape = self._image_shape(X, sample_shape)
        y, classes, one_hot = encode_targets(y)
        if len(classes) < 2:
            raise ValueError(
                f"y contains only one class ({classes[0]!r}); a classifier needs "
                f"samples of at least 2 classes."
            )
        continuing = (
            self.warm_start
            and hasattr(self, "net_")
            and image_shape == self.image_shape_
            and np.array_equal(classes, self.classes_)
        )
        seed = _draw_seed(self.random_state)
        train_idx, valid_idx = np.arange(len(X)), None
        if validation_data is None and self.validation_fraction:
            train_idx, valid_idx = split_validation(y, self.validation_fraction, seed)
        if sample_weight is not None:
            # Scaled first, so that "balanced" class weights count them without overflow.
            sample_weight = scale_loss_weights(_check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            ))
        class_weights = self._class_weights(
            classes, y[train_idx], None if sample_weight is None else sample_weight[train_idx]
        )
        weight = self._weights(sample_weight, X, y, class_weights)
        self._require_loss_weight(weight, train_idx, sample_weight, "every training sample")
        valid = None if valid_idx is None else (X, y, valid_idx, weight)
        if valid_idx is not None:
            self._require_loss_weight(
                weight, valid_idx, sample_weight,
                f"every sample of the validation split (validation_fraction="
                f"{self.validation_fraction}), whose loss is then undefined; pass "
                f"validation_data")
        if validation_data is not None:
            X_val, y_val, w_val = check_validation_data(
                validation_data, X.shape[1], image_shape, classes, one_hot
            )
            warn_if_scaled_differently(X[train_idx], X_val)
            rows = np.arange(len(X_val))
            weight_val = self._weights(w_val, X_val, y_val, class_weights)
            self._require_loss_weight(
                weight_val, rows, w_val,
                "every sample of validation_data, whose loss is then undefined",
                weight_name="the weights of validation_data")
            valid = (X_val, y_val, rows, weight_val)
        self.image_shape_ = image_shape
        self.classes_ = classes
        self._one_hot = one_hot
        self._train(X, y, weight, train_idx, valid, epochs=self.max_epochs,
                    schedule=True, continuing=continuing, seed=seed)
        return self

    def _partial_fit(self, X, y, classes, sample_weight, first_call):
        X, y, sample_shape = self._check_X_y(X, y, reset=first_call)
        if first_call:
            known = classes
            if known is None and np.ndim(y) == 1:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit, e.g. "
                    "classes=np.unique(y_all)."
                )
            y, found, one_hot = encode_targets(y, known)
            if len(found) < 2:
                raise ValueError("classes must name at least 2 classes.")
            self.image_shape_ = self._image_shape(X, sample_shape)
            self.classes_ = found
            self._one_hot = one_hot
        else:
            check_sample_shape(sample_shape, X.shape[1], self.image_shape_)
            y, _, one_hot = encode_targets(y, self.classes_)
            if one_hot != self._one_hot:
                kinds = {True: "one-hot rows", False: "1-d labels"}
                raise ValueError(
                    f"The model was fitted on {kinds[self._one_hot]} but y holds "
                    f"{kinds[one_hot]}; pass labels in the same form."
                )
        train_idx = np.arange(len(X))
        class_weights = self._class_weights(self.classes_, y)
        weight = self._weights(sample_weight, X, y, class_weights)
        self._require_loss_weight(weight, train_idx, sample_weight, "every training sample")
        self._train(X, y, weight, train_idx, None, epochs=1, schedule=False,
                    continuing=not first_call,
                    seed=_draw_seed(self.random_state))
        return self

    # ------------------------------------------------------- validation

    def _check_settings(self):
        """Checks of parameters that ``_parameter_constraints`` cannot express."""
        name = type(self).__name__
        if isinstance(self.optimizer, type):
            if not _usable_optimizer(self.optimizer):
                raise InvalidParameterError(
                    f"The 'optimizer' parameter of {name} must be one of {OPTIMIZERS} or a "
                    f"torch.optim.Optimizer subclass that takes lr and weight_decay and "
                    f"whose step() needs no closure (LBFGS, Rprop and SparseAdam, which "
                    f"needs sparse gradients, do not fit); got {self.optimizer!r}."
                )
        for param in ("lr", "weight_decay"):
            # The weights are float32: torch cannot even apply a larger rate (SGD
            # raises a RuntimeError), and any step with it would overflow them.
            if getattr(self, param) > _FLOAT32_MAX:
                raise InvalidParameterError(
                    f"The '{param}' parameter of {name} must be at most {_FLOAT32_MAX:.3g}, "
                    f"the largest float32 (the network's weights are float32); got "
                    f"{getattr(self, param)!r}."
                )
        if isinstance(self.class_weight, dict):
            bad = {label: weight for label, weight in self.class_weight.items()
                   if isinstance(weight, bool) or not isinstance(weight, Real)
                   or not 0 <= weight < math.inf}
            if bad:
                raise InvalidParameterError(
                    f"The 'class_weight' parameter of {name} must map labels to finite, "
                    f"non-negative numbers; got {bad!r}."
                )
        shape = self.image_shape
        if shape is not None and not (
            len(shape) in (2, 3)
            and all(isinstance(d, Integral) and not isinstance(d, bool) and d > 0
                    for d in shape)
        ):
            raise InvalidParameterError(
                f"The 'image_shape' parameter of {type(self).__name__} must be None or "
                f"(height, width) or (channels, height, width) of positive ints; got "
                f"{shape!r}."
            )
        if self.callbacks:
            _training.check_callbacks(self.callbacks)

    def _image_shape(self, X, sample_shape):
        shape = resolve_image_shape(X.shape[1], sample_shape, self.image_shape)
        if self.random_shift >= min(shape[1:]):
            raise ValueError(
                f"random_shift={self.random_shift} moves {shape[1]}x{shape[2]} images by "
                f"up to {self.random_shift} pixels, which can push them out of the "
                f"frame entirely; use random_shift < {min(shape[1:])}."
            )
        return shape

    def _check_X(self, X, reset):
        X, sample_shape = flatten_images(X)
        X = validate_data(self, X, reset=reset, dtype=(np.float32, np.uint8), order="C")
        return X, sample_shape

    def _check_X_y(self, X, y, reset):
        X, sample_shape = flatten_images(X)
        y = check_targets(y)
        X, y = validate_data(
            self, X, y, reset=reset, dtype=(np.float32, np.uint8), order="C",
            multi_output=True,
        )
        return X, y, sample_shape

    def _class_weights(self, classes, y_train, sample_weight=None):
        """Weight of each class (indexed like ``classes_``), or None.

        ``"balanced"`` counts samples by their weight, as sklearn's linear models
        do: a weight of 2 counts as a duplicated row.
        """
        if self.class_weight is None:
            return None
        # "balanced" gives a class whose samples all weigh 0 an infinite weight,
        # which would turn their zero weights into NaN; 0 leaves them out.
        with np.errstate(divide="ignore"):
            weights = compute_class_weight(self.class_weight, classes=classes,
                                           y=classes[y_train], sample_weight=sample_weight)
        return np.where(np.isfinite(weights), weights, 0.0)

    @staticmethod
    def _weights(sample_weight, X, y, class_weights):
        """Per-sample loss weights, ``sample_weight`` times the class weights, scaled
        by :func:`~sklenet._input.scale_loss_weights` (so their product cannot
        overflow either), or None."""
        if sample_weight is None and class_weights is None:
            return None
        weight = scale_loss_weights(_check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        ))
        if class_weights is not None:
            weight = scale_loss_weights(weight * scale_loss_weights(class_weights)[y])
        return weight

    def _require_loss_weight(self, weight, rows, sample_weight, where,
                             weight_name="sample_weight"):
        """Raise a ValueError naming the weights unless some sample of ``rows``
        keeps a nonzero loss weight (a weighted mean over zero weights is undefined)."""
        if has_loss_weight(weight, rows):
            return
        names = [name for name, value in ((weight_name, sample_weight),
                                          ("class_weight", self.class_weight))
                 if value is not None]
        raise ValueError(
            f"The loss weights ({' times '.join(names)}) are 0 for {where}. (A weight "
            f"below 1e-45 of the largest one counts as 0: the loss is computed in float32.)"
        )

    # ------------------------------------------------------------ training

    def _train(self, X, y, weight, train_idx, valid, *, epochs, schedule, continuing, seed):
        """Train ``epochs`` epochs on rows ``train_idx`` of ``(X, y)`` and set the
        fitted attributes (on the working copy of a training call).

        ``valid`` is None or ``(X_val, y_val, rows, w_val)``; ``seed`` is the
        call's :func:`_draw_seed`.
        """
        previous = None
        if continuing:
            previous = _training.snapshot(self.net_, self._architecture)
            for name in _training.STRUCTURAL_PARAMS:
                fitted = previous["architecture"][name]
                if getattr(self, name) != fitted:
                    raise ValueError(
                        f"{name}={getattr(self, name)!r} differs from the fitted network's "
                        f"{name}={fitted!r}, which continued training cannot change. "
                        f"Refit with warm_start=False (or fit a new estimator)."
                    )
        base_seed = seed
        stream_seed = seed + (len(previous["history"]) if previous else 0)
        train_set = self._dataset(X, y, train_idx, weight)
        valid_set = None if valid is None else self._dataset(*valid)
        architecture = _training.architecture(
            self.get_params(deep=False), self.image_shape_, len(self.classes_)
        )
        if previous is None:
            stats = channel_mean_std(X, self.image_shape_[0], rows=train_idx)
            module = _training.build_module(architecture, *stats, seed=base_seed)
        else:
            module = _training.build_module(architecture)
        device = resolve_device(self.device)
        batch_size = (auto_batch_size(len(train_set)) if self.batch_size == "auto"
                      else self.batch_size)
        net = _training.build_net(
            self.get_params(deep=False), module, device, epochs=epochs, schedule=schedule,
            batch_size=batch_size, n_train=len(train_set), valid_set=valid_set,
            seed=stream_seed,
        )
        if previous is not None:
            _training.load_snapshot(net, previous)
        if self.verbose:
            n_valid = 0 if valid_set is None else len(valid_set)
            print(
                f"Training LeNet-5 on {len(train_set)} images "
                f"{tuple(self.image_shape_)}, validating on {n_valid}, device {device}"
            )
        _training.train_epochs(net, train_set, epochs, stream_seed, n_threads=self.n_threads)
        self.net_ = net
        self.batch_size_ = batch_size
        self._architecture = architecture
        self._record_history()
        self.temperature_ = self._fit_temperature(valid)

    def _fit_temperature(self, valid):
        """The temperature of the new ``net_`` (see ``calibration``), fitted on the
        weighted validation rows ``valid``, or 1.0 when there are none."""
        if self.calibration is None or valid is None:
            return 1.0
        X_val, y_val, rows, w_val = valid
        images = _as_tensor(X_val[rows]).view((-1,) + tuple(self.image_shape_))
        # The logits predict_proba will divide: same flips, same inference precision.
        logits = _training.predict_logits(self.net_, images, flip=self.test_time_flip,
                                          amp_dtype=self._inference_dtype(),
                                          n_threads=self.n_threads)
        return fit_temperature(logits, y_val[rows], None if w_val is None else w_val[rows])

    def _dataset(self, X, y, rows, weight):
        """Rows ``rows`` of ``(X, y)`` as images, without copying them."""
        return TensorSubset(
            _as_tensor(X).view((-1,) + tuple(self.image_shape_)), torch.from_numpy(y),
            torch.from_numpy(rows),
            None if weight is None else torch.from_numpy(np.asarray(weight, np.float32)),
        )

    def _record_history(self):
        self.history_ = [_history_record(row) for row in self.net_.history]
        self.n_iter_ = len(self.history_)

    # -------------------------------------------------------------- predict

    def _current(self):
        """The fitted estimator as it is now, for one prediction call.

        A view sharing this estimator's attribute dict, which a fit committing
        in another thread replaces instead of changing (see
        :func:`_working_copy`): the view's network and classes stay one model.
        """
        check_is_fitted(self)
        view = object.__new__(type(self))
        view.__dict__ = self.__dict__
        return view

    def _images(self, X):
        X, sample_shape = self._check_X(X, reset=False)
        check_sample_shape(sample_shape, X.shape[1], self.image_shape_)
        return _as_tensor(X).view((-1,) + tuple(self.image_shape_))

    def _inference_dtype(self):
        return resolve_precision(self.inference_precision, self.net_.device)

    def _logits(self, X):
        """Logits of ``X``; call it on :meth:`_current`."""
        return _training.predict_logits(self.net_, self._images(X), flip=self.test_time_flip,
                                        amp_dtype=self._inference_dtype(),
                                        n_threads=self.n_threads)

    def predict_proba(self, X):
        """Class probabilities: the softmax of the logits divided by ``temperature_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, height, width) \
                or (n_samples, channels, height, width)
            Images.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class, columns ordered as ``classes_``.
        """
        model = self._current()
        return softmax(model._logits(X) / model.temperature_, axis=1)

    def predict_log_proba(self, X):
        """Logarithm of the class probabilities (:meth:`predict_proba`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, height, width) \
                or (n_samples, channels, height, width)
            Images.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probability of each class, columns ordered as ``classes_``.
        """
        model = self._current()
        return log_softmax(model._logits(X) / model.temperature_, axis=1)

    def predict(self, X):
        """Predict the class of each image.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, height, width) \
                or (n_samples, channels, height, width)
            Images.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Predicted labels, one-hot rows if the model was fitted on one-hot rows.
        """
        model = self._current()
        indices = model._logits(X).argmax(axis=1)
        return decode_predictions(indices, model.classes_, model._one_hot, np.int64)

    def extract_features(self, X):
        """The 84 activations of LeNet-5's F6 layer for each image.

        The learned representation the output layer classifies; use it as a
        pipeline step with :class:`sklenet.LeNet5Features`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, height, width) \
                or (n_samples, channels, height, width)
            Images.

        Returns
        -------
        features : ndarray of shape (n_samples, 84)
            F6 activations (after the activation function).
        """
        model = self._current()
        return _training.extract_features(model.net_, model._images(X), model._inference_dtype(),
                                          model.n_threads)

    # ------------------------------------------------------------ pickling

    def __getstate__(self):
        # The net travels as plain arrays and configuration, so pickle, joblib
        # and skops files hold no torch objects.
        state = dict(super().__getstate__())  # object.__getstate__ gives __dict__ itself
        net = state.pop("net_", None)
        if net is not None:
            state["net_"] = _training.snapshot(net, state.pop("_architecture"))
        return state

    def __setstate__(self, state):
        snapshot = state.get("net_")
        if isinstance(snapshot, dict):
            state = dict(state)
            self.__dict__.update(state)
            self._architecture = snapshot["architecture"]
            self.net_ = _training.net_from_snapshot(self.get_params(deep=False), snapshot)
            return
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = False
        return tags


# ------------------------------------------------- the seam for file formats

@dataclasses.dataclass(frozen=True)
class FittedModel:
    """Everything a file format or exporter needs of a fitted
    :class:`LeNet5Classifier`, as plain data.

    Attributes
    ----------
    params : dict
        ``get_params(deep=False)``.
    classes : ndarray
        ``classes_``.
    one_hot : bool
        Whether the estimator was fitted on one-hot rows (and predicts them).
    image_shape : tuple of int
        ``image_shape_``: ``(channels, height, width)``.
    n_features_in : int
        ``n_features_in_``.
    feature_names_in : ndarray or None
        ``feature_names_in_``, when fitted on a DataFrame.
    history : list of dict
        ``history_``.
    batch_size : int
        ``batch_size_``.
    temperature : float
        ``temperature_``: predict_proba is ``softmax(logits / temperature)``.
    architecture : dict
        What :func:`sklenet._training.build_module` builds (``in_channels``,
        ``n_classes``, ``activation``, ``pooling``, ``dropout``).
    weights : OrderedDict of str to ndarray
        The network's state dict (input standardization included), copied.
    device : str
        Where the model runs.
    """

    params: dict
    classes: np.ndarray
    one_hot: bool
    image_shape: tuple
    n_features_in: int
    feature_names_in: object
    history: list
    batch_size: int
    temperature: float
    architecture: dict
    weights: dict
    device: str


def _check_estimator_argument(estimator, name):
    if not isinstance(estimator, LeNet5Classifier):
        raise TypeError(
            f"{name} must be a fitted sklenet.LeNet5Classifier; got an instance of "
            f"{type(estimator).__module__}.{type(estimator).__qualname__}."
        )
    check_is_fitted(estimator)


def fitted_model(estimator, name="estimator"):
    """The :class:`FittedModel` of a fitted ``estimator``.

    Raises ``TypeError`` naming the argument ``name`` when ``estimator`` is not
    a :class:`LeNet5Classifier`, and ``NotFittedError`` when it is not fitted.
    Optimizer state is not included: a described model predicts, and a later
    ``partial_fit`` starts a fresh optimizer.
    """
    _check_estimator_argument(estimator, name)
    model = estimator._current()
    feature_names = getattr(model, "feature_names_in_", None)
    return FittedModel(
        params=model.get_params(deep=False),
        classes=model.classes_.copy(),
        one_hot=bool(model._one_hot),
        image_shape=tuple(int(d) for d in model.image_shape_),
        n_features_in=int(model.n_features_in_),
        feature_names_in=None if feature_names is None else feature_names.copy(),
        history=[dict(row) for row in model.history_],
        batch_size=int(model.batch_size_),
        temperature=float(getattr(model, "temperature_", 1.0)),
        architecture=dict(model._architecture),
        weights=_training.module_weights(model.net_),
        device=str(model.net_.device),
    )


def check_params(estimator):
    """Run the parameter checks of ``fit`` on ``estimator`` without fitting.

    Raises ``InvalidParameterError`` (a ``ValueError``) or ``TypeError``.
    """
    estimator._validate_params()
    estimator._check_settings()


def rebuild_estimator(model, device=None):
    """A fitted :class:`LeNet5Classifier` from a :class:`FittedModel`.

    The parameters are checked (as by :func:`check_params`) before anything is
    built; ``model.weights`` must be the state dict of the network
    ``model.architecture`` describes. ``device`` defaults to the model's, or
    the CPU (with a warning) where that was CUDA and no CUDA device is here.
    """
    estimator = LeNet5Classifier(**model.params)
    check_params(estimator)
    device = device or available_device(model.device, stacklevel=3)
    snapshot = _training.weights_snapshot(
        estimator.get_params(deep=False), model.architecture, model.weights, device
    )
    fitted = {
        "classes_": np.asarray(model.classes).copy(),
        "_one_hot": bool(model.one_hot),
        "image_shape_": tuple(model.image_shape),
        "n_features_in_": int(model.n_features_in),
        "history_": [dict(row) for row in model.history],
        "n_iter_": len(model.history),
        "batch_size_": int(model.batch_size),
        "temperature_": float(model.temperature),
        "_architecture": dict(model.architecture),
        "net_": _training.net_from_snapshot(estimator.get_params(deep=False), snapshot, device),
    }
    if model.feature_names_in is not None:
        fitted["feature_names_in_"] = np.asarray(model.feature_names_in, dtype=object)
    estimator.__dict__.update(fitted)
    return estimator
