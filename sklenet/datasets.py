"""Loaders for Fashion-MNIST and MNIST, in the style of ``sklearn.datasets.fetch_*``.

Both data sets are read from their four original IDX files (gzip-compressed)::

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz

The loaders look for each file, in order:

1. in a directory you name (``data_home=``, else the ``SKLENET_DATA_HOME``
   environment variable), either directly in it or in its ``fashion-mnist`` /
   ``mnist`` subdirectory;
2. in the cache under scikit-learn's data home
   (``sklearn.datasets.get_data_home() / "fashion-mnist"`` or ``/ "mnist"``,
   i.e. ``~/scikit_learn_data`` unless ``SCIKIT_LEARN_DATA`` says otherwise);
3. otherwise (``download=True``) they are downloaded from the official mirrors
   into that cache.

Every file is checked against the official md5 checksum before it is parsed,
and the IDX content is parsed strictly by :func:`read_idx`.
"""

import gzip
import hashlib
import os
import struct
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = [
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
    "DatasetNotFoundError",
    "DownloadError",
    "ChecksumError",
    "IDXFormatError",
    "FASHION_MNIST_CLASSES",
    "MNIST_CLASSES",
]

#: Environment variable naming a directory that holds the original IDX files.
DATA_HOME_ENV = "SKLENET_DATA_HOME"

#: Seconds to wait for a mirror to answer (connect or read) before giving up on it.
DOWNLOAD_TIMEOUT = 30

_CHUNK = 1 << 20
_SUBSETS = ("train", "test", "all")
_FILE_KEYS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IMAGE_SIZE = 28
_N_CLASSES = 10

#: Class names of Fashion-MNIST, indexed by label.
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
#: Class names of MNIST, indexed by label.
MNIST_CLASSES = tuple(str(i) for i in range(10))

# IDX element type codes -> numpy dtypes (big-endian, as stored in the file).
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_LABELS_MAGIC = 0x00000801  # 2049: unsigned bytes, 1 dimension
_IMAGES_MAGIC = 0x00000803  # 2051: unsigned bytes, 3 dimensions


_FASHION_DESCR = """\
.. _fashion_mnist_dataset:

Fashion-MNIST
-------------

Fashion-MNIST is a data set of Zalando's article images: 70,000 grayscale
images of 28x28 pixels (60,000 for training, 10,000 for testing) in 10
classes, 7,000 per class. It was designed as a drop-in replacement for MNIST
(same image size, same split sizes, same file format).

**Data Set Characteristics:**

=================   ==============================================
Classes             10 (T-shirt/top, Trouser, Pullover, Dress, Coat,
                    Sandal, Shirt, Sneaker, Bag, Ankle boot)
Samples total       70,000 (train 60,000 / test 10,000)
Samples per class   6,000 train / 1,000 test
Dimensionality      784 (28x28)
Features            integers 0-255 (0 = background)
=================   ==============================================

The images are stored as unsigned bytes; scale them (e.g. divide by 255)
before training a network.

Source: https://github.com/zalandoresearch/fashion-mnist

License: MIT License, Copyright (c) 2017 Zalando SE.

.. rubric:: References

* Han Xiao, Kashif Rasul, Roland Vollgraf. "Fashion-MNIST: a Novel Image
  Dataset for Benchmarking Machine Learning Algorithms". arXiv:1708.07747,
  2017.
"""

_MNIST_DESCR = """\
.. _mnist_dataset:

MNIST
-----

The MNIST database of handwritten digits: 70,000 grayscale images of 28x28
pixels (60,000 for training, 10,000 for testing) of the digits 0 to 9,
size-normalized and centered.

**Data Set Characteristics:**

=================   ==============================================
Classes             10 (digits "0" to "9")
Samples total       70,000 (train 60,000 / test 10,000)
Dimensionality      784 (28x28)
Features            integers 0-255 (0 = background)
=================   ==============================================

Source: http://yann.lecun.com/exdb/mnist/ (official mirrors are used for
downloading).

License: the original page states no license; MNIST is commonly distributed
under the Creative Commons Attribution-Share Alike 3.0 license. Check the
terms before you redistribute the files.

.. rubric:: References

* Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. "Gradient-based learning
  applied to document recognition". Proceedings of the IEEE, 86(11):
  2278-2324, 1998.
* Y. LeCun, C. Cortes, C. J. C. Burges. "The MNIST database of handwritten
  digits". http://yann.lecun.com/exdb/mnist/
"""


@dataclass(frozen=True)
class _DatasetSpec:
    name: str  # human readable
    dirname: str  # cache subdirectory and subdirectory looked for in data_home
    md5: dict  # file name -> md5 of the .gz file
    mirrors: tuple
    target_names: tuple
    descr: str


_FASHION_MNIST = _DatasetSpec(
    name="Fashion-MNIST",
    dirname="fashion-mnist",
    md5={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
    target_names=FASHION_MNIST_CLASSES,
    descr=_FASHION_DESCR,
)

_MNIST = _DatasetSpec(
    name="MNIST",
    dirname="mnist",
    md5={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    target_names=MNIST_CLASSES,
    descr=_MNIST_DESCR,
)


# --------------------------------------------------------------------------- #
# Exceptions
# --------------------------------------------------------------------------- #
class DatasetNotFoundError(FileNotFoundError):
    """The data set files were found neither locally nor (if allowed) online.

    Attributes
    ----------
    missing : list of str
        Names of the files that could not be found.
    searched : list of str
        Directories that were searched.
    """

    def __init__(self, message, *, missing=(), searched=()):
        super().__init__(message)
        self.missing = list(missing)
        self.searched = list(searched)


class DownloadError(DatasetNotFoundError):
    """Every mirror failed to deliver a file with the official checksum.

    Attributes
    ----------
    failures : list of (str, str)
        ``(url, reason)`` for each download attempt.
    """

    def __init__(self, message, *, missing=(), searched=(), failures=()):
        super().__init__(message, missing=missing, searched=searched)
        self.failures = list(failures)


class ChecksumError(OSError):
    """A local data file does not have the official md5 checksum.

    Attributes
    ----------
    path : str
        The offending file.
    expected, actual : str
        The official md5 and the md5 of the file.
    """

    def __init__(self, message, *, path=None, expected=None, actual=None):
        super().__init__(message)
        self.path = None if path is None else str(path)
        self.expected = expected
        self.actual = actual


class IDXFormatError(ValueError):
    """A file is not a well-formed IDX file (or not the IDX file expected).

    Attributes
    ----------
    filename : str
        Name of the malformed file.
    """

    def __init__(self, message, *, filename=None):
        super().__init__(message)
        self.filename = filename


# --------------------------------------------------------------------------- #
# IDX parsing
# --------------------------------------------------------------------------- #
def _describe_source(source, name):
    if name is not None:
        return str(name)
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", None) or "<file object>")


def read_idx(path_or_fileobj, *, name=None):
    """Read an IDX file (gzip-compressed or not) into a numpy array.

    The IDX format (used by MNIST and Fashion-MNIST) is a 4-byte magic number
    ``0x0000TTNN`` (``TT`` the element type, ``NN`` the number of dimensions),
    ``NN`` big-endian 32-bit dimension sizes, then the elements in row-major
    order. The file is parsed strictly: an unknown element type, a header
    that is cut short, or a payload that is shorter or longer than the
    dimensions announce are all errors.

    Parameters
    ----------
    path_or_fileobj : str, os.PathLike or binary file object
        The file to read. Gzip compression is detected from the content
        (the ``1f 8b`` magic bytes), not from the file name.
    name : str, default=None
        Name used for the file in error messages. Defaults to the path (or
        the ``name`` attribute of the file object).

    Returns
    -------
    array : ndarray
        Array of the dimensions stored in the file, in native byte order.
        ``magic`` 2049 (labels) gives a 1-D ``uint8`` array, ``magic`` 2051
        (images) a 3-D ``uint8`` array. The array is writeable and owns its
        memory.

    Raises
    ------
    IDXFormatError
        A subclass of ``ValueError``, when the file is not a valid IDX file
        (or not valid gzip). The message names the file.

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
    sklenet.datasets.IDXFormatError: broken.idx: truncated IDX payload: ...
    """
    label = _describe_source(path_or_fileobj, name)

    def fail(msg):
        return IDXFormatError(f"{label}: {msg}", filename=label)

    if isinstance(path_or_fileobj, (str, os.PathLike)):
        with open(path_or_fileobj, "rb") as f:
            content = f.read()
    else:
        content = path_or_fileobj.read()
    if not isinstance(content, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"{label}: the file object must be opened in binary mode "
            f"(read() returned {type(content).__name__})."
        )
    content = bytes(content)

    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except EOFError as exc:
            raise fail(f"truncated gzip stream ({exc}); the file is incomplete") from exc
        except (gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise fail(f"corrupted gzip stream ({exc})") from exc

    if len(content) < 4:
        raise fail(
            f"too short to be an IDX file ({len(content)} bytes, the magic number "
            "alone takes 4)"
        )
    zero, type_code, ndim = struct.unpack(">HBB", content[:4])
    magic = struct.unpack(">I", content[:4])[0]
    if zero != 0 or type_code not in _IDX_DTYPES:
        raise fail(
            f"bad magic number {magic} (0x{magic:08x}); an IDX file starts with two zero "
            "bytes and an element type code in "
            f"{{{', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)}}} "
            "(e.g. 2049 = 0x00000801 for labels, 2051 = 0x00000803 for images)"
        )
    if ndim == 0:
        raise fail(f"bad magic number {magic} (0x{magic:08x}): zero dimensions")
    header_len = 4 + 4 * ndim
    if len(content) < header_len:
        raise fail(
            f"truncated IDX header: {ndim} dimension(s) need {header_len} header bytes, "
            f"the file has {len(content)}"
        )
    dims = struct.unpack(f">{ndim}I", content[4:header_len])
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(content) - header_len
    shape = "x".join(map(str, dims))
    if actual < expected:
        raise fail(
            f"truncated IDX payload: dimensions {shape} need {expected} bytes of data, "
            f"the file has {actual}"
        )
    if actual > expected:
        raise fail(
            f"{actual - expected} unexpected extra bytes after the IDX payload "
            f"(dimensions {shape} need {expected} bytes of data, the file has {actual})"
        )
    array = np.frombuffer(content, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)


def _read_images_labels(images_path, labels_path):
    """Read and cross-check one images file and its labels file."""
    images_name = Path(images_path).name
    labels_name = Path(labels_path).name

    images = read_idx(images_path, name=images_name)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise IDXFormatError(
            f"{images_name}: not an IDX images file: expected magic {_IMAGES_MAGIC} "
            f"(0x{_IMAGES_MAGIC:08x}, 3-D unsigned bytes), got {images.ndim}-D {images.dtype} "
            f"data of shape {images.shape}",
            filename=images_name,
        )
    if images.shape[1:] != (_IMAGE_SIZE, _IMAGE_SIZE):
        raise IDXFormatError(
            f"{images_name}: expected {_IMAGE_SIZE}x{_IMAGE_SIZE} images, got "
            f"{images.shape[1]}x{images.shape[2]}",
            filename=images_name,
        )

    labels = read_idx(labels_path, name=labels_name)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IDXFormatError(
            f"{labels_name}: not an IDX labels file: expected magic {_LABELS_MAGIC} "
            f"(0x{_LABELS_MAGIC:08x}, 1-D unsigned bytes), got {labels.ndim}-D {labels.dtype} "
            f"data of shape {labels.shape}",
            filename=labels_name,
        )
    if labels.size and labels.max() >= _N_CLASSES:
        bad = np.flatnonzero(labels >= _N_CLASSES)
        raise IDXFormatError(
            f"{labels_name}: labels must be in 0..{_N_CLASSES - 1}; found "
            f"{len(bad)} out of range, the first is {int(labels[bad[0]])} at index "
            f"{int(bad[0])}",
            filename=labels_name,
        )
    if len(images) != len(labels):
        raise IDXFormatError(
            f"{images_name} holds {len(images)} images but {labels_name} holds "
            f"{len(labels)} labels",
            filename=images_name,
        )
    return images, labels.astype(np.int64)


# --------------------------------------------------------------------------- #
# Locating, verifying and downloading files
# --------------------------------------------------------------------------- #
def _md5(path):
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _user_dirs(data_home, dirname):
    """Directories named by the caller, in search order, and where they came from."""
    if data_home is not None:
        root, origin = Path(os.fspath(data_home)).expanduser(), "data_home"
    else:
        env = os.environ.get(DATA_HOME_ENV, "").strip()
        if not env:
            return None, []
        root, origin = Path(env).expanduser(), f"${DATA_HOME_ENV}"
    if not root.is_dir():
        warnings.warn(
            f"{origin} directory {str(root)!r} does not exist; looking in the "
            "scikit-learn data home cache instead.",
            UserWarning,
            stacklevel=5,
        )
    return origin, [root, root / dirname]


def _cache_dir(dirname):
    from sklearn.datasets import get_data_home

    return Path(get_data_home()) / dirname


def _log(verbose, msg):
    if verbose:
        print(msg, file=sys.stderr, flush=True)


def _download(url, target, expected_md5, verbose):
    """Download ``url`` to ``target`` atomically; return None or the failure reason."""
    from tqdm import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".part", dir=target.parent
    )
    tmp = Path(tmp_name)
    try:
        h = hashlib.md5(usedforsecurity=False)
        n_read = 0
        request = urllib.request.Request(
            url, headers={"User-Agent": "sklenet (python urllib)"}
        )
        out = os.fdopen(fd, "wb")
        fd = None  # now owned (and closed) by ``out``
        with out:
            with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                with tqdm(
                    total=total, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=target.name, disable=not verbose, leave=False,
                    file=sys.stderr,
                ) as bar:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        out.write(chunk)
                        h.update(chunk)
                        n_read += len(chunk)
                        bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if total is not None and n_read != total:
            return f"incomplete download ({n_read} of {total} bytes)"
        actual = h.hexdigest()
        if actual != expected_md5:
            return (
                f"md5 mismatch: got {actual}, expected {expected_md5} "
                f"({n_read} bytes received)"
            )
        os.replace(tmp, target)
        return None
    except urllib.error.HTTPError as exc:
        return f"HTTP error {exc.code}: {exc.reason}"
    except urllib.error.URLError as exc:
        return f"cannot connect: {exc.reason}"
    except Exception as exc:  # timeouts, IncompleteRead, resets, ...
        return f"{type(exc).__name__}: {exc}"
    finally:
        if fd is not None:
            os.close(fd)
        if tmp.exists():
            try:
                tmp.unlink()
            except OSError:
                pass


def _how_to_supply(spec, filenames):
    return (
        "To supply the files, put the original gzip files ("
        + ", ".join(filenames)
        + f") in a directory and pass it as data_home=..., or set the {DATA_HOME_ENV} "
        f"environment variable to it; or call with download=True to download "
        f"{spec.name} into the scikit-learn data home cache."
    )


def _fetch_files(spec, filenames, data_home, download, mirrors, verbose):
    """Return a dict file name -> verified local path."""
    origin, user_dirs = _user_dirs(data_home, spec.dirname)
    searched = [str(d) for d in user_dirs]
    found = {}

    # 1. The caller's directory. A bad file there is an error: we never touch it.
    for fname in filenames:
        for d in user_dirs:
            path = d / fname
            if path.is_file():
                actual = _md5(path)
                expected = spec.md5[fname]
                if actual != expected:
                    raise ChecksumError(
                        f"{path} (found via {origin}) is corrupted or not the official "
                        f"{spec.name} file: its md5 is {actual}, expected {expected}. "
                        "Replace it with the original file or remove it.",
                        path=path, expected=expected, actual=actual,
                    )
                found[fname] = path
                break

    missing = [f for f in filenames if f not in found]
    if not missing:
        return found

    # 2. The scikit-learn data home cache.
    cache = _cache_dir(spec.dirname)
    searched.append(str(cache))
    corrupted = {}
    for fname in missing:
        path = cache / fname
        if path.is_file():
            actual = _md5(path)
            if actual == spec.md5[fname]:
                found[fname] = path
            else:
                corrupted[fname] = actual

    missing = [f for f in filenames if f not in found]
    if not missing:
        return found

    if not download:
        if corrupted:
            fname, actual = next(iter(corrupted.items()))
            expected = spec.md5[fname]
            raise ChecksumError(
                f"Cached file {cache / fname} is corrupted or incomplete: its md5 is "
                f"{actual}, expected {expected}. Delete it, or call with download=True "
                "to download it again.",
                path=cache / fname, expected=expected, actual=actual,
            )
        raise DatasetNotFoundError(
            f"{spec.name} file(s) not found: {', '.join(missing)}. Searched: "
            f"{', '.join(searched)}. download=False, so nothing was downloaded. "
            + _how_to_supply(spec, filenames),
            missing=missing, searched=searched,
        )

    # 3. Download into the cache.
    bases = spec.mirrors if mirrors is None else mirrors
    failures = []
    for fname in missing:
        target = cache / fname
        if fname in corrupted:
            _log(verbose, f"Cached {target} is corrupted (md5 {corrupted[fname]}); "
                          "downloading it again.")
        file_failures = []
        for base in bases:
            url = urllib.parse.urljoin(base if base.endswith("/") else base + "/", fname)
            _log(verbose, f"Downloading {url}")
            reason = _download(url, target, spec.md5[fname], verbose)
            if reason is None:
                found[fname] = target
                break
            _log(verbose, f"  failed: {reason}")
            file_failures.append((url, reason))
        else:
            failures.extend(file_failures)
            lines = "\n".join(f"  - {url}: {reason}" for url, reason in file_failures)
            still_missing = [f for f in filenames if f not in found]
            extra = (
                f" The cached copy {target} is corrupted (md5 {corrupted[fname]})."
                if fname in corrupted else ""
            )
            raise DownloadError(
                f"Could not download {fname} of {spec.name} from any mirror:\n{lines}\n"
                f"Searched locally: {', '.join(searched)}.{extra} "
                + _how_to_supply(spec, filenames),
                missing=still_missing, searched=searched, failures=failures,
            )
    return found


# --------------------------------------------------------------------------- #
# Public loaders
# --------------------------------------------------------------------------- #
def _check_mirrors(mirrors):
    if mirrors is None:
        return None
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    try:
        mirrors = list(mirrors)
    except TypeError:
        raise ValueError(
            f"mirrors must be None or a list of base URLs, got {type(mirrors).__name__}."
        ) from None
    if not mirrors:
        raise ValueError("mirrors must hold at least one base URL (or be None).")
    for m in mirrors:
        if not isinstance(m, str):
            raise ValueError(f"mirrors must be base URLs (str), got {m!r}.")
        scheme = urllib.parse.urlsplit(m).scheme
        if scheme not in ("http", "https", "ftp", "file"):
            raise ValueError(
                f"mirror {m!r} is not a http(s)://, ftp:// or file:// URL."
            )
    return mirrors


def _load(spec, *, subset, data_home, download, return_X_y, mirrors, verbose):
    if not isinstance(subset, str) or subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {_SUBSETS}, got {subset!r}.")
    if data_home is not None and not isinstance(data_home, (str, os.PathLike)):
        raise ValueError(
            f"data_home must be None, a str or a path, got {type(data_home).__name__}."
        )
    for pname, value in (("download", download), ("return_X_y", return_X_y),
                         ("verbose", verbose)):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{pname} must be True or False, got {value!r}.")
    mirrors = _check_mirrors(mirrors)

    parts = ["train", "test"] if subset == "all" else [subset]
    filenames = [f for p in parts for f in _FILE_KEYS[p]]
    paths = _fetch_files(spec, filenames, data_home, bool(download), mirrors, bool(verbose))

    images, targets = [], []
    for p in parts:
        img_name, lbl_name = _FILE_KEYS[p]
        imgs, lbls = _read_images_labels(paths[img_name], paths[lbl_name])
        images.append(imgs)
        targets.append(lbls)
    if len(parts) == 1:
        images, target = images[0], targets[0]
    else:
        images, target = np.concatenate(images), np.concatenate(targets)

    data = images.reshape(len(images), _IMAGE_SIZE * _IMAGE_SIZE)  # a view
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        images=images,
        target=target,
        target_names=list(spec.target_names),
        feature_names=[f"pixel{i}" for i in range(1, _IMAGE_SIZE * _IMAGE_SIZE + 1)],
        DESCR=spec.descr,
        subset=subset,
        filenames=[str(paths[f]) for f in filenames],
    )


_LOADER_DOC = """Load the {name} data set (original IDX files).

    The files are looked for in the directory you name (``data_home=``, else
    the ``SKLENET_DATA_HOME`` environment variable; directly or in its
    ``{dirname}`` subdirectory), then in the cache
    ``sklearn.datasets.get_data_home() / "{dirname}"``, and are otherwise
    downloaded into that cache from the official mirrors (tried in turn). Every
    file is checked against its official md5 checksum before it is used.

    Parameters
    ----------
    subset : {{"train", "test", "all"}}, default="train"
        Which split to load: the 60,000 training images, the 10,000 test
        images, or all 70,000 (training images first, then test images).
    data_home : str or os.PathLike, default=None
        A directory holding the four original gzip files
        (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
        ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``). When
        None, the ``SKLENET_DATA_HOME`` environment variable is used, if set.
        Files in this directory are never modified: a file whose checksum is
        wrong raises :class:`ChecksumError`. Files missing from it are taken
        from the cache or downloaded.
    download : bool, default=True
        Whether to download files that are not available locally (and to
        replace corrupted cached files). With False the network is never used.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    mirrors : list of str, default=None
        Base URLs to download from, tried in order (the file name is appended).
        Defaults to the official mirrors:
        {mirrors}
    verbose : bool, default=True
        Whether to report downloads and show a progress bar.

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
            {target_names_doc}
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
    ValueError
        If an argument is invalid.
    DatasetNotFoundError
        If ``download=False`` and a file is neither in ``data_home`` nor in
        the cache. A subclass of ``FileNotFoundError``.
    DownloadError
        If every mirror failed for a file (the message lists each URL and why
        it failed). A subclass of :class:`DatasetNotFoundError`.
    ChecksumError
        If a file in ``data_home`` (or, with ``download=False``, in the cache)
        does not have the official md5. A subclass of ``OSError``.
    IDXFormatError
        If a file is not a valid IDX file. A subclass of ``ValueError``.

    See Also
    --------
    {see_also}
    read_idx : Parse one IDX file.

    Examples
    --------
    >>> from sklenet.datasets import {func}
    >>> bunch = {func}(subset="train")  # doctest: +SKIP
    >>> bunch.data.shape, bunch.images.shape  # doctest: +SKIP
    ((60000, 784), (60000, 28, 28))
    >>> bunch.target_names[:3]  # doctest: +SKIP
    {names3}
    >>> X, y = {func}(subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, y.dtype  # doctest: +SKIP
    ((10000, 784), dtype('int64'))
    >>> X, y = {func}(data_home="/path/to/idx/files",
    ...     download=False, return_X_y=True)  # doctest: +SKIP
    """


def load_fashion_mnist(*, subset="train", data_home=None, download=True,
                       return_X_y=False, mirrors=None, verbose=True):
    return _load(_FASHION_MNIST, subset=subset, data_home=data_home,
                 download=download, return_X_y=return_X_y, mirrors=mirrors,
                 verbose=verbose)


def load_mnist(*, subset="train", data_home=None, download=True,
               return_X_y=False, mirrors=None, verbose=True):
    return _load(_MNIST, subset=subset, data_home=data_home,
                 download=download, return_X_y=return_X_y, mirrors=mirrors,
                 verbose=verbose)


def _fill_doc(func, spec, see_also, target_names_doc):
    func.__doc__ = _LOADER_DOC.format(
        name=spec.name,
        dirname=spec.dirname,
        mirrors=", ".join(f"``{m}``" for m in spec.mirrors) + ".",
        func=func.__name__,
        see_also=see_also,
        target_names_doc=target_names_doc,
        names3=repr(list(spec.target_names[:3])),
    )


_fill_doc(
    load_fashion_mnist, _FASHION_MNIST,
    "load_mnist : The same loader for MNIST.",
    "The class names: 'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', "
    "'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'.",
)
_fill_doc(
    load_mnist, _MNIST,
    "load_fashion_mnist : The same loader for Fashion-MNIST.",
    "The class names '0' to '9'.",
)
