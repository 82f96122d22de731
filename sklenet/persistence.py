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
file or the complete new one, whatever fails (a full disk, Ctrl-C). A new file
gets the permissions the umask gives any new file; a file written over keeps
its own.

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

The estimator is read and rebuilt through the seam :mod:`sklenet.classifier`
defines for file formats (:func:`~sklenet.classifier.fitted_model`,
:func:`~sklenet.classifier.rebuild_estimator`), never through its private
attributes. The bytes
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
    never a truncated one. A new file gets the permissions that the umask
    gives new files; a file written over keeps its mode.

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
    from .classifier import LeNet5Classifier, fitted_model

    model = fitted_model(estimator)
    path = _checked_path(path)
    try:
        kind, classes = label_values(model.classes)
    except TypeError as exc:
        raise TypeError(f"Cannot save this model to a safe model file: {exc}") from None
    config = {
        "params": params_to_json(model.params, LeNet5Classifier().get_params(deep=False)),
        "classes": classes,
        "classes_kind": kind,
        "one_hot": model.one_hot,
        "image_shape": list(model.image_shape),
        "n_features_in": model.n_features_in,
        "feature_names_in": (None if model.feature_names_in is None
                             else [str(f) for f in model.feature_names_in]),
        "history": [{str(k): encode_value(v) for k, v in row.items()} for row in model.history],
        "n_iter": len(model.history),
        "batch_size": model.batch_size,
        "temperature": model.temperature,
        "device": model.device,
    }
    payload = encode(model.weights, config)
    # Refuse to write what load() would refuse to read.
    size, depth = header_size(payload), json_depth(config)
    if size > MAX_HEADER_BYTES or depth > MAX_JSON_DEPTH:
        raise ValueError(
            f"Cannot save this model: its description takes {size} bytes nested "
            f"{depth} deep, more than a model file holds (MAX_HEADER_BYTES="
            f"{MAX_HEADER_BYTES}, MAX_JSON_DEPTH={MAX_JSON_DEPTH}). Shorten history_ "
            f"({len(model.history)} epochs) before saving."
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
    path = _checked_path(path)
    config, shapes, arrays = read(path, max_header_bytes=MAX_HEADER_BYTES,
                                  max_json_depth=MAX_JSON_DEPTH, expected=_expected_tensors)
    fitted = fitted_from_config(path, config, shapes)
    params = params_from_json(path, config.get("params"),
                              LeNet5Classifier().get_params(deep=False))
    if device is None:
        device = saved_device(path, config)
    return _rebuild_estimator(path, params, fitted, arrays, device)


def _checked_path(path):
    """``os.fspath(path)``, refused with an error naming the argument when unusable."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"The 'path' argument must be a str or os.PathLike, got "
                        f"{type(path).__name__}.")
    path = os.fsdecode(path)  # messages and temporary names are built from a str
    if "\0" in path:
        raise ValueError(f"The 'path' argument contains a NUL byte, which no file name "
                         f"holds: {short(path)}.")
    return path


def _expected_tensors(path, config, shapes):
    """``{name: (shape, dtype)}`` of the network ``config`` describes.

    Checked against the file's tensor table before any tensor byte is read, so
    that a file holding other or larger tensors than its network is refused
    unread, whatever size it claims.
    """
    from . import _training
    from .classifier import LeNet5Classifier

    fitted = fitted_from_config(path, config, shapes)
    params = params_from_json(path, config.get("params"),
                              LeNet5Classifier().get_params(deep=False))
    architecture = _checked_architecture(path, params, fitted)
    return {name: (tuple(t.shape), np.dtype(str(t.dtype).removeprefix("torch.")))
            for name, t in _training.build_module(architecture).state_dict().items()}


def _checked_architecture(path, params, fitted):
    """The architecture of the network a file describes, once its parameters
    have passed the checks ``fit`` runs."""
    from . import _training
    from .classifier import LeNet5Classifier, check_params

    estimator = LeNet5Classifier(**params)
    try:
        check_params(estimator)
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{path!r}: invalid parameters: {exc}") from None
    return _training.architecture(
        estimator.get_params(deep=False), fitted["image_shape_"], len(fitted["classes_"])
    )


def _rebuild_estimator(path, params, fitted, arrays, device):
    """The fitted estimator of a checked file, through the estimator's seam.

    ``fitted`` holds the checked fitted attributes (and ``one_hot``),
    ``arrays`` the module's tensors, whose table :func:`read` has checked
    against the network's (:func:`_expected_tensors`).
    """
    import torch

    from .classifier import FittedModel, rebuild_estimator

    model = FittedModel(
        params=params,
        classes=fitted["classes_"],
        one_hot=fitted["one_hot"],
        image_shape=fitted["image_shape_"],
        n_features_in=fitted["n_features_in_"],
        feature_names_in=fitted.get("feature_names_in_"),
        history=fitted["history_"],
        batch_size=fitted["batch_size_"],
        temperature=fitted["temperature_"],
        architecture=_checked_architecture(path, params, fitted),
        weights=arrays,
        device=device,
    )
    with torch.no_grad():
        return rebuild_estimator(model, device)
