"""Fetchers for Fashion-MNIST and MNIST, in the style of ``sklearn.datasets.fetch_*``.

Both data sets come as four gzip-compressed IDX files (``train-images-idx3-ubyte.gz``,
``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``),
looked for in ``data_home`` (else ``$SKLENET_DATA_HOME``), in its ``fashion-mnist`` or
``mnist`` subdirectory, then in the cache under scikit-learn's data home, and otherwise
downloaded into that cache. Every file is checked against its official size and md5 before
use; the cache only ever receives complete, verified files. This module describes the data
sets and reads their files; ``sklenet._download`` finds and downloads them (with timeouts,
mirror failover and size caps).
"""

import gzip
import math
import os
import struct
import zlib
from dataclasses import dataclass
from importlib import resources
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._download import DATA_HOME_ENV, DatasetNotFoundError, fetch_files
from ._regular_file import open_regular_file

__all__ = ["fetch_fashion_mnist", "fetch_mnist", "read_idx", "DatasetNotFoundError",
           "DATA_HOME_ENV", "FASHION_MNIST_CLASSES", "MNIST_CLASSES"]

#: Largest IDX payload :func:`read_idx` accepts by default (1 GiB).
IDX_MAX_BYTES = 1 << 30

#: Class names of Fashion-MNIST, indexed by label.
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
#: Class names of MNIST, indexed by label.
MNIST_CLASSES = tuple(str(i) for i in range(10))

_SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# IDX element type codes -> numpy dtypes (big-endian, as stored in the file).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class _Spec:
    name: str
    dirname: str  # cache subdirectory, and subdirectory looked for in data_home
    files: dict  # file name -> (md5 of the .gz file, its size in bytes)
    mirrors: tuple
    target_names: tuple
    descr: str  # file in sklenet/descr/


_FASHION_MNIST = _Spec(
    "Fashion-MNIST", "fashion-mnist",
    {
        "train-images-idx3-ubyte.gz": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880),
        "train-labels-idx1-ubyte.gz": ("25c81989df183df01b3e8a0aad5dffbe", 29515),
        "t10k-images-idx3-ubyte.gz": ("bef4ecab320f06d8554ea6380940ec79", 4422102),
        "t10k-labels-idx1-ubyte.gz": ("bb300cfdad3c16e7a12a480ee83cd310", 5148),
    },
    (
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        # The S3 website endpoint serves plain http only; the md5 still holds.
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    FASHION_MNIST_CLASSES, "fashion_mnist.rst",
)
_MNIST = _Spec(
    "MNIST", "mnist",
    {
        "train-images-idx3-ubyte.gz": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422),
        "train-labels-idx1-ubyte.gz": ("d53e105ee54ea40749a09fcbcd1e9432", 28881),
        "t10k-images-idx3-ubyte.gz": ("9fb629c4189551a2d022fa330f9573f3", 1648877),
        "t10k-labels-idx1-ubyte.gz": ("ec29112dd5afa0611ce80d1b7f02629c", 4542),
    },
    (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    MNIST_CLASSES, "mnist.rst",
)


# IDX parsing
def read_idx(path_or_fileobj, *, name=None, max_bytes=IDX_MAX_BYTES):
    """Read an IDX file (gzip-compressed or not) into a numpy array.

    IDX (the format of MNIST and Fashion-MNIST) is a magic number ``0x0000TTNN``
    (``TT`` the element type, ``NN`` the number of dimensions), ``NN``
    big-endian uint32 dimensions, then the elements in row-major order. The
    file is parsed strictly and streamed: no more than one byte past the size
    the header declares is read (or decompressed), and an uncompressed file's
    size is compared with the header's before its payload is read, so neither
    a gzip bomb nor a huge (or sparse) file costs memory. A path must name a
    regular file: a named pipe or a device (``/dev/zero``) is refused unread.

    Parameters
    ----------
    path_or_fileobj : str, os.PathLike or binary file object
        The file to read. Gzip compression is detected from the content
        (the ``1f 8b`` magic bytes), not from the file name.
    name : str, default=None
        Name used for the file in error messages. Defaults to the path (or
        the ``name`` attribute of the file object).
    max_bytes : int, default=IDX_MAX_BYTES
        Largest payload accepted, in bytes (default 1 GiB; the largest
        Fashion-MNIST file holds 47 MB). A header declaring more is refused
        before anything is decompressed.

    Returns
    -------
    array : ndarray
        The array stored in the file, in native byte order, writeable and
        owning its memory: 1-D ``uint8`` for labels (magic 2049), 3-D
        ``uint8`` for images (magic 2051).

    Raises
    ------
    ValueError
        When the file is not a regular file, not a valid IDX file, not valid
        gzip, or declares more than ``max_bytes``. The message names the file.

    Examples
    --------
    >>> import gzip, io, struct
    >>> raw = struct.pack(">IIII", 2051, 2, 2, 3) + bytes(range(12))
    >>> read_idx(io.BytesIO(gzip.compress(raw)))
    array([[[ 0,  1,  2],
            [ 3,  4,  5]],
    <BLANKLINE>
           [[ 6,  7,  8],
            [ 9, 10, 11]]], dtype=uint8)
    >>> read_idx(io.BytesIO(raw[:-1]), name="broken.idx")
    Traceback (most recent call last):
    ...
    ValueError: broken.idx: truncated IDX payload: ...
    """
    if isinstance(path_or_fileobj, (str, os.PathLike)):
        label = name or os.fspath(path_or_fileobj)
        with open_regular_file(path_or_fileobj, lambda kind: ValueError(
                f"{label} is {kind}, not an IDX file; read_idx reads regular files only")) as f:
            return _read_idx(f, label, max_bytes, os.fstat(f.fileno()).st_size)
    label = name or str(getattr(path_or_fileobj, "name", None) or "<file object>")
    return _read_idx(path_or_fileobj, label, max_bytes, None)


class _Rewound:
    """A binary stream whose first bytes, already read from it, are read again."""

    def __init__(self, head, stream):
        self._head, self._stream = head, stream

    def read(self, size=-1):
        if not self._head:
            return self._stream.read(size)
        if size is None or size < 0:
            data, self._head = self._head + self._stream.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        return data + self._stream.read(size - len(data)) if size > len(data) else data


def _read_idx(f, label, max_bytes, file_size):
    """Parse the IDX file being read from ``f``, reading no more than its header declares.

    ``file_size`` (None: unknown) is the size of an uncompressed file on disk,
    checked against the header before the payload is read.
    """
    head = f.read(2)
    if not isinstance(head, (bytes, bytearray)):
        raise TypeError(f"{label}: the file object must be opened in binary mode "
                        f"(read() returned {type(head).__name__}).")
    stream = _Rewound(bytes(head), f)
    if head == b"\x1f\x8b":
        stream, file_size = gzip.GzipFile(fileobj=stream, mode="rb"), None
    try:
        return _parse_idx(stream, max_bytes, file_size)
    except EOFError as exc:
        raise ValueError(f"{label}: truncated gzip stream ({exc}); the file is "
                         "incomplete") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"{label}: corrupted gzip stream ({exc})") from exc
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None


def _parse_idx(stream, max_bytes, file_size=None):
    magic_bytes = stream.read(4)
    if len(magic_bytes) < 4:
        raise ValueError(f"too short to be an IDX file ({len(magic_bytes)} bytes, the "
                         "magic number alone takes 4)")
    zero, type_code, ndim = struct.unpack(">HBB", magic_bytes)
    magic = int.from_bytes(magic_bytes, "big")
    if zero != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        codes = ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
        raise ValueError(
            f"bad magic number {magic} (0x{magic:08x}); an IDX file starts with two zero "
            f"bytes, an element type code in {{{codes}}} and a number of dimensions > 0 "
            "(e.g. 2049 = 0x00000801 for labels, 2051 = 0x00000803 for images)")
    dims_bytes = stream.read(4 * ndim)
    if len(dims_bytes) < 4 * ndim:
        raise ValueError(f"truncated IDX header: {ndim} dimension(s) need {4 + 4 * ndim} "
                         f"header bytes, the file has {4 + len(dims_bytes)}")
    dims = struct.unpack(f">{ndim}I", dims_bytes)
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = math.prod(dims) * dtype.itemsize  # exact: numpy's product could overflow
    shape = "x".join(map(str, dims))
    if expected > max_bytes:
        raise ValueError(f"the header declares {shape} elements, {expected} bytes, more "
                         f"than max_bytes={max_bytes}; pass a larger max_bytes to "
                         "read_idx if you trust this file")
    if file_size is not None and file_size != 4 + 4 * ndim + expected:
        raise ValueError(f"the header declares {shape} elements, a file of "
                         f"{4 + 4 * ndim + expected} bytes, but the file has {file_size}")
    payload = stream.read(expected)
    if len(payload) < expected:
        raise ValueError(f"truncated IDX payload: dimensions {shape} need {expected} bytes "
                         f"of data, the file has {len(payload)}")
    if stream.read(1):
        raise ValueError(f"unexpected extra bytes after the IDX payload (dimensions {shape} "
                         f"need {expected} bytes of data)")
    array = np.frombuffer(payload, dtype=dtype).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)


def _read_images_labels(images_path, labels_path):
    """Read one images file and its labels file (both already md5-verified)."""
    images = read_idx(images_path, name=Path(images_path).name)
    return images, read_idx(labels_path, name=Path(labels_path).name).astype(np.int64)


# Public fetchers
def _fetch(spec, subset, data_home, download_if_missing, return_X_y, **download_args):
    splits = ["train", "test"] if subset == "all" else [subset]
    filenames = [f for s in splits for f in _SPLITS[s]]
    paths = fetch_files(spec, filenames, data_home, download_if_missing, download_args)
    pairs = [_read_images_labels(*(paths[f] for f in _SPLITS[s])) for s in splits]
    images = np.concatenate([p[0] for p in pairs]) if len(pairs) > 1 else pairs[0][0]
    target = np.concatenate([p[1] for p in pairs]) if len(pairs) > 1 else pairs[0][1]
    data = images.reshape(len(images), 28 * 28)  # a view
    if return_X_y:
        return data, target
    return Bunch(
        data=data, images=images, target=target, target_names=list(spec.target_names),
        feature_names=[f"pixel{i}" for i in range(1, 28 * 28 + 1)],
        DESCR=(resources.files(__package__) / "descr" / spec.descr).read_text("utf-8"),
        subset=subset, filenames=[str(paths[f]) for f in filenames],
    )


_FETCH_CONSTRAINTS = {
    "subset": [StrOptions({"train", "test", "all"})],
    "data_home": [str, os.PathLike, None],
    "download_if_missing": ["boolean"],
    "return_X_y": ["boolean"],
    "mirrors": [list, tuple, None],
    "n_retries": [Interval(Integral, 0, None, closed="left")],
    "delay": [Interval(Real, 0, None, closed="left")],
    "timeout": [Interval(Real, 0, None, closed="neither"), None],
    "verbose": ["boolean"],
}


@validate_params(_FETCH_CONSTRAINTS, prefer_skip_nested_validation=True)
def fetch_fashion_mnist(*, subset="train", data_home=None, download_if_missing=True,
                        return_X_y=False, mirrors=None, n_retries=3, delay=1.0,
                        timeout=None, verbose=True):
    """Load the Fashion-MNIST data set (original IDX files), downloading it if needed.

    The files are looked for in ``data_home`` (directly or in its
    ``fashion-mnist`` subdirectory), then in the cache
    ``~/scikit_learn_data/fashion-mnist`` (the folder of
    ``sklearn.datasets.get_data_home()``), and are otherwise downloaded into
    that cache. Every file is checked against its official size and md5
    checksum before it is used.

    Parameters
    ----------
    subset : {"train", "test", "all"}, default="train"
        Which split to load: the 60,000 training images, the 10,000 test
        images, or all 70,000 (training images first).
    data_home : str or os.PathLike, default=None
        A directory holding the original gzip files
        (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
        ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``); None
        uses the ``SKLENET_DATA_HOME`` environment variable, if set. Files
        there are never modified: one with the wrong checksum is an error.
    download_if_missing : bool, default=True
        Whether to download the files found nowhere (and replace corrupted
        cached ones). With False the network is never used.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    mirrors : list of str, default=None
        Base URLs to download from, tried in turn (the file name is
        appended). None uses the official mirrors, https first.
    n_retries : int, default=3
        How many more times to try a mirror after a network error (a refused
        connection, a reset, an HTTP 5xx). A mirror that answers wrongly (a
        404, a wrong size or checksum, too slow) is not tried again, nor is
        one that cannot be reached at all (its host name does not resolve,
        or there is no route to it, as on a machine without a network).
    delay : float, default=1.0
        Seconds to wait before each retry.
    timeout : float, default=None
        Seconds allowed to download one file from one mirror, start to
        finish; a mirror still sending after that is given up. None uses the
        ``SKLENET_DOWNLOAD_TIMEOUT`` environment variable, else 600 s. Each
        read also times out after 30 s without data.
    verbose : bool, default=True
        Whether to report downloads and show a progress bar: each mirror
        that answers, and each failure of a mirror that was reached. A
        mirror that cannot be reached is not reported (offline, nothing is
        printed); the error raised in the end says why each mirror failed.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples, 784), dtype uint8
            The flattened images, one row per image (row-major pixels, 0-255).
        images : ndarray of shape (n_samples, 28, 28), dtype uint8
            The same images as 2-D arrays; a view of the memory of ``data``.
        target : ndarray of shape (n_samples,), dtype int64
            The labels, 0 to 9.
        target_names : list of str
            The class names: 'T-shirt/top', 'Trouser', 'Pullover', 'Dress',
            'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'.
        feature_names : list of str
            ``"pixel1"`` to ``"pixel784"`` (row-major, as in OpenML).
        DESCR : str
            Description of the data set, with its citation and license.
        subset : str
            The ``subset`` that was loaded.
        filenames : list of str
            The local files the data was read from.

    (data, target) : tuple if ``return_X_y`` is True
        ``data`` of shape (n_samples, 784) and ``target`` of shape (n_samples,).

    Raises
    ------
    DatasetNotFoundError
        If a file is found nowhere and ``download_if_missing=False``, or if
        every mirror failed to deliver it. A subclass of
        ``FileNotFoundError``; the message says why and how to supply the
        files.
    OSError
        If a file in ``data_home`` (or, with ``download_if_missing=False``,
        in the cache) is not the official one. The message names the file.

    See Also
    --------
    fetch_mnist : The same fetcher for MNIST.
    read_idx : Parse one IDX file.

    Examples
    --------
    >>> from sklenet.datasets import fetch_fashion_mnist
    >>> bunch = fetch_fashion_mnist(subset="train")  # doctest: +SKIP
    >>> bunch.data.shape, bunch.images.shape  # doctest: +SKIP
    ((60000, 784), (60000, 28, 28))
    >>> X, y = fetch_fashion_mnist(subset="test", data_home="/path/to/idx/files",
    ...                            download_if_missing=False,
    ...                            return_X_y=True)  # doctest: +SKIP
    >>> X.shape, y.dtype  # doctest: +SKIP
    ((10000, 784), dtype('int64'))
    """
    return _fetch(_FASHION_MNIST, subset, data_home, download_if_missing, return_X_y,
                  mirrors=mirrors, n_retries=n_retries, delay=delay, timeout=timeout,
                  verbose=verbose)


@validate_params(_FETCH_CONSTRAINTS, prefer_skip_nested_validation=True)
def fetch_mnist(*, subset="train", data_home=None, download_if_missing=True,
                return_X_y=False, mirrors=None, n_retries=3, delay=1.0, timeout=None,
                verbose=True):
    """Load the MNIST data set (original IDX files), downloading it if needed.

    Works as :func:`fetch_fashion_mnist`, with the subdirectory and cache
    folder ``mnist``, the MNIST checksums and mirrors, and the class names
    ``'0'`` to ``'9'``.

    Parameters
    ----------
    subset : {"train", "test", "all"}, default="train"
        The 60,000 training images, the 10,000 test images, or all 70,000.
    data_home : str or os.PathLike, default=None
        A directory holding the original gzip files (directly or in its
        ``mnist`` subdirectory); None uses ``SKLENET_DATA_HOME``, if set.
    download_if_missing : bool, default=True
        Whether to download the files found nowhere.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    mirrors : list of str, default=None
        Base URLs to download from, tried in turn; None uses the official
        mirrors.
    n_retries : int, default=3
        How many more times to try a mirror after a network error; never
        one that cannot be reached at all.
    delay : float, default=1.0
        Seconds to wait before each retry.
    timeout : float, default=None
        Seconds allowed to download one file from one mirror; None uses
        ``SKLENET_DOWNLOAD_TIMEOUT``, else 600 s.
    verbose : bool, default=True
        Whether to report downloads and show a progress bar.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch` or tuple
        As returned by :func:`fetch_fashion_mnist`; ``target_names`` are
        ``'0'`` to ``'9'``.

    Raises
    ------
    DatasetNotFoundError
        If a file is not available (see :func:`fetch_fashion_mnist`).
    OSError
        If a local file is not the official one. The message names it.

    See Also
    --------
    fetch_fashion_mnist : The same fetcher for Fashion-MNIST.

    Examples
    --------
    >>> from sklenet.datasets import fetch_mnist
    >>> X, y = fetch_mnist(subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, y[:5]  # doctest: +SKIP
    ((10000, 784), array([7, 2, 1, 0, 4]))
    """
    return _fetch(_MNIST, subset, data_home, download_if_missing, return_X_y,
                  mirrors=mirrors, n_retries=n_retries, delay=delay, timeout=timeout,
                  verbose=verbose)

