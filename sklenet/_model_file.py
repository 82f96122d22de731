"""The sklenet model file as bytes: a safetensors container, read as untrusted data.

A model file is a `safetensors <https://huggingface.co/docs/safetensors>`_
file: an 8-byte little-endian header length, a JSON header (the tensor table
and the string-valued ``__metadata__``), then the raw tensor bytes. This module
turns named arrays and a configuration (a JSON-able dict) into such bytes
(:func:`encode`) and back (:func:`read`), and owns what makes reading safe:
regular files only, caps on the header's size and nesting checked before
parsing, every entry of the tensor table checked against the bytes that follow,
and a SHA-256 :func:`digest` of metadata and tensors. What the configuration
means to the estimator is :mod:`sklenet.persistence`'s business.

Every problem with a file raises :class:`ModelFileError`. The caps are
arguments, not constants of this module, so that the public
``sklenet.persistence.MAX_HEADER_BYTES`` and ``MAX_JSON_DEPTH`` stay the ones
in force.

Examples
--------
>>> import numpy as np
>>> from sklenet._model_file import encode, header_size
>>> payload = encode({"w": np.zeros(3, np.float32)}, {"classes": [0, 1]})
>>> payload[8:9], header_size(payload) < 1000
(b'{', True)
"""

import hashlib
import json
import math
import os
import re
import struct

import numpy as np

from ._optional import import_optional
from ._regular_file import open_regular_file

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFileError",
    "digest",
    "encode",
    "header_size",
    "json_depth",
    "read",
    "require_safetensors",
    "short",
]

#: Value of the ``format`` metadata field.
FORMAT_NAME = "sklenet.LeNet5Classifier"
#: Version of the file layout that :func:`encode` writes; :func:`read` reads
#: this version and older ones.
FORMAT_VERSION = 1

#: Highest tensor rank accepted in the tensor table (LeNet-5's is 4).
_MAX_RANK = 8
_PICKLE_PROTO = 0x80  # opcode PROTO, then the protocol: how pickles >= 2 start
_PICKLE_PROTOCOLS = range(2, 6)
_ZIP_MAGIC = b"PK\x03\x04"
#: The safetensors dtypes a model file may hold, and their numpy types.
_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16,
           "I64": np.int64, "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}
_WRITABLE_DTYPES = {np.dtype(t) for t in _DTYPES.values()}
#: The metadata fields covered by the digest (all of them but the digest itself).
_DIGESTED_FIELDS = ("format", "format_version", "sklenet_version", "config")


class ModelFileError(ValueError):
    """A model file is not a valid sklenet model file (or is damaged)."""


def require_safetensors():
    """``safetensors.numpy``, or an ImportError saying how to install it."""
    return import_optional("safetensors.numpy", "sklenet model files")


def short(value, limit=80):
    """``repr(value)``, cut to ``limit`` characters: forged values can be huge.

    >>> short("x" * 100, limit=10)
    "'xxxxxx..."
    """
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ------------------------------------------------------------------ JSON text


def json_depth(value):
    """How deeply lists and dicts nest in ``value`` (0 for a scalar); no recursion.

    >>> json_depth({"a": [1, {"b": "[[["}]})
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


def _parse_json(path, text, what, max_depth):
    """``json.loads(text)``, refusing nesting deeper than ``max_depth``.

    The size of ``text`` is capped before, so parsing costs a bounded amount of
    memory; json's C parser stops deep nesting with a RecursionError at the
    interpreter's recursion limit, and the depth of what it returns is checked
    without recursing, so the checks that follow (some recursive) never see
    more than ``max_depth`` levels.
    """
    too_deep = ModelFileError(
        f"{path!r} is not an sklenet model file: {what} nests arrays and objects deeper "
        f"than sklenet reads (MAX_JSON_DEPTH={max_depth})."
    )
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # JSONDecodeError, NaN, and integers of > 4300 digits
        raise ModelFileError(
            f"{path!r} is not an sklenet model file: {what} is not valid JSON ({exc})."
        ) from None
    if json_depth(value) > max_depth:
        raise too_deep
    return value


# --------------------------------------------------------------------- write


def digest(arrays, metadata):
    """SHA-256 of the metadata fields and of the tensors' names, dtypes, shapes, bytes.

    Parameters
    ----------
    arrays : dict of str to ndarray
        The tensors.
    metadata : dict
        The safetensors metadata; its ``sha256`` field, if any, is not covered.

    Returns
    -------
    sha256 : str
        The hexadecimal digest.
    """
    h = hashlib.sha256()
    h.update(json.dumps([metadata.get(k) for k in _DIGESTED_FIELDS]).encode())
    for name in sorted(arrays):
        array = arrays[name]
        h.update(json.dumps([name, str(array.dtype), list(array.shape)]).encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def encode(arrays, config):
    """The bytes of a model file holding ``arrays`` and ``config``.

    Parameters
    ----------
    arrays : dict of str to ndarray
        The tensors, of the dtypes a model file holds.
    config : dict
        JSON-able data (no NaN or infinity), stored as the ``config`` metadata
        next to the format name and version, the sklenet version and the
        digest.

    Returns
    -------
    payload : bytes
        A safetensors file.

    Raises
    ------
    TypeError
        If a tensor has a dtype a model file does not hold.
    """
    st = require_safetensors()
    from ._version import __version__

    for name, array in arrays.items():
        if array.dtype not in _WRITABLE_DTYPES:
            raise TypeError(f"Cannot save tensor {name!r} of dtype {array.dtype}.")
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "sklenet_version": __version__,
        "config": json.dumps(config, allow_nan=False),
    }
    metadata["sha256"] = digest(arrays, metadata)
    return st.save(arrays, metadata=metadata)


def header_size(payload):
    """The size in bytes of the safetensors header of ``payload``."""
    (size,) = struct.unpack("<Q", payload[:8])
    return size


# ---------------------------------------------------------------------- read


def read(path, *, max_header_bytes, max_json_depth, expected=None):
    """The configuration and tensors of the model file at ``path``, checked.

    Only a regular file is opened; its header must be at most
    ``max_header_bytes`` long and nest JSON at most ``max_json_depth`` deep;
    the metadata must name the sklenet format in a version this sklenet reads;
    the tensor table must describe exactly the bytes that follow it, and be
    what ``expected`` says, before any of those bytes is read; and the digest
    must match. The configuration's own fields are not checked here.

    Parameters
    ----------
    path : str
        The model file.
    max_header_bytes, max_json_depth : int
        The caps.
    expected : callable, default=None
        ``expected(path, config, shapes)`` returns ``{name: (shape, dtype)}``,
        the tensors the network that ``config`` describes holds (``shapes``:
        the shape of each tensor of the table), or raises
        :class:`ModelFileError`. The table must name exactly these tensors,
        with these shapes and dtypes: a file is refused before its tensor
        bytes are read, however large it claims to be. None accepts any table.

    Returns
    -------
    config : dict
        The parsed ``config`` metadata.
    shapes : dict of str to tuple of int
        The shape of each tensor, as the tensor table declares it.
    arrays : dict of str to ndarray
        The tensors, read-only, little-endian.

    Raises
    ------
    ModelFileError
        For any problem with the file, an unreadable one included.
    """
    try:
        with _open_regular_file(path) as f:
            header, data_size = _read_header(path, f, max_header_bytes, max_json_depth)
            metadata, config = _check_metadata(path, header, max_json_depth)
            table = _tensor_table(path, header, data_size)
            shapes = {name: entry[1] for name, entry in table.items()}
            if expected is not None:
                _check_table(path, table, expected(path, config, shapes))
            data = f.read(data_size)
    except OSError as exc:
        raise ModelFileError(f"Cannot read model file {path!r}: {exc.strerror or exc}.") from None
    if len(data) != data_size:
        raise ModelFileError(f"{path!r} is truncated (it shrank while being read).")
    arrays = {
        name: np.frombuffer(data, dtype, count=math.prod(shape), offset=start).reshape(shape)
        for name, (dtype, shape, start, _) in table.items()
    }
    if metadata["sha256"] != digest(arrays, metadata):
        raise ModelFileError(
            f"{path!r} is damaged or was modified: the SHA-256 digest of its tensors and "
            f"metadata does not match the one recorded when it was saved."
        )
    return config, shapes, arrays


def _check_table(path, table, expected):
    """The tensor ``table`` must hold exactly the ``expected`` names, shapes and dtypes."""
    missing = sorted(set(expected) - set(table))
    unexpected = sorted(set(table) - set(expected))
    if missing or unexpected:
        raise ModelFileError(
            f"{path!r} does not hold the tensors of this network: missing "
            f"{short(missing, 200)}, unexpected {short(unexpected, 200)}."
        )
    for name, (shape, dtype) in expected.items():
        found_dtype, found_shape = table[name][:2]
        if found_shape != tuple(shape):
            raise ModelFileError(
                f"{path!r}: tensor {name!r} has shape {found_shape}, but the network the "
                f"file describes needs {tuple(shape)}."
            )
        if found_dtype != np.dtype(dtype).newbyteorder("<"):
            raise ModelFileError(
                f"{path!r}: tensor {name!r} is {found_dtype}, expected {np.dtype(dtype)}."
            )


def _open_regular_file(path):
    """Open ``path`` for reading; refuse anything but a regular file unread."""
    def refuse(kind):
        return ModelFileError(
            f"{path!r} is {kind}, not a model file; sklenet.load reads regular files "
            f"only (written by sklenet.save)."
        )

    return open_regular_file(path, refuse)


def _not_safetensors(path, head, n, size):
    """The error for a file that does not start with a safetensors header,
    naming the common look-alikes (pickles, ``torch.save`` zips)."""
    if head[0] == _PICKLE_PROTO and head[1] in _PICKLE_PROTOCOLS:
        return ModelFileError(
            f"{path!r} is a pickle file (e.g. written by joblib.dump or pickle.dump), "
            f"not an sklenet model file. sklenet.load never unpickles; use "
            f"joblib.load only for files you trust."
        )
    if head[:4] == _ZIP_MAGIC:
        return ModelFileError(
            f"{path!r} is a zip archive (e.g. written by torch.save), not an sklenet "
            f"model file; sklenet.load never unpickles."
        )
    return ModelFileError(
        f"{path!r} is not an sklenet model file, or it is truncated: it does not "
        f"start with a safetensors header (its first 8 bytes announce a {n}-byte "
        f"header; the file holds {size} bytes)."
    )


def _read_header(path, f, max_header_bytes, max_json_depth):
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
        raise _not_safetensors(path, head, n, size)
    if n > max_header_bytes:
        raise ModelFileError(
            f"{path!r} is not an sklenet model file: its safetensors header takes {n} "
            f"bytes, more than an sklenet model file holds (MAX_HEADER_BYTES="
            f"{max_header_bytes}). It is another kind of safetensors file, or forged."
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
    header = _parse_json(path, text, "its safetensors header", max_json_depth)
    if not isinstance(header, dict):
        raise ModelFileError(f"{path!r} is not an sklenet model file: bad header.")
    return header, size - 8 - n


def _check_metadata(path, header, max_json_depth):
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
        raise ModelFileError(f"{path!r}: invalid format_version {short(version)}.")
    if int(version) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path!r} was written by sklenet {metadata.get('sklenet_version', '?')[:40]} "
            f"in model file format version {version}; this sklenet reads versions up to "
            f"{FORMAT_VERSION}. Upgrade sklenet to load it."
        )
    if "sha256" not in metadata:
        raise ModelFileError(f"{path!r}: the metadata has no 'sha256' digest.")
    config = _parse_json(path, metadata.get("config", ""), "its 'config' metadata",
                         max_json_depth)
    if not isinstance(config, dict):
        raise ModelFileError(f"{path!r}: the 'config' metadata must be a JSON object.")
    return metadata, config


def _is_natural_list(value):
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def _table_entry(path, name, info, data_size):
    """``(dtype, shape, start, end)`` of one tensor of the header, checked."""
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise ModelFileError(f"{path!r}: bad header entry for tensor {short(name)}.")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise ModelFileError(
            f"{path!r}: unsupported dtype {short(dtype)} of tensor {short(name)}."
        )
    if not (_is_natural_list(shape) and len(shape) <= _MAX_RANK
            and _is_natural_list(offsets) and len(offsets) == 2):
        raise ModelFileError(f"{path!r}: bad shape or offsets for tensor {short(name)}.")
    dtype = np.dtype(_DTYPES[dtype]).newbyteorder("<")
    start, end = offsets
    nbytes = math.prod(shape) * dtype.itemsize
    if end - start != nbytes:
        raise ModelFileError(
            f"{path!r}: tensor {short(name)} of shape {short(shape)} needs {nbytes} "
            f"bytes but its offsets span {end - start}."
        )
    if end > data_size:
        raise ModelFileError(
            f"{path!r} is truncated: tensor {short(name)} ends at byte {end} of the "
            f"data section, which holds only {data_size} bytes."
        )
    return dtype, tuple(shape), start, end


def _tensor_table(path, header, data_size):
    """``{name: (dtype, shape, start, end)}`` of the header's tensors, all checked
    against each other and against the ``data_size`` bytes after the header."""
    table = {name: _table_entry(path, name, info, data_size)
             for name, info in header.items() if name != "__metadata__"}
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
