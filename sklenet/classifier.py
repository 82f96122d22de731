"""The scikit-learn estimator :class:`LeNet5Classifier`."""

import contextlib
import copy
import functools
import warnings
from collections import OrderedDict
from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import (
    EarlyStopping,
    EpochTimer,
    LRScheduler,
    PassthroughScoring,
    PrintLog,
    ProgressBar,
)
from skorch.utils import noop
from torch import nn

from ._batching import BatchIterator, RandomShiftFlip, TensorSubset
from ._callbacks import BatchAccuracy
from ._input import (
    channel_mean_std,
    decode_predictions,
    encode_targets,
    flatten_images,
    resolve_image_shape,
    split_validation,
)
from ._speed import PRECISIONS, resolve_precision, run_module, set_memory_format
from .network import InputAdapter, LeNet5

__all__ = ["LeNet5Classifier"]

#: Inference runs on chunks of this many images.
INFERENCE_CHUNK = 256
#: The last chunk is zero-padded to a multiple of this many images. CPU kernels
#: compute a sample bitwise alike in any batch of at least 32 images but not in
#: tiny ones, so padding keeps a prediction independent of the batch it came in
#: (as sklearn's checks demand) while one image costs a 32-image pass, not 256.
INFERENCE_PAD_MULTIPLE = 32

_OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
_HISTORY_KEYS = {
    "train_loss": "train_loss",
    "train_acc": "train_accuracy",
    "valid_loss": "valid_loss",
    "valid_acc": "valid_accuracy",
    "dur": "duration",
}


class _SplitNet(NeuralNet):
    """skorch net fed with training and validation sets that are already split.

    ``fit_loop`` receives ``X=(train_dataset, valid_dataset_or_None)``: the
    estimator makes the stratified split itself, before the data reaches skorch.
    """

    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            ("accuracy", BatchAccuracy()),
        ]

    def get_split_datasets(self, X, y=None, **fit_params):
        return X

    # Execution settings, set by LeNet5Classifier before training.
    amp_dtype = None
    channels_last = False

    def infer(self, x, **fit_params):
        return run_module(self.module_, x, self.device, self.amp_dtype, self.channels_last)

    def _set_training(self, training=True):
        # skorch sets the mode before every batch; ``Module.train`` walks and
        # re-assigns every submodule each time, ~3% of an epoch for LeNet-5.
        modules = (getattr(self, name + "_") for name in self._modules + self._criteria)
        if any(m.training != training for module in modules
               if isinstance(module, torch.nn.Module) for m in module.modules()):
            super()._set_training(training)


@contextlib.contextmanager
def _unchanged_on_error(estimator):
    """Leave the estimator exactly as it was if the block raises."""
    saved = dict(estimator.__dict__)
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(saved)
        raise


@functools.lru_cache(maxsize=None)
def _fused_adam_works(device):
    """Whether ``torch.optim.Adam(fused=True)`` runs on ``device`` with this torch."""
    try:
        param = nn.Parameter(torch.zeros(1, device=device))
        param.grad = torch.zeros(1, device=device)
        torch.optim.Adam([param], fused=True).step()
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def _as_tensor(X):
    with warnings.catch_warnings():
        # Read-only arrays (memmaps) are fine: the data is only ever read.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(X)


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
    max_epochs : int, default=20
        Number of passes over the training data.
    batch_size : int, default=128
        Samples per mini-batch.
    lr : float, default=1e-3
        Learning rate (the initial one when ``lr_schedule="cosine"``).
    optimizer : {"adam", "sgd"} or torch optimizer class, default="adam"
        ``"sgd"`` uses momentum 0.9. A class such as ``torch.optim.AdamW`` is
        instantiated with ``lr`` and ``weight_decay``.
    lr_schedule : {"cosine", "constant"}, default="cosine"
        ``"cosine"`` decays the learning rate from ``lr`` towards 0 over the
        ``max_epochs`` of each ``fit``; ``partial_fit`` always trains at ``lr``.
    weight_decay : float, default=0.0
        L2 penalty passed to the optimizer.
    validation_fraction : float or None, default=0.2
        Fraction of the training data held out, stratified by class, to report
        validation loss and accuracy each epoch (the study's 20% split) and to
        drive early stopping. ``0`` or ``None`` trains on everything. Ignored
        when ``fit`` receives ``validation_data``.
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
    dropout : float, default=0.0
        Dropout probability before the two fully connected layers.
    random_shift : int, default=0
        Data augmentation: move each training image by up to this many pixels.
    horizontal_flip : bool, default=False
        Data augmentation: mirror training images left-right at random (right
        for clothes, wrong for digits).
    image_shape : tuple of int or None, default=None
        ``(height, width)`` or ``(channels, height, width)`` of each sample when
        ``X`` holds flat rows that are not square grayscale images.
    precision : {"float32", "bfloat16", "auto"}, default="float32"
        Arithmetic of the convolutions, in training and prediction.
        ``"bfloat16"`` runs them under ``torch.autocast`` in bfloat16 (pooling,
        activations, fully connected layers, weights, loss and optimizer stay
        float32): about 1.2x faster on CPUs with AMX or AVX512-BF16,
        Fashion-MNIST test accuracy within a few tenths of a point of float32.
        ``"auto"`` uses bfloat16 only where it is native (such CPUs, CUDA
        devices that support it) and float32 elsewhere, so its results depend
        on the hardware.
    channels_last : bool, default=True
        Keep images and convolution weights in NHWC memory layout, which
        oneDNN's convolutions and the pooling kernels process much faster on
        CPUs than NCHW. Same float32 arithmetic (results differ only in rounding).
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train and predict; ``"auto"`` picks CUDA when available. A
        model trained on CUDA loads and predicts on a CPU-only machine (with a
        warning); ``net_.device`` tells where the fitted model runs.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, the validation split, shuffling, dropout
        and augmentation. An int gives identical predictions on every run on
        the same machine.
    verbose : int, default=0
        0 is silent; 1 prints one line per epoch (loss, accuracy, time);
        2 also shows a progress bar over the batches of each epoch.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit`` call instead
        of starting afresh (when classes and image shape are unchanged).
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks, or ``(name, callback)`` pairs. They are copied
        at each ``fit``; the fitted ones are in ``net_.callbacks_``.

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
        ``valid_loss``, ``valid_accuracy`` (None without validation) and
        ``duration`` in seconds.
    n_iter_ : int
        Number of epochs trained so far.
    net_ : skorch.NeuralNet
        The fitted skorch net; ``net_.module_`` is the PyTorch module
        (input standardization followed by :class:`~sklenet.LeNet5`).

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
    >>> clf = LeNet5Classifier(max_epochs=10, random_state=0).fit(X_train, y_train)
    >>> clf.image_shape_
    (1, 8, 8)
    >>> clf.predict(X_test[:5]).shape
    (5,)
    >>> clf.score(X_test, y_test) > 0.9
    True
    """

    _parameter_constraints = {
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(_OPTIMIZERS)), type],
        "lr_schedule": [StrOptions({"cosine", "constant"})],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "early_stopping": ["boolean"],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"tanh", "relu"})],
        "pooling": [StrOptions({"max", "avg"})],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "random_shift": [Interval(Integral, 0, None, closed="left")],
        "horizontal_flip": ["boolean"],
        "image_shape": [tuple, list, None],
        "precision": [StrOptions(set(PRECISIONS))],
        "channels_last": ["boolean"],
        "device": [StrOptions({"auto", "cpu", "cuda"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "callbacks": [list, None],
    }

    def __init__(
        self,
        *,
        max_epochs=20,
        batch_size=128,
        lr=1e-3,
        optimizer="adam",
        lr_schedule="cosine",
        weight_decay=0.0,
        validation_fraction=0.2,
        early_stopping=False,
        patience=5,
        activation="tanh",
        pooling="max",
        dropout=0.0,
        random_shift=0,
        horizontal_flip=False,
        image_shape=None,
        precision="float32",
        channels_last=True,
        device="auto",
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
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.activation = activation
        self.pooling = pooling
        self.dropout = dropout
        self.random_shift = random_shift
        self.horizontal_flip = horizontal_flip
        self.image_shape = image_shape
        self.precision = precision
        self.channels_last = channels_last
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks

    # ------------------------------------------------------------------ fit

    def fit(self, X, y, validation_data=None):
        """Train LeNet-5 on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, height, width) \
                or (n_samples, channels, height, width)
            Training images.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Labels, or one-hot rows.
        validation_data : tuple (X_val, y_val) or None, default=None
            A validation set to use instead of splitting ``validation_fraction``
            off ``X``.

        Returns
        -------
        self : LeNet5Classifier
            The fitted estimator.
        """
        self._validate_params()
        self._check_optimizer()
        with _unchanged_on_error(self):
            X, y, sample_shape = self._check_X_y(X, y, reset=True)
            image_shape = resolve_image_shape(X.shape[1], sample_shape, self.image_shape)
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
            if validation_data is not None:
                train_idx = np.arange(len(X))
                valid = self._check_validation_data(validation_data, classes)
            elif self.validation_fraction:
                seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
                train_idx, valid_idx = split_validation(y, self.validation_fraction, seed)
                valid = None if valid_idx is None else (X, y, valid_idx)
            else:
                train_idx, valid = np.arange(len(X)), None
            self.image_shape_ = image_shape
            self.classes_ = classes
            self._one_hot = one_hot
            self._train(X, y, train_idx, valid, epochs=self.max_epochs, new_net=not continuing)
        return self

    def partial_fit(self, X, y, classes=None):
        """Train for one epoch on ``(X, y)``, continuing from the current weights.

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

        Returns
        -------
        self : LeNet5Classifier
            The estimator, trained one epoch more. No validation split is made.
        """
        first_call = not hasattr(self, "net_")
        if first_call:
            self._validate_params()
            self._check_optimizer()
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes={np.unique(classes).tolist()} differs from the classes of the "
                f"first partial_fit call, {self.classes_.tolist()}. Refit with fit() to "
                f"change the classes."
            )
        with _unchanged_on_error(self):
            X, y, sample_shape = self._check_X_y(X, y, reset=first_call)
            if first_call:
                known = None if classes is None else np.unique(classes)
                if known is None and np.ndim(y) == 1:
                    raise ValueError(
                        "classes must be passed on the first call to partial_fit, e.g. "
                        "classes=np.unique(y_all)."
                    )
                y, found, one_hot = encode_targets(y, known)
                if len(found) < 2:
                    raise ValueError("classes must name at least 2 classes.")
                self.image_shape_ = resolve_image_shape(
                    X.shape[1], sample_shape, self.image_shape
                )
                self.classes_ = found
                self._one_hot = one_hot
            else:
                y, _, one_hot = encode_targets(y, self.classes_)
                if one_hot != self._one_hot:
                    kinds = {True: "one-hot rows", False: "1-d labels"}
                    raise ValueError(
                        f"The model was fitted on {kinds[self._one_hot]} but y holds "
                        f"{kinds[one_hot]}; pass labels in the same form."
                    )
            self._train(X, y, np.arange(len(X)), None, epochs=1, new_net=first_call)
        return self

    def _check_optimizer(self):
        if isinstance(self.optimizer, type) and not issubclass(
            self.optimizer, torch.optim.Optimizer
        ):
            raise ValueError(
                f"The 'optimizer' parameter must be 'adam', 'sgd' or a subclass of "
                f"torch.optim.Optimizer; got {self.optimizer!r}."
            )

    def _check_X(self, X, reset):
        X, sample_shape = flatten_images(X)
        X = validate_data(self, X, reset=reset, dtype=(np.float32, np.uint8), order="C")
        return X, sample_shape

    def _check_X_y(self, X, y, reset):
        X, sample_shape = flatten_images(X)
        X, y = validate_data(
            self, X, y, reset=reset, dtype=(np.float32, np.uint8), order="C",
            multi_output=True,
        )
        return X, y, sample_shape

    def _check_validation_data(self, validation_data, classes):
        try:
            X_val, y_val = validation_data
        except (TypeError, ValueError):
            raise ValueError("validation_data must be a pair (X_val, y_val).") from None
        # Checked against the n_features_in_ this fit has just set.
        X_val, y_val, _ = self._check_X_y(X_val, y_val, reset=False)
        y_val, _, _ = encode_targets(y_val, classes)
        return X_val, y_val, np.arange(len(X_val))

    def _resolve_device(self):
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                "device='cuda' was requested, but PyTorch sees no CUDA device "
                "(torch.cuda.is_available() is False). Use device='cpu' or 'auto'."
            )
        return self.device

    def _new_net(self, mean, std, n_classes, device, seed, has_validation):
        """The skorch net, untrained; ``mean``/``std`` are per-channel input statistics."""
        channels = self.image_shape_[0]
        module = nn.Sequential(OrderedDict(
            adapter=InputAdapter(mean, std),
            lenet5=LeNet5(channels, n_classes, self.activation, self.pooling, self.dropout),
        ))
        optimizer_kwargs = {"optimizer__weight_decay": self.weight_decay}
        if self.optimizer == "sgd":
            optimizer_kwargs["optimizer__momentum"] = 0.9
        if self.optimizer == "adam" and _fused_adam_works(device):
            # One kernel per step instead of a dozen per parameter.
            optimizer_kwargs["optimizer__fused"] = True
        callbacks = []
        if self.lr_schedule == "cosine":
            callbacks.append(("lr_schedule", LRScheduler(
                policy=torch.optim.lr_scheduler.CosineAnnealingLR, T_max=self.max_epochs,
            )))
        if self.early_stopping:
            callbacks.append(("early_stopping", EarlyStopping(
                monitor="valid_loss" if has_validation else "train_loss",
                patience=self.patience, load_best=True,
                sink=print if self.verbose else noop,
            )))
        for callback in copy.deepcopy(self.callbacks or []):
            callbacks.append(callback)
        if self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        if self.verbose:
            callbacks.append(("print_log", PrintLog()))
        augmentation = None
        if self.random_shift or self.horizontal_flip:
            augmentation = RandomShiftFlip(self.random_shift, self.horizontal_flip)
        return _SplitNet(
            module=module,
            criterion=nn.CrossEntropyLoss,
            optimizer=_OPTIMIZERS.get(self.optimizer, self.optimizer),
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train=BatchIterator,
            iterator_train__shuffle=True,
            iterator_train__seed=seed,
            iterator_train__transform=augmentation,
            iterator_valid=BatchIterator,
            iterator_valid__batch_size=INFERENCE_CHUNK,
            train_split=None,
            callbacks=callbacks,
            device=device,
            verbose=self.verbose,
            **optimizer_kwargs,
        )

    def _set_execution(self, net, device):
        """Apply ``precision`` and ``channels_last`` to ``net`` (also used by sklenet.load)."""
        net.amp_dtype = resolve_precision(self.precision, device)
        net.channels_last = self.channels_last
        set_memory_format(net.module_, self.channels_last)

    def _train(self, X, y, train_idx, valid, epochs, new_net):
        """Train ``epochs`` epochs on rows ``train_idx`` of ``(X, y)``.

        ``valid`` is None or ``(X_val, y_val, rows)``.
        """
        device = self._resolve_device() if new_net else self.net_.device
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        shape = (-1,) + tuple(self.image_shape_)
        train_set = TensorSubset(
            _as_tensor(X).view(shape), torch.from_numpy(y), torch.from_numpy(train_idx)
        )
        valid_set = None
        if valid is not None:
            X_val, y_val, rows = valid
            valid_set = TensorSubset(
                _as_tensor(X_val).view(shape), torch.from_numpy(y_val), torch.from_numpy(rows)
            )
        fork_devices = [torch.cuda.current_device()] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=fork_devices):
            if new_net:
                torch.manual_seed(seed)
                mean, std = channel_mean_std(X, self.image_shape_[0], rows=train_idx)
                net = self._new_net(
                    mean, std, len(self.classes_), device, seed, valid_set is not None
                )
                net.initialize()
            else:
                net = self.net_
                # Continue the shuffling/dropout streams rather than replaying them.
                torch.manual_seed(seed + len(net.history))
                net.iterator_train__seed = seed + len(net.history)
                if self.early_stopping:
                    dict(net.callbacks_)["early_stopping"].monitor = (
                        "valid_loss" if valid_set is not None else "train_loss"
                    )
            self._set_execution(net, device)
            if self.verbose:
                n_valid = 0 if valid_set is None else len(valid_set)
                print(
                    f"Training LeNet-5 on {len(train_set)} images "
                    f"{self.image_shape_}, validating on {n_valid}, device {device}"
                )
            net.partial_fit((train_set, valid_set), epochs=epochs)
        self.net_ = net
        self.history_ = [
            {"epoch": row["epoch"]} | {
                name: None if row.get(key) is None else float(row[key])
                for key, name in _HISTORY_KEYS.items()
            }
            for row in net.history
        ]
        self.n_iter_ = len(self.history_)

    # -------------------------------------------------------------- predict

    def _logits(self, X):
        check_is_fitted(self)
        X, _ = self._check_X(X, reset=False)
        images = _as_tensor(X).view((-1,) + tuple(self.image_shape_))
        module = self.net_.module_.eval()
        device = self.net_.device
        logits = np.empty((len(images), len(self.classes_)), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(images), INFERENCE_CHUNK):
                chunk = images[start:start + INFERENCE_CHUNK]
                n = len(chunk)
                if n % INFERENCE_PAD_MULTIPLE:
                    size = -(-n // INFERENCE_PAD_MULTIPLE) * INFERENCE_PAD_MULTIPLE
                    padded = chunk.new_zeros((size,) + chunk.shape[1:])
                    padded[:n] = chunk
                    chunk = padded
                out = run_module(
                    module, chunk, device, self.net_.amp_dtype, self.net_.channels_last
                )[:n]
                logits[start:start + n] = out.cpu().numpy()
        return logits.astype(np.float64)

    def predict_proba(self, X):
        """Class probabilities (the softmax output layer).

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
        return softmax(self._logits(X), axis=1)

    def predict_log_proba(self, X):
        """Logarithm of the class probabilities.

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
        return log_softmax(self._logits(X), axis=1)

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
        indices = self._logits(X).argmax(axis=1)
        return decode_predictions(indices, self.classes_, self._one_hot, np.int64)

    # ---------------------------------------------------------- deployment

    def to_onnx(self, path=None, **kwargs):
        """Export the fitted model to ONNX (see :func:`sklenet.export.to_onnx`).

        Parameters
        ----------
        path : str, os.PathLike or None, default=None
            Where to write the ``.onnx`` file; with None nothing is written.
        **kwargs
            ``input_layout`` (``"flat"``, ``"nchw"``, ``"nhw"``),
            ``input_dtype`` (``"float32"``, ``"float64"``, ``"uint8"``),
            ``input_name``, ``opset``.

        Returns
        -------
        model : onnx.ModelProto
            Input ``input``; outputs ``label`` ``(N,)`` and ``probabilities``
            ``(N, n_classes)`` float32. Needs ``pip install sklenet[deploy]``.
        """
        from .export import to_onnx

        return to_onnx(self, path, **kwargs)

    def save(self, path):
        """Write the fitted model to a file that is safe to load.

        Weights in safetensors, everything else as JSON; no pickle. Load it with
        :func:`sklenet.load` (see :mod:`sklenet.persistence`).

        Parameters
        ----------
        path : str or os.PathLike
            The file to write.

        Returns
        -------
        path : str
            The path written. Needs ``pip install sklenet[deploy]``.
        """
        from .persistence import save

        return save(self, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = False
        return tags
