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

:func:`load` parses that header with a strict size limit, checks every field,
verifies the digest and the tensor shapes, and rebuilds the estimator with the
estimator's own code: nothing in the file is ever executed, imported or
unpickled. Any problem raises :class:`ModelFileError` (a ``ValueError``).

The digest detects corruption and edits of the weights or the metadata, not a
forger who recomputes it: it proves integrity, not origin (sign or checksum the
file out of band for that). Even a forged file cannot run code: the loader
validates every field of such a file and only ever builds a LeNet-5 from it.

Not stored: the optimizer's state and skorch's own history (``partial_fit`` or
``warm_start`` after loading continue from the weights with a fresh optimizer,
learning-rate schedule and epoch count; ``history_`` then restarts), and
parameters that are Python objects (``callbacks``, a ``RandomState``, an
optimizer class outside ``torch.optim``: :func:`save` warns and stores their
default).

safetensors is an optional dependency: ``pip install sklenet[deploy]``.
"""

import hashlib
import inspect
import json
import math
import os
import struct
import warnings

import numpy as np

from ._optional import import_optional

__all__ = ["save", "load", "ModelFileError", "FORMAT_NAME", "FORMAT_VERSION"]

#: Value of the ``format`` metadata field.
FORMAT_NAME = "sklenet.LeNet5Classifier"
#: Version of the file layout written by :func:`save`; :func:`load` reads this
#: version and older ones.
FORMAT_VERSION = 1

#: Largest safetensors header accepted (the header of a LeNet-5 file is a few kB
#: plus the history).
_MAX_HEADER_BYTES = 64 * 1024 * 1024
_PICKLE_PROTO = 0x80  # opcode PROTO, then the protocol: how pickles >= 2 start
_PICKLE_PROTOCOLS = range(2, 6)
_ZIP_MAGIC = b"PK\x03\x04"
_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16,
           "I64": np.int64, "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}
_NUMPY_DTYPES = {"float32", "float64", "float16", "int64", "int32", "uint8", "bool"}


class ModelFileError(ValueError):
    """A model file is not a valid sklenet model file (or is damaged)."""


def _import_safetensors():
    return import_optional("safetensors.torch", "sklenet model files")


# ------------------------------------------------------------------ JSON values


def _encode(value):
    """``value`` as JSON-able data, tuples tagged so they come back as tuples."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    raise TypeError(type(value).__name__)


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"tuple"} and isinstance(value["tuple"], list):
            return tuple(_decode(v) for v in value["tuple"])
        if set(value) == {"float"} and value["float"] in ("inf", "-inf", "nan"):
            return float(value["float"])
        raise ModelFileError(f"Unexpected value in the parameters: {value!r}.")
    return value


def _optimizer_name(optimizer):
    import torch

    name = getattr(optimizer, "__name__", None)
    if (isinstance(optimizer, type) and name and getattr(torch.optim, name, None)
            is optimizer):
        return f"torch.optim.{name}"
    return None


def _params_to_json(estimator):
    params = estimator.get_params(deep=False)
    defaults = {
        name: p.default
        for name, p in inspect.signature(type(estimator).__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    out = {}
    for name, value in params.items():
        if name == "optimizer" and isinstance(value, type):
            dotted = _optimizer_name(value)
            if dotted is not None:
                out[name] = {"optimizer": dotted}
                continue
        if name == "callbacks" and not value:
            out[name] = None
            continue
        try:
            out[name] = _encode(value)
        except TypeError:
            default = defaults.get(name)
            warnings.warn(
                f"Parameter {name}={value!r} is a Python object and is not saved (a "
                f"safe model file holds no code); the loaded model gets the default "
                f"{name}={default!r}. Predictions are unaffected; set it again before "
                f"refitting.",
                UserWarning,
                stacklevel=3,
            )
            out[name] = _encode(default)
    return out


def _params_from_json(data, valid_names):
    import torch

    if not isinstance(data, dict):
        raise ModelFileError("The 'params' field must be a JSON object.")
    unknown = sorted(set(data) - set(valid_names))
    if unknown:
        raise ModelFileError(
            f"The file sets parameters {unknown} that this version of sklenet does not "
            f"know; it was probably written by a newer sklenet. Upgrade sklenet."
        )
    params = {}
    for name, value in data.items():
        if name == "optimizer" and isinstance(value, dict):
            dotted = value.get("optimizer")
            prefix = "torch.optim."
            cls = None
            if isinstance(dotted, str) and dotted.startswith(prefix):
                cls = getattr(torch.optim, dotted[len(prefix):], None)
            if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
                raise ModelFileError(f"Unknown optimizer {dotted!r} in the parameters.")
            params[name] = cls
        else:
            params[name] = _decode(value)
    return params


# ---------------------------------------------------------------------- save


#: The metadata fields covered by the digest (all of them but the digest itself).
_DIGESTED_FIELDS = ("format", "format_version", "sklenet_version", "config")


def _digest(tensors, metadata):
    """SHA-256 of the metadata fields and of the tensors' names, dtypes, shapes, bytes."""
    h = hashlib.sha256()
    h.update(json.dumps([metadata.get(k) for k in _DIGESTED_FIELDS]).encode())
    for name in sorted(tensors):
        array = tensors[name]
        h.update(json.dumps([name, str(array.dtype), list(array.shape)]).encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def _classes_to_json(classes):
    classes = np.asarray(classes)
    kind = classes.dtype.kind
    if kind == "b":
        return "bool", [bool(c) for c in classes]
    if kind in "iu":
        return "int", [int(c) for c in classes]
    if kind == "f":
        return "float", [float(c) for c in classes]
    if kind == "U" or (kind == "O" and all(isinstance(c, str) for c in classes)):
        return "str", [str(c) for c in classes]
    raise TypeError(
        f"Cannot save class labels {classes.tolist()!r} (dtype {classes.dtype}): a safe "
        f"model file stores integer, float, boolean or string labels only."
    )


def save(estimator, path):
    """Write a fitted :class:`~sklenet.LeNet5Classifier` to a safe model file.

    Parameters
    ----------
    estimator : LeNet5Classifier
        A fitted estimator.
    path : str or os.PathLike
        The file to write (``.sklenet`` or ``.safetensors`` are good suffixes).
        It is a valid safetensors file.

    Returns
    -------
    path : str
        The path written.

    Warns
    -----
    UserWarning
        For parameters that are Python objects (``callbacks``, a
        ``RandomState``, an optimizer class outside ``torch.optim``), which are
        not saved.
    """
    st = _import_safetensors()
    from sklearn.utils.validation import check_is_fitted

    from . import __version__

    check_is_fitted(estimator)
    state = estimator.net_.module_.state_dict()
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state.items()}
    for name, t in tensors.items():
        if str(t.dtype).replace("torch.", "") not in _NUMPY_DTYPES:
            raise TypeError(f"Cannot save tensor {name!r} of dtype {t.dtype}.")
    arrays = {name: t.numpy() for name, t in tensors.items()}
    kind, classes = _classes_to_json(estimator.classes_)
    feature_names = getattr(estimator, "feature_names_in_", None)
    config = {
        "params": _params_to_json(estimator),
        "classes": classes,
        "classes_kind": kind,
        "one_hot": bool(estimator._one_hot),
        "image_shape": [int(d) for d in estimator.image_shape_],
        "n_features_in": int(estimator.n_features_in_),
        "feature_names_in": None if feature_names is None else [str(f) for f in feature_names],
        "history": [{str(k): _encode(v) for k, v in row.items()}
                    for row in estimator.history_],
        "n_iter": int(estimator.n_iter_),
        "device": str(estimator.net_.device),
    }
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "sklenet_version": __version__,
        "config": json.dumps(config, allow_nan=False),
    }
    metadata["sha256"] = _digest(arrays, metadata)
    path = os.fspath(path)
    st.save_file(tensors, path, metadata=metadata)
    return path


# ---------------------------------------------------------------------- load


def _read_header(path):
    """Parse the safetensors header; return ``(header_dict, data_bytes)``."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ModelFileError(
                    f"{path!r} is not an sklenet model file: it is only {len(head)} bytes "
                    f"long (empty or truncated)."
                )
            (n,) = struct.unpack("<Q", head)
            size = os.fstat(f.fileno()).st_size
            first = f.read(1)
            if not (2 <= n <= _MAX_HEADER_BYTES and 8 + n <= size and first == b"{"):
                if head[0] == _PICKLE_PROTO and head[1] in _PICKLE_PROTOCOLS:
                    raise ModelFileError(
                        f"{path!r} is a pickle file (e.g. written by joblib.dump or "
                        f"pickle.dump), not an sklenet model file. sklenet.load never "
                        f"unpickles; use joblib.load only for files you trust."
                    )
                if head[:4] == _ZIP_MAGIC:
                    raise ModelFileError(
                        f"{path!r} is a zip archive (e.g. written by torch.save), not "
                        f"an sklenet model file; sklenet.load never unpickles."
                    )
                raise ModelFileError(
                    f"{path!r} is not an sklenet model file, or it is truncated: it does "
                    f"not start with a safetensors header (its first 8 bytes announce a "
                    f"{n}-byte header; the file holds {size} bytes)."
                )
            raw = first + f.read(n - 1)
            data = f.read()
    except OSError as exc:
        raise ModelFileError(f"Cannot read model file {path!r}: {exc}") from exc
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(
            f"{path!r} is not an sklenet model file: its safetensors header is not valid "
            f"JSON ({exc})."
        ) from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path!r} is not an sklenet model file: bad header.")
    return header, data


def _check_metadata(path, header):
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{path!r} is a safetensors file but not an sklenet model file (its metadata "
            f"has no format={FORMAT_NAME!r}); write model files with "
            f"LeNet5Classifier.save()."
        )
    if not all(isinstance(v, str) for v in metadata.values()):
        raise ModelFileError(f"{path!r}: metadata values must be strings.")
    version = metadata.get("format_version")
    if not (isinstance(version, str) and version.isdigit()):
        raise ModelFileError(f"{path!r}: invalid format_version {version!r}.")
    if int(version) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path!r} was written by sklenet {metadata.get('sklenet_version', '?')} in "
            f"model file format version {version}; this sklenet reads versions up to "
            f"{FORMAT_VERSION}. Upgrade sklenet to load it."
        )
    try:
        config = json.loads(metadata.get("config", ""))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path!r}: the 'config' metadata is not JSON ({exc}).") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{path!r}: the 'config' metadata must be a JSON object.")
    return metadata, config


def _tensors_from_header(path, header, data):
    """The tensors as numpy arrays, every offset and size checked."""
    tensors = {}
    end_max = 0
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise ModelFileError(f"{path!r}: bad header entry for tensor {name!r}.")
        dtype = _DTYPES.get(info["dtype"])
        shape, offsets = info["shape"], info["data_offsets"]
        if dtype is None:
            raise ModelFileError(f"{path!r}: unsupported dtype {info['dtype']!r} of {name!r}.")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)
                and isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and o >= 0 for o in offsets)):
            raise ModelFileError(f"{path!r}: bad shape or offsets for tensor {name!r}.")
        start, end = offsets
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        if end - start != nbytes:
            raise ModelFileError(
                f"{path!r}: tensor {name!r} of shape {shape} needs {nbytes} bytes but its "
                f"offsets span {end - start}."
            )
        if end > len(data):
            raise ModelFileError(
                f"{path!r} is truncated: tensor {name!r} ends at byte {end} of the data "
                f"section, which holds only {len(data)} bytes."
            )
        spans.append((start, end))
        end_max = max(end_max, end)
        tensors[name] = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<"),
                                      count=math.prod(shape), offset=start).reshape(shape)
    spans.sort()
    position = 0
    for start, end in spans:
        if start != position:
            raise ModelFileError(f"{path!r}: tensor data overlaps or has gaps.")
        position = end
    if end_max != len(data):
        raise ModelFileError(
            f"{path!r}: {len(data) - end_max} unexpected bytes after the tensor data."
        )
    return tensors


def _field(config, name, check, what):
    value = config.get(name)
    if not check(value):
        raise ModelFileError(f"Invalid model file: field {name!r} must be {what}, got "
                             f"{value!r}.")
    return value


def _is_int_list(v):
    return isinstance(v, list) and all(isinstance(d, int) and not isinstance(d, bool)
                                       and d > 0 for d in v)


def load(path, *, device=None):
    """Load a model file written by :func:`save` / :meth:`LeNet5Classifier.save`.

    Nothing in the file is executed: the file is parsed as a safetensors header
    (JSON) and raw tensor bytes, every field is checked, the SHA-256 digest of
    the tensors is verified, and the estimator is rebuilt by sklenet's own code.

    Parameters
    ----------
    path : str or os.PathLike
        The model file.
    device : {"cpu", "cuda"} or None, default=None
        Where the loaded model runs. None: where it ran when saved, or on the
        CPU (with a warning) when that was CUDA and no CUDA device is available.

    Returns
    -------
    estimator : LeNet5Classifier
        The fitted estimator, with the saved parameters; ``predict`` and
        ``predict_proba`` give the same results as the saved one did.

    Raises
    ------
    ModelFileError
        If the file is not an sklenet model file (e.g. a pickle), is truncated
        or damaged, holds tensors of the wrong shapes, or was written in a newer
        format version. A subclass of ``ValueError``.
    """
    _import_safetensors()
    import torch

    from .classifier import LeNet5Classifier

    path = os.fspath(path)
    header, data = _read_header(path)
    metadata, config = _check_metadata(path, header)
    arrays = _tensors_from_header(path, header, data)
    if metadata.get("sha256") != _digest(arrays, metadata):
        raise ModelFileError(
            f"{path!r} is damaged or was modified: the SHA-256 digest of its tensors and "
            f"metadata does not match the one recorded when it was saved."
        )

    est = LeNet5Classifier()
    params = _params_from_json(config.get("params"), est.get_params(deep=False))
    try:
        est.set_params(**params)
        est._validate_params()
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{path!r}: invalid parameters: {exc}") from None

    kind = _field(config, "classes_kind", lambda v: v in ("bool", "int", "float", "str"),
                  "one of bool, int, float, str")
    dtype = {"bool": bool, "int": np.int64, "float": np.float64, "str": str}[kind]
    py_type = {"bool": bool, "int": int, "float": (int, float), "str": str}[kind]
    classes = _field(
        config, "classes",
        lambda v: isinstance(v, list) and len(v) >= 2 and all(
            isinstance(c, py_type) and (kind == "bool" or not isinstance(c, bool))
            for c in v),
        f"a list of at least 2 {kind} values",
    )
    classes = np.array(classes, dtype=dtype)
    if len(np.unique(classes)) != len(classes) or not np.all(classes[:-1] <= classes[1:]):
        raise ModelFileError(f"{path!r}: the classes must be sorted and distinct.")
    one_hot = _field(config, "one_hot", lambda v: isinstance(v, bool), "true or false")
    image_shape = tuple(_field(config, "image_shape",
                               lambda v: _is_int_list(v) and len(v) == 3,
                               "a list of 3 positive ints"))
    n_features = _field(config, "n_features_in", lambda v: isinstance(v, int)
                        and not isinstance(v, bool), "an int")
    if n_features != math.prod(image_shape):
        raise ModelFileError(
            f"{path!r}: n_features_in={n_features} does not match image_shape={image_shape}."
        )
    feature_names = config.get("feature_names_in")
    if feature_names is not None and not (
        isinstance(feature_names, list) and len(feature_names) == n_features
        and all(isinstance(f, str) for f in feature_names)
    ):
        raise ModelFileError(f"{path!r}: bad feature_names_in.")
    history = [
        {k: _decode(v) for k, v in row.items()}
        for row in _field(config, "history", lambda v: isinstance(v, list)
                          and all(isinstance(r, dict) for r in v), "a list of objects")
    ]
    for row in history:
        for value in row.values():
            if not (value is None or isinstance(value, (int, float))):
                raise ModelFileError(f"{path!r}: bad value {value!r} in the history.")
    n_iter = _field(config, "n_iter", lambda v: isinstance(v, int), "an int")

    if device is None:
        device = config.get("device", "cpu")
        if not isinstance(device, str):
            raise ModelFileError(f"{path!r}: bad device {device!r}.")
        if device.startswith("cuda") and not torch.cuda.is_available():
            warnings.warn(
                f"The model was saved on {device}, but PyTorch sees no CUDA device; it "
                f"is loaded on the CPU.", UserWarning, stacklevel=2,
            )
            device = "cpu"
        elif not device.startswith("cuda"):
            device = "cpu"
    elif device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or None, got {device!r}.")

    est.classes_ = classes
    est._one_hot = one_hot
    est.image_shape_ = image_shape
    est.n_features_in_ = n_features
    if feature_names is not None:
        est.feature_names_in_ = np.array(feature_names, dtype=object)
    est.history_ = history
    est.n_iter_ = n_iter
    est.net_ = _rebuild_net(path, est, arrays, device)
    return est


def _rebuild_net(path, est, arrays, device):
    """The skorch net of ``est``, built by the estimator's own code, with the weights."""
    import torch

    n_classes = len(est.classes_)
    # Placeholder statistics: the adapter's buffers come from the file below.
    channels = est.image_shape_[0]
    placeholder = np.zeros(channels), np.ones(channels)
    has_validation = bool(est.validation_fraction)
    with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
        net = est._new_net(*placeholder, n_classes, device, 0, has_validation)
        net.initialize()
    expected = net.module_.state_dict()
    missing = sorted(set(expected) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected))
    if missing or unexpected:
        raise ModelFileError(
            f"{path!r} does not hold the tensors of this network: missing {missing}, "
            f"unexpected {unexpected}."
        )
    state = {}
    for name, ref in expected.items():
        array = arrays[name]
        if tuple(array.shape) != tuple(ref.shape):
            raise ModelFileError(
                f"{path!r}: tensor {name!r} has shape {tuple(array.shape)}, but a network "
                f"for image shape {est.image_shape_} and {n_classes} classes needs "
                f"{tuple(ref.shape)}."
            )
        tensor = torch.from_numpy(array.copy())
        if tensor.dtype != ref.dtype:
            raise ModelFileError(
                f"{path!r}: tensor {name!r} is {tensor.dtype}, expected {ref.dtype}."
            )
        state[name] = tensor
    net.module_.load_state_dict(state, strict=True)
    est._set_execution(net, device)  # precision and channels_last, as after fit
    net.module_.eval()
    return net
