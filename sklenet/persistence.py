"""Model files that are safe to load: safetensors weights plus a JSON description.

``pickle`` (and so ``joblib.load``) runs code chosen by whoever wrote the file;
loading a model from an untrusted source that way is running their program.
:func:`save` writes a fitted :class:`~sklenet.LeNet5Classifier` as a single
`safetensors <https://huggingface.co/docs/safetensors>`_ file:

* the tensors are the weights and input-scaling buffers of ``net_.module_``
  (raw little-endian numbers, nothing executable);
* the safetensors header's ``__metadata__`` holds JSON: the format name and
  version, the sklenet version that wrote it, the estimator's parameters
  (``get_params()``), the classes and their kind, ``image_shape_``,
  ``n_features_in_``, ``feature_names_in_``, the one-hot flag, the training
  history and a SHA-256 digest of all of the above and of the tensor bytes.

:func:`save` is atomic: it writes a temporary file next to ``path``, flushes it
to the disk and renames it over ``path``, so ``path`` is either the previous
file or the complete new one, whatever fails (a full disk, Ctrl-C). The file
gets the permissions the umask gives any new file.

:func:`load` treats the file as untrusted data. It opens regular files only (a
named pipe or a device would block or never end), caps the header at
:data:`MAX_HEADER_BYTES` before reading it and the nesting of its JSON at
:data:`MAX_JSON_DEPTH`, checks every field, verifies the digest, checks the number
of classes and of channels against the tensors' shapes (so the network it
builds is never larger than the weights the file really holds), and rebuilds
the estimator with the estimator's own code: nothing in the file is ever
executed, imported or unpickled. Any problem with the file raises
:class:`ModelFileError` (a ``ValueError``).

The digest proves integrity, not origin: it detects a damaged or edited file,
but anyone who edits a file can recompute it. Sign or checksum files out of
band to know who made them. A forged file is still only data: the loader
validates every field of it, refuses it before allocating more memory than the
file's own size, and at worst yields a LeNet-5 with other weights.

Not stored: the optimizer's state and skorch's own history (``partial_fit`` or
``warm_start`` after loading continue from the weights with a fresh optimizer,
learning-rate schedule and epoch count; ``history_`` then restarts), and
parameters that are Python objects (``callbacks``, a ``RandomState``, an
optimizer class outside ``torch.optim``: :func:`save` warns and stores their
default).

The estimator is read through its public API, its fitted attributes and its
pickling protocol (``__getstate__`` gives the fitted network as plain arrays;
``__setstate__`` rebuilds it), never through its private methods. The bytes
of the file are :mod:`sklenet._model_file`'s concern, the JSON of the
``config`` field :mod:`sklenet._model_config`'s.

safetensors is an optional dependency: ``pip install -e ".[deploy]"`` in a checkout.
"""

import os

import numpy as np

from ._atomic_write import write_atomically
from ._labels import label_values
from ._model_config import (
    encode_value,
    fitted_from_config,
    params_from_json,
    params_to_json,
    saved_device,
)
from ._model_file import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ModelFileError,
    encode,
    header_size,
    json_depth,
    read,
    require_safetensors,
    short,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "ModelFileError",
    "load",
    "save",
]

#: Largest safetensors header (JSON: the tensor table and the metadata with the
#: whole configuration) that :func:`load` reads and :func:`save` writes. A
#: LeNet-5 header is a few kB plus about 150 bytes per epoch of history and the
#: feature names; 16 MiB leaves room for 100,000 epochs or 3-channel 256x256
#: DataFrame columns, and bounds what parsing a forged header costs (about 10x
#: its size in Python objects).
MAX_HEADER_BYTES = 16 * 1024 * 1024
#: Deepest nesting of arrays and objects accepted in the header's JSON and in
#: the configuration's JSON (sklenet writes at most 4), so that a forged file
#: cannot make the parser or the checks recurse deeply.
MAX_JSON_DEPTH = 16


def save(estimator, path):
    """Write a fitted :class:`~sklenet.LeNet5Classifier` to a safe model file.

    The write is atomic: ``path`` is either left as it was (when anything
    fails, a full disk or Ctrl-C included) or holds the complete new file,
    never a truncated one. The file gets the permissions that the umask gives
    new files.

    Parameters
    ----------
    estimator : LeNet5Classifier
        A fitted estimator.
    path : str or os.PathLike
        The file to write (``.sklenet`` or ``.safetensors`` are good suffixes).
        It is a valid safetensors file. Its directory must be writable: the
        file is written there under a temporary name first.

    Returns
    -------
    path : str
        The path written.

    Raises
    ------
    OSError
        If the file cannot be written (no space left, no permission, ...):
        the error of the operating system, naming ``path``.
    ValueError
        If the model's description would be larger than
        :data:`MAX_HEADER_BYTES` (a history of about 100,000 epochs), so that
        :func:`load` would refuse the file.

    Warns
    -----
    UserWarning
        For parameters that are Python objects (``callbacks``, a
        ``RandomState``, an optimizer class outside ``torch.optim``), which are
        not saved.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> import sklenet
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = sklenet.LeNet5Classifier(max_epochs=1, random_state=0).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     path = sklenet.save(clf, os.path.join(directory, "digits.sklenet"))
    ...     loaded = sklenet.load(path)
    >>> np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    True
    """
    require_safetensors()
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    path = os.fspath(path)
    state = estimator.__getstate__()
    try:
        kind, classes = label_values(estimator.classes_)
    except TypeError as exc:
        raise TypeError(f"Cannot save this model to a safe model file: {exc}") from None
    feature_names = getattr(estimator, "feature_names_in_", None)
    config = {
        "params": params_to_json(estimator),
        "classes": classes,
        "classes_kind": kind,
        "one_hot": _fitted_on_one_hot(state),
        "image_shape": [int(d) for d in estimator.image_shape_],
        "n_features_in": int(estimator.n_features_in_),
        "feature_names_in": None if feature_names is None else [str(f) for f in feature_names],
        "history": [{str(k): encode_value(v) for k, v in row.items()}
                    for row in estimator.history_],
        "n_iter": int(estimator.n_iter_),
        "batch_size": int(estimator.batch_size_),
        "device": state["net_"]["device"],
    }
    payload = encode(state["net_"]["module"], config)
    # Refuse to write what load() would refuse to read.
    size, depth = header_size(payload), json_depth(config)
    if size > MAX_HEADER_BYTES or depth > MAX_JSON_DEPTH:
        raise ValueError(
            f"Cannot save this model: its description takes {size} bytes nested "
            f"{depth} deep, more than a model file holds (MAX_HEADER_BYTES="
            f"{MAX_HEADER_BYTES}, MAX_JSON_DEPTH={MAX_JSON_DEPTH}). Shorten history_ "
            f"({len(estimator.history_)} epochs) before saving."
        )
    write_atomically(path, payload)
    return path


def load(path, *, device=None):
    """Load a model file written by :func:`save`.

    The file is treated as untrusted data and nothing in it is executed: only
    regular files are opened, the safetensors header (JSON) is parsed within
    :data:`MAX_HEADER_BYTES` and :data:`MAX_JSON_DEPTH`, every field is
    checked, the SHA-256 digest of the tensors and metadata is verified, the
    tensors' shapes are checked against the declared classes and channels
    before anything is built, and the estimator is rebuilt by sklenet's own
    code. The digest proves the file is intact, not who wrote it.

    Parameters
    ----------
    path : str or os.PathLike
        The model file.
    device : {"auto", "cpu", "cuda"} or None, default=None
        Where the loaded model runs, as the estimator's ``device`` parameter.
        None: where it ran when saved, or on the CPU (with a warning) when that
        was CUDA and PyTorch sees no CUDA device.

    Returns
    -------
    estimator : LeNet5Classifier
        The fitted estimator, with the saved parameters; ``predict`` and
        ``predict_proba`` give the same results as the saved one did.

    Raises
    ------
    ModelFileError
        If the file is missing or unreadable, not a regular file, not an
        sklenet model file (e.g. a pickle), truncated or damaged, larger than
        the caps, holds tensors of the wrong shapes, or was written in a newer
        format version. A subclass of ``ValueError``.
    ValueError
        If ``device`` is not one of the values above, or is ``"cuda"`` where
        PyTorch sees no CUDA device.
    """
    require_safetensors()
    from ._options import resolve_device
    from .classifier import LeNet5Classifier

    if device is not None:
        device = resolve_device(device)
    path = os.fspath(path)
    config, shapes, arrays = read(path, max_header_bytes=MAX_HEADER_BYTES,
                                  max_json_depth=MAX_JSON_DEPTH)
    fitted = fitted_from_config(path, config, shapes)
    params = params_from_json(path, config.get("params"),
                              LeNet5Classifier().get_params(deep=False))
    if device is None:
        device = saved_device(path, config)
    return _rebuild_estimator(path, params, fitted, arrays, device)


def _check_tensors(path, expected, arrays, architecture):
    """The file's tensors must be exactly those of the ``expected`` state dict."""
    missing = sorted(set(expected) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected))
    if missing or unexpected:
        raise ModelFileError(
            f"{path!r} does not hold the tensors of this network: missing "
            f"{short(missing, 200)}, unexpected {short(unexpected, 200)}."
        )
    for name, ref in expected.items():
        array = arrays[name]
        if tuple(array.shape) != tuple(ref.shape):
            raise ModelFileError(
                f"{path!r}: tensor {name!r} has shape {tuple(array.shape)}, but a network "
                f"for {architecture['in_channels']} channels and "
                f"{architecture['n_classes']} classes needs {tuple(ref.shape)}."
            )
        wanted = np.dtype(str(ref.dtype).removeprefix("torch."))
        if array.dtype != wanted:
            raise ModelFileError(
                f"{path!r}: tensor {name!r} is {array.dtype}, expected {wanted}."
            )


# -------------------------------------------- beyond the estimator's public API
# The only code here that knows more of LeNet5Classifier than its public API,
# fitted attributes and pickling protocol:
# * "_one_hot", the key of its pickled state that says whether it was fitted on
#   one-hot rows (which predict's output form shows, but no attribute names);
# * sklearn's BaseEstimator._validate_params, the check fit runs, which sklearn
#   offers no public way to run without fitting: a file's parameters must pass
#   it before anything is built from them.

_ONE_HOT_STATE_KEY = "_one_hot"


def _fitted_on_one_hot(state):
    """Whether the estimator of the pickled ``state`` was fitted on one-hot rows."""
    return bool(state[_ONE_HOT_STATE_KEY])


def _rebuild_estimator(path, params, fitted, arrays, device):
    """The fitted estimator, rebuilt through its pickling protocol (``__setstate__``).

    ``fitted`` holds the checked fitted attributes (and ``one_hot``),
    ``arrays`` the module's tensors; the tensor names, shapes and dtypes are
    checked against a freshly built module before the estimator is built.
    """
    import torch

    from . import _training
    from ._speed import resolve_precision
    from .classifier import LeNet5Classifier

    estimator = LeNet5Classifier(**params)
    try:
        estimator._validate_params()
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{path!r}: invalid parameters: {exc}") from None
    architecture = _training.architecture(
        estimator.get_params(deep=False), fitted["image_shape_"], len(fitted["classes_"])
    )
    expected = _training.build_module(architecture).state_dict()
    _check_tensors(path, expected, arrays, architecture)
    amp_dtype = resolve_precision(estimator.precision, device)
    snapshot = {  # the layout of _training.snapshot, which __setstate__ reads
        "architecture": architecture,
        "module": {name: arrays[name].copy() for name in expected},  # writable copies
        "optimizer": None,
        "history": [],
        "device": device,
        "amp_dtype": None if amp_dtype is None else str(amp_dtype).removeprefix("torch."),
        "channels_last": bool(estimator.channels_last),
    }
    state = dict(estimator.__getstate__(), **fitted, net_=snapshot)
    state[_ONE_HOT_STATE_KEY] = state.pop("one_hot")
    with torch.no_grad():
        estimator.__setstate__(state)
    return estimator
