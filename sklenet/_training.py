"""The training engine behind :class:`sklenet.LeNet5Classifier`.

One place owns the skorch net and everything stateful about training: building
the network and its optimizer from the estimator's parameters, the learning-rate
schedule, callbacks, interrupts, and the plain-data snapshot that carries a
fitted network from one call to the next (and through pickle, skops and the
model files).

Every training call builds a *new* net from the current parameters and copies
the previous state into it (weights, optimizer moments, history), then trains
that copy. The previous net is never touched, so a call that fails or is
interrupted leaves the fitted model exactly as it was, and every setting changed
with ``set_params`` takes effect in a continued fit.

skorch is used through its public extension points (``NeuralNetClassifier``
subclassing, ``notify``, ``infer``, ``get_loss``, ``partial_fit``, callbacks,
``predefined_split``), with one pinned exception: ``_set_training`` (see
:meth:`LeNet5Net._set_training`).
"""

import copy
import functools
import math
import re
import sys
import warnings
from collections import OrderedDict

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    EpochTimer,
    PassthroughScoring,
    PrintLog,
    ProgressBar,
)
from skorch.helper import predefined_split
from skorch.utils import noop, to_tensor
from torch import nn

from ._batching import BatchIterator, RandomShiftFlip
from ._callbacks import BatchAccuracy, LRSchedule, WeightAverage
from ._speed import resolve_precision, run_module, set_memory_format
from .network import InputAdapter, LeNet5, SeededDropout

__all__ = [
    "LeNet5Net",
    "StopTraining",
    "build_module",
    "build_net",
    "train_epochs",
    "snapshot",
    "net_from_snapshot",
    "predict_logits",
    "extract_features",
]

#: Inference runs on chunks of this many images.
INFERENCE_CHUNK = 256
#: The last chunk is zero-padded to a multiple of this many images. CPU kernels
#: compute a sample bitwise alike in any batch of at least 32 images but not in
#: tiny ones, so padding keeps a prediction independent of the batch it came in
#: (as sklearn's checks demand) while one image costs a 32-image pass, not 256.
INFERENCE_PAD_MULTIPLE = 32

OPTIMIZER_CLASSES = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
                     "sgd": torch.optim.SGD}
#: Parameters that shape the network itself: a warm start cannot change them.
STRUCTURAL_PARAMS = ("activation", "pooling")

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


class StopTraining(Exception):
    """Raised in place of the ``KeyboardInterrupt`` skorch's early stopping uses."""


def _console(text):
    """print() that drops skorch's ANSI colours when stdout is not a terminal."""
    isatty = getattr(sys.stdout, "isatty", None)
    print(text if isatty is not None and isatty() else _ANSI_ESCAPE.sub("", text))


class LeNet5Net(NeuralNetClassifier):
    """The skorch net that trains LeNet-5 for :class:`~sklenet.LeNet5Classifier`.

    A :class:`skorch.NeuralNetClassifier` whose ``predict`` returns class
    indices and ``predict_proba`` softmax probabilities, so skorch's scoring
    callbacks work with sklearn's classification scorers. It differs from its
    parent in four ways:

    * batches run with the execution settings ``amp_dtype`` (autocast) and
      ``channels_last``;
    * a batch may carry sample weights, ``({"X": images, "sample_weight": w}, y)``,
      and the loss is then their weighted mean;
    * ``partial_fit`` lets ``KeyboardInterrupt`` (Ctrl-C) propagate: skorch
      swallows it, which would turn an interrupted fit into a silently
      half-trained model;
    * early stopping still ends training normally: skorch's ``EarlyStopping``
      signals with ``KeyboardInterrupt``, which :meth:`notify` tells apart from
      the user's by the callback's own state.

    Parameters
    ----------
    amp_dtype : torch.dtype or None, default=None
        Autocast dtype of the convolutions (None: float32).
    channels_last : bool, default=False
        Feed images in NHWC memory layout.
    *args, **kwargs
        As :class:`skorch.NeuralNetClassifier`.
    """

    def __init__(self, *args, amp_dtype=None, channels_last=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.amp_dtype = amp_dtype
        self.channels_last = channels_last

    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            ("accuracy", BatchAccuracy()),
        ]

    def infer(self, x, **fit_params):
        if isinstance(x, dict):
            x = x["X"]
        return run_module(self.module_, x, self.device, self.amp_dtype, self.channels_last)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = to_tensor(y_true, device=self.device)
        if training:
            losses = self.criterion_(y_pred, y_true)
        else:
            # Validation reports the plain log-loss (what sklearn's log_loss and
            # early stopping compare), not the label-smoothed training objective.
            losses = nn.functional.cross_entropy(y_pred, y_true, reduction="none")
        weight = X.get("sample_weight") if isinstance(X, dict) else None
        if weight is None:
            return losses.mean()
        # sklearn's normalisation: the weighted mean, so a weight of 2 counts a
        # sample exactly as two copies of it would.
        weight = weight.to(losses.device, losses.dtype)
        return (losses * weight).sum() / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)

    def on_epoch_end(self, net, **kwargs):
        self.history.record("lr", self.optimizer_.param_groups[0]["lr"])

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        X = batch[0]
        if isinstance(X, dict) and X.get("sample_weight") is not None:
            # skorch averages the batch losses of an epoch by batch length; a
            # batch must count by its weight sum for the weighted mean.
            prefix = "train" if training else "valid"
            self.history.record_batch(f"{prefix}_batch_size", float(X["sample_weight"].sum()))

    def notify(self, method_name, **cb_kwargs):
        try:
            super().notify(method_name, **cb_kwargs)
        except KeyboardInterrupt as interrupt:
            if method_name == "on_epoch_end" and self._early_stopping_triggered():
                raise StopTraining from interrupt
            raise

    def _early_stopping_triggered(self):
        return any(
            isinstance(cb, EarlyStopping) and getattr(cb, "misses_", 0) >= cb.patience
            for _, cb in self.callbacks_
        )

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        if not self.initialized_:
            self.initialize()
        self.notify("on_train_begin", X=X, y=y)
        try:
            self.fit_loop(X, y, **fit_params)
        except StopTraining:
            pass
        self.notify("on_train_end", X=X, y=y)
        return self

    def _set_training(self, training=True):
        # Pinned private override (skorch 1.x calls it before every batch; a
        # test checks it still exists): ``Module.train`` walks and re-assigns
        # every submodule each time, ~3% of an epoch for LeNet-5.
        modules = (getattr(self, name + "_") for name in self._modules + self._criteria)
        if any(m.training != training for module in modules
               if isinstance(module, nn.Module) for m in module.modules()):
            super()._set_training(training)


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


def init_parameters(module, generator):
    """PyTorch's default initialization of every convolution and linear layer,
    drawn from ``generator`` in the order the layers were built.

    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for weights and biases, exactly what
    ``reset_parameters`` draws from the global generator after
    ``torch.manual_seed``; a fit never touches the global generator, so fits in
    other threads keep their own random streams.
    """
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                fan_in = layer.weight[0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in else 0.0
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def architecture(params, image_shape, n_classes):
    """What :func:`build_module` builds: ``in_channels``, ``n_classes``,
    ``activation``, ``pooling`` and ``dropout``, from the estimator's parameters."""
    return {
        "in_channels": int(image_shape[0]),
        "n_classes": int(n_classes),
        "activation": params["activation"],
        "pooling": params["pooling"],
        "dropout": float(params["dropout"]),
    }


def build_module(architecture, mean=None, std=None, seed=None):
    """The PyTorch module: input standardization followed by LeNet-5.

    Parameters
    ----------
    architecture : dict
        ``in_channels``, ``n_classes``, ``activation``, ``pooling`` and
        ``dropout``.
    mean, std : sequence of float or None
        Per-channel statistics of the training pixels (None: placeholders, for
        a module about to receive a snapshot).
    seed : int or None
        Seed of the weight initialization; None leaves the weights uninitialized
        (they are about to be overwritten by a snapshot).
    """
    # Built on the meta device so that construction draws nothing from the
    # global generator; the weights are then drawn from a generator of our own.
    with torch.device("meta"):
        lenet5 = LeNet5(**architecture)
    lenet5 = lenet5.to_empty(device="cpu")
    if mean is None:
        mean = std = [1.0] * architecture["in_channels"]
    if seed is not None:
        init_parameters(lenet5, torch.Generator().manual_seed(int(seed)))
    return nn.Sequential(OrderedDict(adapter=InputAdapter(mean, std), lenet5=lenet5))


def check_callbacks(callbacks):
    """Raise a ValueError naming ``callbacks`` unless each item is a skorch callback."""
    for item in callbacks:
        callback = item[1] if isinstance(item, tuple) and len(item) == 2 else item
        if not (isinstance(callback, Callback)
                or (isinstance(callback, type) and issubclass(callback, Callback))):
            raise ValueError(
                f"The 'callbacks' parameter must be a list of skorch callbacks "
                f"(instances or classes of skorch.callbacks.Callback) or (name, callback) "
                f"pairs; got {item!r}."
            )


def build_net(params, module, device, *, epochs, schedule, batch_size, n_train=0,
              valid_set=None, seed=0):
    """An initialized :class:`LeNet5Net` around ``module``, set up from ``params``.

    Parameters
    ----------
    params : dict
        The estimator's parameters (``get_params(deep=False)``).
    module : torch.nn.Module
        The network (weights are not changed here).
    device : str
        Where to train and predict.
    epochs : int
        Epochs of the training call (the length of the schedule).
    schedule : bool
        Whether ``params["lr_schedule"]`` applies (``fit``) or training runs at
        a constant ``lr`` (``partial_fit``).
    batch_size : int
        Training batch size (``params["batch_size"]`` resolved).
    n_train : int
        Training samples per epoch (the length of a one-cycle schedule).
    valid_set : torch Dataset or None
        Validation data scored after each epoch.
    seed : int
        Seed of the shuffling and augmentation streams.
    """
    optimizer = params["optimizer"]
    optimizer_kwargs = {"optimizer__weight_decay": params["weight_decay"]}
    if optimizer == "sgd":
        optimizer_kwargs["optimizer__momentum"] = 0.9
    if optimizer in ("adam", "adamw") and _fused_adam_works(device):
        # One kernel per step instead of a dozen per parameter.
        optimizer_kwargs["optimizer__fused"] = True
    verbose = params["verbose"]
    callbacks = []
    if schedule and params["lr_schedule"] != "constant":
        steps = -(-n_train // batch_size)
        callbacks.append(("lr_schedule", LRSchedule(params["lr_schedule"], epochs, steps)))
    if params["ema_decay"]:
        callbacks.append(("weight_average", WeightAverage(params["ema_decay"])))
    if params["early_stopping"]:
        callbacks.append(("early_stopping", EarlyStopping(
            monitor="train_loss" if valid_set is None else "valid_loss",
            patience=params["patience"], load_best=True,
            sink=_console if verbose else noop,
        )))
    user_callbacks = params["callbacks"] or []
    check_callbacks(user_callbacks)
    callbacks.extend(user_callbacks)
    if verbose >= 2:
        callbacks.append(("progress_bar", ProgressBar()))
    if verbose:
        callbacks.append(("print_log", PrintLog(sink=_console)))
    augmentation = None
    if params["random_shift"] or params["horizontal_flip"] or params["random_erasing"]:
        augmentation = RandomShiftFlip(
            params["random_shift"], params["horizontal_flip"], params["random_erasing"]
        )
    net = LeNet5Net(
        module=module,
        criterion=nn.CrossEntropyLoss,
        criterion__reduction="none",
        criterion__label_smoothing=params["label_smoothing"],
        optimizer=OPTIMIZER_CLASSES.get(optimizer, optimizer),
        lr=params["lr"],
        max_epochs=epochs,
        batch_size=batch_size,
        classes=list(range(module.lenet5.output.out_features)),
        iterator_train=BatchIterator,
        iterator_train__shuffle=True,
        iterator_train__seed=seed,
        iterator_train__transform=augmentation,
        iterator_valid=BatchIterator,
        iterator_valid__batch_size=INFERENCE_CHUNK,
        train_split=None if valid_set is None else predefined_split(valid_set),
        callbacks=callbacks,
        device=device,
        verbose=verbose,
        amp_dtype=resolve_precision(params["precision"], device),
        channels_last=params["channels_last"],
        **optimizer_kwargs,
    )
    net.initialize()
    set_memory_format(net.module_, net.channels_last)
    return net


def train_epochs(net, train_set, epochs, dropout_seed):
    """Train ``net`` for ``epochs`` epochs on ``train_set``, in place.

    Dropout masks come from a generator seeded with ``dropout_seed``; no
    global random state is read or changed. ``KeyboardInterrupt`` and every
    other exception propagate (the caller discards ``net``).
    """
    generator = torch.Generator(device=net.device).manual_seed(int(dropout_seed))
    dropouts = [m for m in net.module_.modules() if isinstance(m, SeededDropout)]
    for layer in dropouts:
        layer.generator = generator
    try:
        net.partial_fit(train_set, epochs=epochs)
    finally:
        for layer in dropouts:
            layer.generator = None
    return net


# ----------------------------------------------------------- snapshots

def _to_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    if isinstance(value, dict):
        return {key: _to_numpy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_numpy(item) for item in value)
    return value


def snapshot(net, architecture):
    """The fitted state of ``net`` as plain data (numpy arrays, lists, numbers).

    ``{"architecture", "module", "optimizer", "history", "device", "amp_dtype",
    "channels_last"}``: what :func:`net_from_snapshot` needs to rebuild an
    equivalent net. Everything is copied, so training ``net`` afterwards does
    not change the snapshot.
    """
    optimizer = net.optimizer_.state_dict()
    return {
        "architecture": dict(architecture),
        "module": OrderedDict(
            (name, _to_numpy(tensor)) for name, tensor in net.module_.state_dict().items()
        ),
        # Per-parameter optimizer state as a list (skops wants string keys).
        "optimizer": {
            "name": type(net.optimizer_).__name__,
            "state": [_to_numpy(optimizer["state"].get(i, {}))
                      for i in range(len(list(net.module_.parameters())))],
        },
        "history": copy.deepcopy(list(net.history)),
        "device": str(net.device),
        "amp_dtype": None if net.amp_dtype is None else str(net.amp_dtype).split(".")[-1],
        "channels_last": bool(net.channels_last),
    }


def load_snapshot(net, state, *, optimizer=True):
    """Copy a :func:`snapshot` into a freshly built ``net``, in place.

    The optimizer state (Adam's moments, SGD's momentum) is copied only when
    ``optimizer`` is true and the optimizer is of the same kind; its
    hyper-parameters (lr, weight decay) stay those of ``net``.
    """
    net.module_.load_state_dict(OrderedDict(
        (name, torch.as_tensor(array)) for name, array in state["module"].items()
    ))
    set_memory_format(net.module_, net.channels_last)
    saved = state.get("optimizer") or {}
    if optimizer and saved.get("name") == type(net.optimizer_).__name__:
        current = net.optimizer_.state_dict()
        per_param = {
            i: {key: torch.tensor(value) if isinstance(value, np.ndarray) else value
                for key, value in entry.items()}
            for i, entry in enumerate(saved["state"]) if entry
        }
        # load_state_dict moves each value to its parameter's device and dtype.
        net.optimizer_.load_state_dict(
            {"state": per_param, "param_groups": current["param_groups"]}
        )
    net.history.clear()
    net.history.extend(copy.deepcopy(state["history"]))
    return net


def net_from_snapshot(params, state, device=None):
    """Rebuild the fitted net of a :func:`snapshot` (unpickling, model files).

    ``device`` defaults to the snapshot's; a CUDA snapshot lands on the CPU
    (with a warning) where PyTorch sees no CUDA device.
    """
    device = device or state["device"]
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"The model was fitted on {device}, but no CUDA devices are available "
            f"here; it runs on the CPU.",
            UserWarning,
            stacklevel=3,
        )
        device = "cpu"
    module = build_module(state["architecture"])
    params = dict(params, precision=_precision_of(state), channels_last=state["channels_last"])
    # A rebuilt net only predicts until the next training call builds its own.
    batch_size = params["batch_size"] if params["batch_size"] != "auto" else INFERENCE_CHUNK
    net = build_net(params, module, device, epochs=1, schedule=False, batch_size=batch_size)
    return load_snapshot(net, state)


def _precision_of(state):
    return {None: "float32", "bfloat16": "bfloat16"}[state["amp_dtype"]]


# ----------------------------------------------------------- inference

def _chunks(net, images):
    """Forward ``images`` in fixed-size, zero-padded chunks; yields (start, n, output)."""
    for start in range(0, len(images), INFERENCE_CHUNK):
        chunk = images[start:start + INFERENCE_CHUNK]
        n = len(chunk)
        if n % INFERENCE_PAD_MULTIPLE:
            size = -(-n // INFERENCE_PAD_MULTIPLE) * INFERENCE_PAD_MULTIPLE
            padded = chunk.new_zeros((size,) + chunk.shape[1:])
            padded[:n] = chunk
            chunk = padded
        yield start, n, chunk


def predict_logits(net, images, flip=False):
    """float64 logits of ``images`` (a tensor ``(n, C, H, W)``), batch-invariant.

    ``flip``: the mean of the logits of each image and of its mirror image.
    """
    module = net.module_.eval()
    logits = np.empty((len(images), module.lenet5.output.out_features), dtype=np.float32)
    with torch.inference_mode():
        for start, n, chunk in _chunks(net, images):
            out = run_module(module, chunk, net.device, net.amp_dtype, net.channels_last)
            if flip:
                mirrored = run_module(module, chunk.flip(-1), net.device, net.amp_dtype,
                                      net.channels_last)
                out = 0.5 * (out + mirrored)
            logits[start:start + n] = out[:n].cpu().numpy()
    return logits.astype(np.float64)


def extract_features(net, images):
    """The 84 F6 activations of each image, float64, batch-invariant."""
    module = net.module_.eval()
    features = np.empty((len(images), module.lenet5.f6.out_features), dtype=np.float32)
    captured = []
    hook = module.lenet5.act6.register_forward_hook(
        lambda layer, inputs, output: captured.append(output)
    )
    try:
        with torch.inference_mode():
            for start, n, chunk in _chunks(net, images):
                captured.clear()
                run_module(module, chunk, net.device, net.amp_dtype, net.channels_last)
                features[start:start + n] = captured[0][:n].float().cpu().numpy()
    finally:
        hook.remove()
    return features.astype(np.float64)
