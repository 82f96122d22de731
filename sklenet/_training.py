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
subclassing, ``notify``, ``infer``, ``get_loss``, ``fit_loop``, callbacks,
``predefined_split``) and four private names of ``skorch.NeuralNet``, each
pinned by a test in ``tests/test_engine_state.py`` that fails if skorch changes
it: the overrides ``_set_training`` (called around every batch) and
``_default_callbacks`` (the callbacks every net starts with), and the
attributes ``_modules`` and ``_criteria`` that ``_set_training`` reads.
"""

import contextlib
import copy
import functools
import importlib
import math
import re
import signal
import sys
import threading
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

from ._batching import BatchIterator, ImageAugmentation
from ._callbacks import BatchAccuracy, FiniteTraining, LRSchedule, WeightAverage
from ._speed import resolve_precision, run_module, set_memory_format
from ._threads import resolve_n_threads, torch_threads
from ._options import available_device
from .network import InputAdapter, LeNet5, SeededDropout

__all__ = [
    "LeNet5Net",
    "StopTraining",
    "build_module",
    "build_net",
    "train_epochs",
    "module_weights",
    "snapshot",
    "weights_snapshot",
    "net_from_snapshot",
    "predict_logits",
    "layer_outputs",
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


class UserInterrupt(Exception):
    """Carries the user's ``KeyboardInterrupt`` past skorch's ``partial_fit``,
    which would swallow it; :func:`train_epochs` re-raises the original."""

    def __init__(self, interrupt):
        super().__init__("training interrupted")
        self.interrupt = interrupt


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
        # On the logits' device, wherever they were computed.
        y_true = to_tensor(y_true, device=y_pred.device)
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

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        # skorch's partial_fit ends with ``except KeyboardInterrupt: pass``: a
        # Ctrl-C would return a half-trained net as if training had completed.
        # The interrupt leaves skorch wrapped in UserInterrupt and train_epochs
        # re-raises the original; early stopping ends the loop normally.
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except StopTraining:
            return self
        except KeyboardInterrupt as interrupt:
            raise UserInterrupt(interrupt) from interrupt

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


def import_whole(name):
    """Import module ``name`` with Ctrl-C held back until the import is complete.

    torch.optim imports ``torch._dynamo`` (and sympy with it, 2-3 s) when a
    process builds its first optimizer. An import cut short by
    ``KeyboardInterrupt`` leaves such packages half-initialised in
    ``sys.modules``, and every later fit of the process then fails until the
    interpreter restarts. A SIGINT that arrives during the import reaches the
    handler that was in place right after it.
    """
    if name in sys.modules:
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None or threading.current_thread() is not threading.main_thread():
        # Python runs signal handlers in the main thread only, so nothing can
        # interrupt an import elsewhere; None is a handler installed outside
        # Python, which could not be put back.
        importlib.import_module(name)
        return
    received = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        importlib.import_module(name)
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)


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
    # The meta tensors are replaced by assignment, not ``to_empty``: that runs
    # meta ``empty_like`` through torch's Python references, which import sympy
    # (~1 s), and a Ctrl-C during that import breaks sympy for the process.
    with torch.device("meta"):
        lenet5 = LeNet5(**architecture)
    lenet5.load_state_dict({name: torch.empty(value.shape, dtype=value.dtype)
                            for name, value in lenet5.state_dict().items()}, assign=True)
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
    import_whole("torch._dynamo")  # what torch.optim imports on its first use
    optimizer = params["optimizer"]
    optimizer_kwargs = {"optimizer__weight_decay": params["weight_decay"]}
    if optimizer == "sgd":
        optimizer_kwargs["optimizer__momentum"] = 0.9
    if optimizer in ("adam", "adamw") and _fused_adam_works(device):
        # One kernel per step instead of a dozen per parameter.
        optimizer_kwargs["optimizer__fused"] = True
    verbose = params["verbose"]
    callbacks = [("finite_training", FiniteTraining())]
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
        augmentation = ImageAugmentation(
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


def train_epochs(net, train_set, epochs, dropout_seed, n_threads=None):
    """Train ``net`` for ``epochs`` epochs on ``train_set``, in place.

    Dropout masks come from a generator seeded with ``dropout_seed``; no
    global random state is read or changed. ``n_threads``: the estimator's
    (see :func:`sklenet._threads.resolve_n_threads`); the caller's torch thread
    count is restored afterwards. ``KeyboardInterrupt`` and every
    other exception propagate (the caller discards ``net``).
    """
    generator = torch.Generator(device=net.device).manual_seed(int(dropout_seed))
    dropouts = [m for m in net.module_.modules() if isinstance(m, SeededDropout)]
    for layer in dropouts:
        layer.generator = generator
    threads = resolve_n_threads(n_threads, net.batch_size, len(train_set) * epochs, net.device)
    try:
        with torch_threads(threads):
            net.partial_fit(train_set, epochs=epochs)
    except UserInterrupt as wrapped:
        raise wrapped.interrupt from None
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


def module_weights(net):
    """The network's weights as an ordered dict of numpy arrays (copies)."""
    return OrderedDict(
        (name, _to_numpy(tensor)) for name, tensor in net.module_.state_dict().items()
    )


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
        "module": module_weights(net),
        # Per-parameter optimizer state as a list (skops wants string keys).
        "optimizer": {
            "name": type(net.optimizer_).__name__,
            "state": [_to_numpy(optimizer["state"].get(i, {}))
                      for i in range(len(list(net.module_.parameters())))],
        },
        "history": copy.deepcopy(list(net.history)),
        "device": str(net.device),
        "amp_dtype": _dtype_name(net.amp_dtype),
        "channels_last": bool(net.channels_last),
    }


def weights_snapshot(params, architecture, weights, device):
    """The :func:`snapshot` of a net known by its weights only (a model file):
    no optimizer state, no history, the precision and layout of ``params``."""
    return {
        "architecture": dict(architecture),
        "module": OrderedDict((name, np.array(array)) for name, array in weights.items()),
        "optimizer": None,
        "history": [],
        "device": str(device),
        "amp_dtype": _dtype_name(resolve_precision(params["precision"], device)),
        "channels_last": bool(params["channels_last"]),
    }


def _dtype_name(dtype):
    return None if dtype is None else str(dtype).removeprefix("torch.")


def load_snapshot(net, state, *, optimizer=True):
    """Copy a :func:`snapshot` into a freshly built ``net``, in place.

    Every tensor lands where the net's own live: weights are copied into the
    parameters, and each optimizer-state tensor is given its parameter's
    device, dtype and memory layout (see :func:`optimizer_state_for`). The
    optimizer state (Adam's moments, SGD's momentum) is copied only when
    ``optimizer`` is true and the optimizer is of the same kind; its
    hyper-parameters (lr, weight decay) stay those of ``net``.
    """
    with torch.no_grad():
        net.module_.load_state_dict(OrderedDict(
            (name, torch.as_tensor(array)) for name, array in state["module"].items()
        ))
    set_memory_format(net.module_, net.channels_last)
    saved = state.get("optimizer") or {}
    if optimizer and saved.get("name") == type(net.optimizer_).__name__:
        net.optimizer_.load_state_dict({
            "state": optimizer_state_for(list(net.module_.parameters()), saved["state"]),
            "param_groups": net.optimizer_.state_dict()["param_groups"],
        })
    net.history.clear()
    net.history.extend(copy.deepcopy(state["history"]))
    return net


def optimizer_state_for(params, saved_state):
    """Per-parameter optimizer state (``{index: {key: value}}``) for ``params``.

    A tensor shaped like its parameter (a moment) becomes a copy with the
    parameter's device, dtype and strides: ``Optimizer.load_state_dict`` moves
    values to the parameter's device and dtype but keeps their strides, and
    fused Adam reads moments in the parameter's memory order, so a contiguous
    moment next to a channels-last weight is silently wrong on the CPU and an
    error on CUDA. Other values (``step``) are left to ``load_state_dict``'s
    own placement rules.
    """
    state = {}
    for index, (param, entry) in enumerate(zip(params, saved_state)):
        if not entry:
            continue
        state[index] = {}
        for key, value in entry.items():
            if isinstance(value, np.ndarray):
                value = torch.from_numpy(value)
                if tuple(value.shape) == tuple(param.shape):
                    value = torch.empty_like(param).copy_(value)
                else:
                    value = value.clone()
            state[index][key] = value
    return state


def net_from_snapshot(params, state, device=None):
    """Rebuild the fitted net of a :func:`snapshot` (unpickling, model files).

    ``device`` defaults to the snapshot's; a CUDA snapshot lands on the CPU
    (with a warning) where PyTorch sees no CUDA device.
    """
    device = device or available_device(state["device"], stacklevel=3)
    module = build_module(state["architecture"])
    params = dict(params, precision=_precision_of(state), channels_last=state["channels_last"])
    # A rebuilt net only predicts until the next training call builds its own.
    batch_size = params["batch_size"] if params["batch_size"] != "auto" else INFERENCE_CHUNK
    net = build_net(params, module, device, epochs=1, schedule=False, batch_size=batch_size)
    return load_snapshot(net, state)


def _precision_of(state):
    return {None: "float32", "bfloat16": "bfloat16"}[state["amp_dtype"]]


# ----------------------------------------------------------- inference

@contextlib.contextmanager
def _exact_float32(device):
    """Inference on CUDA in true float32.

    cuDNN computes float32 convolutions in TF32 (a 10-bit mantissa) unless
    told otherwise, which moves probabilities by ~1e-3 against the CPU and the
    ONNX runtimes; training keeps TF32's speed, inference gives one answer.
    """
    if not str(device).startswith("cuda"):
        yield
        return
    flags = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = [backend.allow_tf32 for backend in flags]
    for backend in flags:
        backend.allow_tf32 = False
    try:
        yield
    finally:
        for backend, allowed in zip(flags, saved):
            backend.allow_tf32 = allowed


def _padded_chunks(images, multiple=INFERENCE_PAD_MULTIPLE):
    """``images`` in chunks of :data:`INFERENCE_CHUNK`, the last zero-padded to a
    multiple of ``multiple``; yields (start, n, chunk)."""
    for start in range(0, len(images), INFERENCE_CHUNK):
        chunk = images[start:start + INFERENCE_CHUNK]
        n = len(chunk)
        if n % multiple:
            size = -(-n // multiple) * multiple
            padded = chunk.new_zeros((size,) + chunk.shape[1:])
            padded[:n] = chunk
            chunk = padded
        yield start, n, chunk


def _forward(net, images, amp_dtype, flip=False, n_threads=None):
    """Run ``images`` through the network in inference mode; yields (start, n, logits).

    ``amp_dtype`` None computes in float32 (whatever precision trained the
    net), so a model gives the same probabilities on every machine and in ONNX.
    ``flip`` averages the logits of each image and of its mirror image.
    ``n_threads``: the estimator's (see :func:`sklenet._threads.resolve_n_threads`).
    """
    module = net.module_.eval()
    threads = resolve_n_threads(n_threads, min(len(images), INFERENCE_CHUNK), len(images),
                                net.device)
    # cuDNN chooses its algorithm by batch shape: on CUDA every chunk has the
    # same shape, so a prediction does not depend on the batch it came in.
    cuda = str(net.device).startswith("cuda")
    multiple = INFERENCE_CHUNK if cuda else INFERENCE_PAD_MULTIPLE
    with torch.inference_mode(), _exact_float32(net.device), torch_threads(threads):
        for start, n, chunk in _padded_chunks(images, multiple):
            out = run_module(module, chunk, net.device, amp_dtype, net.channels_last)
            if flip:
                mirrored = run_module(module, chunk.flip(-1), net.device, amp_dtype,
                                      net.channels_last)
                out = 0.5 * (out + mirrored)
            yield start, n, out[:n]


def predict_logits(net, images, flip=False, amp_dtype=None, n_threads=None):
    """float64 logits of ``images`` (a tensor ``(n, C, H, W)``), batch-invariant.

    ``flip``: the mean of the logits of each image and of its mirror image;
    ``amp_dtype``: autocast dtype of the convolutions (None: float32).
    """
    n_classes = net.module_.lenet5.output.out_features
    logits = np.empty((len(images), n_classes), dtype=np.float32)
    for start, n, out in _forward(net, images, amp_dtype, flip, n_threads):
        logits[start:start + n] = out.cpu().numpy()
    return logits.astype(np.float64)


def layer_outputs(net, images, layer_names, amp_dtype=None, n_threads=None):
    """Outputs of LeNet-5's layers ``layer_names`` for each image, batch-invariant.

    Parameters
    ----------
    net : LeNet5Net
        A fitted net.
    images : torch.Tensor of shape (n, C, H, W)
        The images.
    layer_names : sequence of str
        Attributes of ``net.module_.lenet5`` (e.g. ``"c1"``, ``"act6"``).
    amp_dtype : torch.dtype or None, default=None
        Autocast dtype of the convolutions (None: float32).
    n_threads : int or None, default=None
        The estimator's ``n_threads`` (see :func:`sklenet._threads.resolve_n_threads`).

    Returns
    -------
    outputs : dict of str to ndarray
        float32 arrays, one row per image, keyed by layer name.
    """
    lenet5 = net.module_.lenet5
    captured = {}
    hooks = [
        getattr(lenet5, name).register_forward_hook(
            lambda layer, inputs, output, name=name: captured.__setitem__(name, output))
        for name in layer_names
    ]
    parts = {name: [] for name in layer_names}
    try:
        for _, n, _ in _forward(net, images, amp_dtype, n_threads=n_threads):
            for name in layer_names:
                parts[name].append(captured[name][:n].float().cpu().numpy())
    finally:
        for hook in hooks:
            hook.remove()
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def extract_features(net, images, amp_dtype=None, n_threads=None):
    """The 84 F6 activations of each image, float64, batch-invariant."""
    return layer_outputs(net, images, ["act6"], amp_dtype, n_threads)["act6"].astype(np.float64)
