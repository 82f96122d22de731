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

safetensors is an optional dependency: ``pip install sklenet[deploy]``.
"""

import contextlib
import errno
import hashlib
import inspect
import json
import math
import os
import re
import secrets
import stat
import struct
import warnings

import numpy as np

from ._labels import label_array, label_values
from ._optional import import_optional

__all__ = ["save", "load", "ModelFileError", "FORMAT_NAME", "FORMAT_VERSION",
           "MAX_HEADER_BYTES", "MAX_JSON_DEPTH"]

#: Value of the ``format`` metadata field.
FORMAT_NAME = "sklenet.LeNet5Classifier"
#: Version of the file layout written by :func:`save`; :func:`load` reads this
#: version and older ones.
FORMAT_VERSION = 1

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
#: Highest tensor rank accepted in the tensor table (LeNet-5's is 4).
_MAX_RANK = 8

_PICKLE_PROTO = 0x80  # opcode PROTO, then the protocol: how pickles >= 2 start
_PICKLE_PROTOCOLS = range(2, 6)
_ZIP_MAGIC = b"PK\x03\x04"
_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16,
           "I64": np.int64, "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}
_NUMPY_DTYPES = {"float32", "float64", "float16", "int64", "int32", "uint8", "bool"}
#: Where the size of the network a file asks for shows in its tensors, as
#: ``(tensor, axis)``: the output layer has a row per class, the first
#: convolution a slice per input channel. Every other LeNet-5 layer has a fixed
#: size.
_CLASSES_AXIS = ("lenet5.output.weight", 0)
_CHANNELS_AXIS = ("lenet5.c1.weight", 1)


class ModelFileError(ValueError):
    """A model file is not a valid sklenet model file (or is damaged)."""


def _import_safetensors():
    return import_optional("safetensors.numpy", "sklenet model files")


# ------------------------------------------------------------------ JSON text


def _depth(value):
    """How deeply lists and dicts nest in ``value`` (0 for a scalar); no recursion.

    >>> _depth({"a": [1, {"b": "[[["}]})
    3
    """
    def children(item):
        return iter(item.values() if isinstance(item, dict) else item)

    if not isinstance(value, (list, dict)):
        return 0
    deepest, stack = 1, [children(value)]  # an iterator per open container
    while stack:
        for child in stack[-1]:
            if isinstance(child, (list, dict)):
                if len(stack) == deepest:
                    deepest += 1
                if child:  # an empty one opens nothing to walk
                    stack.append(children(child))
                    break
        else:
            stack.pop()
    return deepest


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def _parse_json(path, text, what):
    """``json.loads(text)``, refusing nesting deeper than MAX_JSON_DEPTH.

    The size of ``text`` is capped before (MAX_HEADER_BYTES), so parsing costs
    a bounded amount of memory; json's C parser stops deep nesting with a
    RecursionError at the interpreter's recursion limit, and the depth of what
    it returns is checked without recursing, so the checks that follow (some
    recursive) never see more than MAX_JSON_DEPTH levels.
    """
    too_deep = ModelFileError(
        f"{path!r} is not an sklenet model file: {what} nests arrays and objects deeper "
        f"than sklenet reads (MAX_JSON_DEPTH={MAX_JSON_DEPTH})."
    )
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # JSONDecodeError, NaN, and integers of > 4300 digits
        raise ModelFileError(
            f"{path!r} is not an sklenet model file: {what} is not valid JSON ({exc})."
        ) from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise too_deep
    return value


def _short(value, limit=80):
    """``repr(value)``, cut to ``limit`` characters: forged values can be huge."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
        raise ModelFileError(f"Unexpected value {_short(value)} in the model file.")
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


def _params_from_json(path, data, valid_names):
    """The parameters stored by :func:`_params_to_json`, as plain values."""
    import torch

    if not isinstance(data, dict):
        raise ModelFileError(f"{path!r}: the 'params' field must be a JSON object.")
    unknown = sorted(set(data) - set(valid_names))
    if unknown:
        raise ModelFileError(
            f"{path!r} sets parameters {_short(unknown)} that this version of sklenet "
            f"does not know; it was probably written by a newer sklenet. Upgrade sklenet."
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
                raise ModelFileError(
                    f"{path!r}: unknown optimizer {_short(dotted)} in the parameters."
                )
            params[name] = cls
        elif name == "callbacks" and value is not None:
            # save() never stores callbacks (they are code): anything else is forged.
            raise ModelFileError(
                f"{path!r}: the 'callbacks' parameter must be null in a model file, got "
                f"{_short(value)}."
            )
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
    """
    st = _import_safetensors()
    from sklearn.utils.validation import check_is_fitted

    from ._version import __version__

    check_is_fitted(estimator)
    path = os.fspath(path)
    state = estimator.net_.module_.state_dict()
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state.items()}
    for name, t in tensors.items():
        if str(t.dtype).replace("torch.", "") not in _NUMPY_DTYPES:
            raise TypeError(f"Cannot save tensor {name!r} of dtype {t.dtype}.")
    arrays = {name: t.numpy() for name, t in tensors.items()}
    try:
        kind, classes = label_values(estimator.classes_)
    except TypeError as exc:
        raise TypeError(f"Cannot save this model to a safe model file: {exc}") from None
    feature_names = getattr(estimator, "feature_names_in_", None)
    config = {
        "params": _params_to_json(estimator),
        "classes": classes,
        "classes_kind": kind,
        "one_hot": _one_hot(estimator),
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
    payload = st.save(arrays, metadata=metadata)
    # Refuse to write what load() would refuse to read.
    (header_bytes,) = struct.unpack("<Q", payload[:8])
    depth = _depth(config)
    if header_bytes > MAX_HEADER_BYTES or depth > MAX_JSON_DEPTH:
        raise ValueError(
            f"Cannot save this model: its description takes {header_bytes} bytes nested "
            f"{depth} deep, more than a model file holds (MAX_HEADER_BYTES="
            f"{MAX_HEADER_BYTES}, MAX_JSON_DEPTH={MAX_JSON_DEPTH}). Shorten history_ "
            f"({len(estimator.history_)} epochs) before saving."
        )
    _write_atomically(path, payload)
    return path


_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # POSIX only


def _write_atomically(path, payload):
    """Replace ``path`` by a file holding ``payload``: all or nothing.

    The bytes go to a new file in the same directory (``os.replace`` is atomic
    only within one file system) and reach the disk (``fsync``) before the file
    takes ``path``'s name; the directory is synced after, so that the rename
    survives a power cut too. Written with ``os.write`` rather than by the
    installed safetensors, whose writes were not atomic in every version.
    """
    directory = os.path.dirname(os.path.abspath(path))
    created = None
    try:
        fd, created = _create_temporary(path)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(created, path)
    except BaseException as exc:
        if created is not None:
            with contextlib.suppress(OSError):  # already renamed, or already gone
                os.unlink(created)
        if isinstance(exc, OSError):
            # The caller knows ``path``, not the temporary name.
            raise _error_about(exc, path) from None
        raise
    _fsync_directory(directory)


def _create_temporary(path):
    """A new empty file next to ``path``, opened for writing: ``(fd, name)``."""
    directory, name = os.path.split(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY
    for _ in range(100):
        candidate = os.path.join(directory, f".{name[:200]}.{secrets.token_hex(4)}.tmp")
        try:
            # Mode 0o666, as open() asks for: the kernel applies the umask and any
            # default ACL, where mkstemp's fixed 0o600 would need a chmod that
            # reads the umask (process-wide, so racy in threads).
            return os.open(candidate, flags, 0o666), candidate
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "No free temporary file name", directory)


def _error_about(exc, path):
    """The ``OSError`` ``exc``, with its errno and message, about ``path``."""
    if exc.errno is None:
        return OSError(f"Cannot write the model file {path!r}: {exc.strerror or exc}")
    return OSError(exc.errno, exc.strerror, path)  # the errno's subclass, e.g. PermissionError


def _fsync_directory(directory):
    if os.name != "posix":  # Windows cannot open a directory
        return
    with contextlib.suppress(OSError):  # the file is in place; this is extra safety
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------- load


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def _require_regular_file(path, mode):
    if not stat.S_ISREG(mode):
        kind = next((what for test, what in _FILE_KINDS if test(mode)), "not a regular file")
        raise ModelFileError(
            f"{path!r} is {kind}, not a model file; sklenet.load reads regular files "
            f"only (written by sklenet.save)."
        )


def _open_regular_file(path):
    """Open ``path`` for reading; refuse anything but a regular file unread.

    Checked before opening (opening a device can have effects of its own) and
    again on the open file, in case ``path`` was replaced in between. The open
    itself does not block: ``O_NONBLOCK`` makes opening a FIFO return at once
    instead of waiting for a writer (reading regular files ignores the flag).
    """
    _require_regular_file(path, os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_BINARY)
    f = os.fdopen(fd, "rb")
    try:
        _require_regular_file(path, os.fstat(fd).st_mode)
    except BaseException:
        f.close()
        raise
    return f


def _read_header(path, f):
    """Parse the safetensors header; return ``(header_dict, data_size)``."""
    head = f.read(8)
    if len(head) < 8:
        raise ModelFileError(
            f"{path!r} is not an sklenet model file: it is only {len(head)} bytes long "
            f"(empty or truncated)."
        )
    (n,) = struct.unpack("<Q", head)
    size = os.fstat(f.fileno()).st_size
    first = f.read(1)
    if not (2 <= n and 8 + n <= size and first == b"{"):
        if head[0] == _PICKLE_PROTO and head[1] in _PICKLE_PROTOCOLS:
            raise ModelFileError(
                f"{path!r} is a pickle file (e.g. written by joblib.dump or pickle.dump), "
                f"not an sklenet model file. sklenet.load never unpickles; use "
                f"joblib.load only for files you trust."
            )
        if head[:4] == _ZIP_MAGIC:
            raise ModelFileError(
                f"{path!r} is a zip archive (e.g. written by torch.save), not an sklenet "
                f"model file; sklenet.load never unpickles."
            )
        raise ModelFileError(
            f"{path!r} is not an sklenet model file, or it is truncated: it does not "
            f"start with a safetensors header (its first 8 bytes announce a {n}-byte "
            f"header; the file holds {size} bytes)."
        )
    if n > MAX_HEADER_BYTES:
        raise ModelFileError(
            f"{path!r} is not an sklenet model file: its safetensors header takes {n} "
            f"bytes, more than an sklenet model file holds (MAX_HEADER_BYTES="
            f"{MAX_HEADER_BYTES}). It is another kind of safetensors file, or forged."
        )
    raw = first + f.read(n - 1)
    if len(raw) != n:
        raise ModelFileError(f"{path!r} is truncated (it shrank while being read).")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(
            f"{path!r} is not an sklenet model file: its safetensors header is not valid "
            f"JSON (not UTF-8: {exc.reason} at byte {exc.start})."
        ) from None
    header = _parse_json(path, text, "its safetensors header")
    if not isinstance(header, dict):
        raise ModelFileError(f"{path!r} is not an sklenet model file: bad header.")
    return header, size - 8 - n


def _check_metadata(path, header):
    """The ``__metadata__`` of ``header`` and its parsed ``config``, checked."""
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ModelFileError(
            f"{path!r} is a safetensors file but not an sklenet model file (its metadata "
            f"has no format={FORMAT_NAME!r}); write model files with "
            f"sklenet.save(estimator, path)."
        )
    if not all(isinstance(v, str) for v in metadata.values()):
        raise ModelFileError(f"{path!r}: metadata values must be strings.")
    version = metadata.get("format_version")
    if not (isinstance(version, str) and re.fullmatch(r"[0-9]{1,9}", version)):
        raise ModelFileError(f"{path!r}: invalid format_version {_short(version)}.")
    if int(version) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path!r} was written by sklenet {metadata.get('sklenet_version', '?')[:40]} "
            f"in model file format version {version}; this sklenet reads versions up to "
            f"{FORMAT_VERSION}. Upgrade sklenet to load it."
        )
    if "sha256" not in metadata:
        raise ModelFileError(f"{path!r}: the metadata has no 'sha256' digest.")
    config = _parse_json(path, metadata.get("config", ""), "its 'config' metadata")
    if not isinstance(config, dict):
        raise ModelFileError(f"{path!r}: the 'config' metadata must be a JSON object.")
    return metadata, config


def _is_natural_list(value):
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def _tensor_table(path, header, data_size):
    """``{name: (dtype, shape, start, end)}`` of the header's tensors, all checked
    against each other and against the ``data_size`` bytes after the header."""
    table = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise ModelFileError(f"{path!r}: bad header entry for tensor {_short(name)}.")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise ModelFileError(
                f"{path!r}: unsupported dtype {_short(dtype)} of tensor {_short(name)}."
            )
        if not (_is_natural_list(shape) and len(shape) <= _MAX_RANK
                and _is_natural_list(offsets) and len(offsets) == 2):
            raise ModelFileError(
                f"{path!r}: bad shape or offsets for tensor {_short(name)}."
            )
        dtype = np.dtype(_DTYPES[dtype]).newbyteorder("<")
        start, end = offsets
        nbytes = math.prod(shape) * dtype.itemsize
        if end - start != nbytes:
            raise ModelFileError(
                f"{path!r}: tensor {_short(name)} of shape {_short(shape)} needs {nbytes} "
                f"bytes but its offsets span {end - start}."
            )
        if end > data_size:
            raise ModelFileError(
                f"{path!r} is truncated: tensor {_short(name)} ends at byte {end} of the "
                f"data section, which holds only {data_size} bytes."
            )
        table[name] = (dtype, tuple(shape), start, end)
    position = 0
    for _, _, start, end in sorted(table.values(), key=lambda entry: entry[2:]):
        if start != position:
            raise ModelFileError(f"{path!r}: tensor data overlaps or has gaps.")
        position = end
    if position != data_size:
        raise ModelFileError(
            f"{path!r}: {data_size - position} unexpected bytes after the tensor data."
        )
    return table


def _tensors(table, data):
    """The tensors of a checked ``table`` as read-only arrays over ``data``."""
    return {
        name: np.frombuffer(data, dtype, count=math.prod(shape), offset=start).reshape(shape)
        for name, (dtype, shape, start, _) in table.items()
    }


def _field(path, config, name, check, what):
    value = config.get(name)
    if not check(value):
        raise ModelFileError(
            f"{path!r}: invalid model file: field {name!r} must be {what}, got "
            f"{_short(value)}."
        )
    return value


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_network_size(path, table, n_classes, channels):
    """Refuse a file whose tensors are smaller than the network it asks for.

    Run before anything is built. Every layer of LeNet-5 has a fixed size but
    the output layer (a row per class) and the first convolution (a slice per
    input channel), so with these two checked the network built is no larger
    than the weights the file really holds: a forged header declaring millions
    of classes is refused here, without allocating their network.
    """
    for (name, axis), wanted, what in ((_CLASSES_AXIS, n_classes, "classes"),
                                       (_CHANNELS_AXIS, channels, "channels")):
        shape = table[name][1] if name in table else None
        if shape is None or len(shape) <= axis or shape[axis] != wanted:
            raise ModelFileError(
                f"{path!r} declares {wanted} {what}, but its tensor {name!r} has shape "
                f"{shape}: the file is damaged or forged."
            )


def _fitted_from_config(path, config, table):
    """The fitted attributes stored in ``config``, checked against ``table``."""
    values = _field(path, config, "classes", lambda v: isinstance(v, list) and len(v) >= 2,
                    "a list of at least 2 class labels")
    image_shape = tuple(_field(
        path, config, "image_shape",
        lambda v: isinstance(v, list) and len(v) == 3 and all(_is_int(d) and d > 0
                                                             for d in v),
        "a list of 3 positive ints"))
    _check_network_size(path, table, len(values), image_shape[0])
    try:
        classes = label_array(config.get("classes_kind"), values)
    except ValueError as exc:
        raise ModelFileError(f"{path!r}: invalid classes: {exc}") from None
    one_hot = _field(path, config, "one_hot", lambda v: isinstance(v, bool), "true or false")
    n_features = _field(path, config, "n_features_in", _is_int, "an int")
    if n_features != math.prod(image_shape):
        raise ModelFileError(
            f"{path!r}: n_features_in={n_features} does not match "
            f"image_shape={image_shape}."
        )
    feature_names = _field(
        path, config, "feature_names_in",
        lambda v: v is None or (isinstance(v, list) and len(v) == n_features
                                and all(isinstance(f, str) for f in v)),
        f"null or a list of {n_features} strings")
    rows = _field(path, config, "history",
                  lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v),
                  "a list of objects")
    history = [{k: _decode(v) for k, v in row.items()} for row in rows]
    for row in history:
        for value in row.values():
            if not (value is None or isinstance(value, (int, float))):
                raise ModelFileError(f"{path!r}: bad value {_short(value)} in the history.")
    n_iter = _field(path, config, "n_iter", lambda v: _is_int(v) and v >= 0,
                    "an int >= 0")
    fitted = {
        "classes_": classes,
        "one_hot": one_hot,
        "image_shape_": image_shape,
        "n_features_in_": n_features,
        "history_": history,
        "n_iter_": n_iter,
    }
    if feature_names is not None:
        fitted["feature_names_in_"] = np.array(feature_names, dtype=object)
    return fitted


def _saved_device(path, config):
    """The device the model ran on when saved, or the CPU where CUDA is missing."""
    import torch

    device = config.get("device", "cpu")
    if not isinstance(device, str):
        raise ModelFileError(f"{path!r}: bad device {_short(device)}.")
    if not device.startswith("cuda"):
        return "cpu"
    if not torch.cuda.is_available():
        warnings.warn(
            f"The model was saved on {device[:40]}, but PyTorch sees no CUDA device; "
            f"it is loaded on the CPU.", UserWarning, stacklevel=3,
        )
        return "cpu"
    index = device.partition(":")[2]
    if not (index.isdecimal() and len(index) < 4 and int(index) < torch.cuda.device_count()):
        return "cuda"  # the current CUDA device: that one is not here
    return device


def load(path, *, device=None):
    """Load a model file written by :func:`save` / :meth:`LeNet5Classifier.save`.

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
    _import_safetensors()
    from ._options import resolve_device
    from .classifier import LeNet5Classifier

    if device is not None:
        device = resolve_device(device)
    path = os.fspath(path)
    try:
        with _open_regular_file(path) as f:
            header, data_size = _read_header(path, f)
            metadata, config = _check_metadata(path, header)
            table = _tensor_table(path, header, data_size)
            data = f.read(data_size)
    except OSError as exc:
        raise ModelFileError(f"Cannot read model file {path!r}: {exc.strerror or exc}.") from None
    if len(data) != data_size:
        raise ModelFileError(f"{path!r} is truncated (it shrank while being read).")
    arrays = _tensors(table, data)
    if metadata["sha256"] != _digest(arrays, metadata):
        raise ModelFileError(
            f"{path!r} is damaged or was modified: the SHA-256 digest of its tensors and "
            f"metadata does not match the one recorded when it was saved."
        )
    fitted = _fitted_from_config(path, config, table)
    params = _params_from_json(path, config.get("params"),
                               LeNet5Classifier().get_params(deep=False))
    if device is None:
        device = _saved_device(path, config)
    return _rebuild_estimator(path, params, fitted, arrays, device)


# -------------------------------------------------- the estimator's internals
# The only two functions here that know the estimator's private state (the
# one-hot flag, and the snapshot its pickling protocol takes); everything else
# uses its public API and fitted attributes.


def _one_hot(estimator):
    """Whether ``estimator`` was fitted on one-hot rows."""
    return bool(estimator._one_hot)


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

    est = LeNet5Classifier(**params)
    try:
        est._validate_params()
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{path!r}: invalid parameters: {exc}") from None
    architecture = {
        "in_channels": fitted["image_shape_"][0],
        "n_classes": len(fitted["classes_"]),
        "activation": est.activation,
        "pooling": est.pooling,
        "dropout": float(est.dropout),
    }
    expected = _training.build_module(architecture).state_dict()
    _check_tensors(path, expected, arrays, architecture)
    amp_dtype = resolve_precision(est.precision, device)
    snapshot = {
        "architecture": architecture,
        "module": {name: arrays[name].copy() for name in expected},  # writable copies
        "optimizer": None,
        "history": [],
        "device": device,
        "amp_dtype": None if amp_dtype is None else str(amp_dtype).split(".")[-1],
        "channels_last": bool(est.channels_last),
    }
    state = dict(vars(est), **fitted, net_=snapshot)
    state["_one_hot"] = state.pop("one_hot")
    with torch.no_grad():
        est.__setstate__(state)
    return est


def _check_tensors(path, expected, arrays, architecture):
    """The file's tensors must be exactly those of the ``expected`` state dict."""
    missing = sorted(set(expected) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected))
    if missing or unexpected:
        raise ModelFileError(
            f"{path!r} does not hold the tensors of this network: missing "
            f"{_short(missing, 200)}, unexpected {_short(unexpected, 200)}."
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
