"""Finding, verifying and downloading the files of a data set.

:mod:`sklenet.datasets` describes each data set (its files with their md5
and size, its mirrors) and reads the files; this module gets them onto the
disk. It looks in ``data_home`` (else ``$SKLENET_DATA_HOME``), in its
subdirectory named after the data set, then in the cache under
scikit-learn's data home, and downloads what is found nowhere into that
cache. sklearn's own ``fetch_file`` has neither a timeout nor a size cap,
hence this downloader:

- every mirror is given a deadline per file (:data:`DOWNLOAD_TIMEOUT`,
  ``$SKLENET_DOWNLOAD_TIMEOUT``) and every read a timeout
  (:data:`READ_TIMEOUT`), so a trickling mirror cannot hang the caller;
- a mirror that fails is followed by the next one; network errors are
  retried, wrong answers (a 404, a wrong size or md5) are not;
- no more bytes are read than the official file has;
- the cache only ever receives complete, verified files, and a call that
  fails leaves it as it was (all the missing files, or none of them).

A data set is described by a ``spec`` with ``name`` (for messages),
``dirname`` (the subdirectory), ``files`` (file name -> (md5, size)) and
``mirrors`` (base URLs).
"""

import hashlib
import http.client
import math
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

__all__ = ["DATA_HOME_ENV", "DOWNLOAD_TIMEOUT", "DOWNLOAD_TIMEOUT_ENV", "READ_TIMEOUT",
           "DatasetNotFoundError", "fetch_files"]

#: Environment variable naming a directory that holds the original files.
DATA_HOME_ENV = "SKLENET_DATA_HOME"
#: Environment variable overriding :data:`DOWNLOAD_TIMEOUT` (in seconds).
DOWNLOAD_TIMEOUT_ENV = "SKLENET_DOWNLOAD_TIMEOUT"
#: Seconds allowed for downloading one file from one mirror, start to finish.
DOWNLOAD_TIMEOUT = 600.0
#: Seconds a mirror may take to answer, or to send the next bytes.
READ_TIMEOUT = 30.0

_CHUNK = 1 << 20


class DatasetNotFoundError(FileNotFoundError):
    """The files of a data set are neither on disk nor downloadable.

    Raised when a file is missing locally and ``download_if_missing=False``,
    or when every mirror failed to deliver it. The message says which files
    are missing, where they were looked for, why each download failed and how
    to supply them. It means "not available", so a caller may fall back to
    another data set; a corrupted file raises a plain :class:`OSError` that
    names it instead.
    """


# Tracebacks and the documentation name the class where users import it from.
DatasetNotFoundError.__module__ = "sklenet.datasets"


class _MirrorFailed(Exception):
    """A mirror did not deliver a file; ``retry`` says whether trying again may help."""

    def __init__(self, reason, retry=False):
        super().__init__(reason)
        self.retry = retry


def fetch_files(spec, filenames, data_home, download_if_missing, download_args):
    """The verified local copies of ``filenames``, downloaded if need be.

    Parameters
    ----------
    spec : object
        The data set: ``name``, ``dirname``, ``files`` and ``mirrors``.
    filenames : list of str
        Files of ``spec`` to find.
    data_home : str, os.PathLike or None
        Where the user keeps the files; None reads ``$SKLENET_DATA_HOME``.
    download_if_missing : bool
        Whether the network may be used.
    download_args : dict
        ``mirrors`` (None: ``spec.mirrors``), ``n_retries``, ``delay``,
        ``timeout`` (None: ``$SKLENET_DOWNLOAD_TIMEOUT``, else
        :data:`DOWNLOAD_TIMEOUT`) and ``verbose``, as the ``fetch_*``
        functions take them.

    Returns
    -------
    paths : dict
        File name -> path of its verified copy.

    Raises
    ------
    DatasetNotFoundError
        A file is found nowhere and may not be, or could not be, downloaded.
    OSError
        A file found is not the official one (and may not be replaced).
    """
    if download_args["mirrors"] is not None:
        _check_mirrors(download_args["mirrors"])
    places = _places(spec, data_home)
    verbose = download_args["verbose"]
    found = {f: _find(spec, f, places, download_if_missing, verbose) for f in filenames}
    missing = [f for f, path in found.items() if path is None]
    if missing and not download_if_missing:
        raise DatasetNotFoundError(
            f"{', '.join(missing)} of {spec.name} not found in "
            f"{', '.join(str(d) for d, _ in places)}, and download_if_missing=False. "
            + _how_to_supply(filenames))
    if missing:
        found.update(_download_all(spec, missing, places[-1][0], **download_args))
    return found


def _check_mirrors(mirrors):
    for m in mirrors:
        if not isinstance(m, str) or urllib.parse.urlsplit(m).scheme not in (
                "http", "https", "ftp", "file"):
            raise ValueError(f"The 'mirrors' parameter must hold http(s)://, ftp:// or "
                             f"file:// base URLs, got {m!r}.")
    if not mirrors:
        raise ValueError("The 'mirrors' parameter must hold at least one base URL, or be "
                         "None for the official mirrors.")


# Looking on disk
def _md5(path):
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _places(spec, data_home):
    """The directories to search, in order, each with whether it is our cache."""
    origin = "data_home"
    if data_home is None:
        data_home, origin = os.environ.get(DATA_HOME_ENV, "").strip() or None, DATA_HOME_ENV
    places = []
    if data_home is not None:
        root = Path(data_home).expanduser()
        if not root.is_dir():
            warnings.warn(f"{origin} directory {str(root)!r} does not exist; looking in "
                          "the scikit-learn data home cache instead.", UserWarning,
                          stacklevel=6)  # the caller of fetch_*, past validate_params
        places = [(root, False), (root / spec.dirname, False)]
    # sklearn's get_data_home() would create the folder: looking must change nothing.
    sklearn_home = os.environ.get("SCIKIT_LEARN_DATA", os.path.join("~", "scikit_learn_data"))
    return places + [(Path(sklearn_home).expanduser() / spec.dirname, True)]


def _find(spec, fname, places, download_if_missing, verbose):
    """The verified local copy of ``fname``, or None if it must be downloaded."""
    expected = spec.files[fname][0]
    for directory, is_cache in places:
        path = directory / fname
        if not path.is_file():
            continue
        actual = _md5(path)
        if actual == expected:
            return path
        if is_cache and download_if_missing:
            _log(verbose, f"{path} is corrupted (md5 {actual}); downloading it again.")
            return None
        fix = ("Delete it, or pass download_if_missing=True to download it again"
               if is_cache else "Replace it with the original file, or remove it")
        raise OSError(f"{path} is corrupted or not the official {spec.name} file: its md5 "
                      f"is {actual}, expected {expected}. {fix}.")
    return None


def _log(verbose, msg):
    if verbose:
        print(msg, file=sys.stderr, flush=True)


def _how_to_supply(filenames):
    return (f"To supply them, put the original files ({', '.join(filenames)}) in a "
            f"directory and pass it as data_home (--data-home on the command line), or set "
            f"{DATA_HOME_ENV} to it.")


# Downloading
def _download_all(spec, filenames, cache, *, mirrors, n_retries, delay, timeout, verbose):
    """Download ``filenames`` into ``cache``: all of them, or nothing at all."""
    timeout = _download_timeout(timeout)
    created = [d for d in (cache, *cache.parents) if not d.exists()]
    cache.mkdir(parents=True, exist_ok=True)
    parts, done = {}, False
    try:
        for fname in filenames:
            parts[fname] = _download_one(spec, fname, cache, mirrors or spec.mirrors,
                                         n_retries, delay, timeout, verbose)
        for fname, part in parts.items():
            os.replace(part, cache / fname)
        done = True
    finally:
        if not done:
            for part in parts.values():
                _discard(part)
            for d in created:  # deepest first; never a folder someone filled meanwhile
                try:
                    d.rmdir()
                except OSError:
                    break
    return {f: cache / f for f in filenames}


def _download_timeout(timeout):
    if timeout is not None:
        return float(timeout)
    value = os.environ.get(DOWNLOAD_TIMEOUT_ENV, "").strip()
    try:
        seconds = float(value) if value else DOWNLOAD_TIMEOUT
    except ValueError:
        seconds = math.nan
    if not seconds > 0:
        raise ValueError(f"{DOWNLOAD_TIMEOUT_ENV} must be a positive number of seconds, "
                         f"got {value!r}.")
    return seconds


def _download_one(spec, fname, cache, mirrors, n_retries, delay, timeout, verbose):
    """Try each mirror (each up to ``1 + n_retries`` times); return a verified part file."""
    md5, size = spec.files[fname]
    failures = []
    for base in mirrors:
        url = urllib.parse.urljoin(base if base.endswith("/") else base + "/", fname)
        for attempt in range(n_retries + 1):
            if attempt:
                time.sleep(delay)
            _log(verbose, f"Downloading {url}" + (f" (retry {attempt})" if attempt else ""))
            try:
                return _download_verified(url, cache, md5=md5, size=size, timeout=timeout,
                                          verbose=verbose)
            except _MirrorFailed as exc:
                reason, retry = str(exc), exc.retry
            _log(verbose, f"  failed: {reason}")
            if not retry:
                break
        failures.append(f"{url}: {reason}")
    raise DatasetNotFoundError(
        f"{fname} of {spec.name} could not be downloaded from any mirror "
        f"({'; '.join(failures)}). " + _how_to_supply(sorted(spec.files)))


def _download_verified(url, directory, *, md5, size, timeout, verbose):
    """Download ``url`` into a new hidden file in ``directory``; return its path.

    The file is returned only complete and verified, and is removed on any
    error. Whatever the mirror or the network does wrong raises
    :class:`_MirrorFailed`; an error writing the file propagates as it is.
    """
    name = url.rsplit("/", 1)[-1]
    fd, part = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
    done = False
    try:
        with os.fdopen(fd, "wb") as out:
            n, digest = _stream(url, out, size=size, timeout=timeout, verbose=verbose)
            out.flush()
            os.fsync(out.fileno())
        if n < size:
            raise _MirrorFailed(f"incomplete download ({n} of {size} bytes)", retry=True)
        if digest != md5:
            raise _MirrorFailed(f"md5 mismatch: got {digest}, expected {md5}")
        done = True
        return Path(part)
    finally:
        if not done:
            _discard(part)


def _stream(url, out, *, size, timeout, verbose):
    """Copy at most ``size`` bytes of ``url`` into ``out`` within ``timeout`` seconds.

    Returns the number of bytes and their md5.
    """
    from tqdm import tqdm

    deadline = time.monotonic() + timeout
    too_slow = (f"too slow: {{}} of {size} bytes after {timeout:g} s (raise the timeout "
                f"parameter or {DOWNLOAD_TIMEOUT_ENV})")
    h, n = hashlib.md5(usedforsecurity=False), 0
    request = urllib.request.Request(url, headers={"User-Agent": "sklenet (urllib)"})
    try:
        resp = urllib.request.urlopen(request, timeout=min(READ_TIMEOUT, timeout))
    except (OSError, http.client.HTTPException) as exc:
        raise _network_failure(exc) from None
    with resp, tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
                    desc=url.rsplit("/", 1)[-1], disable=not verbose, file=sys.stderr) as bar:
        announced = resp.headers.get("Content-Length", "")
        if announced.isdigit() and int(announced) != size:
            raise _MirrorFailed(f"announces {announced} bytes, the official file has {size}")
        while True:
            try:  # read1 returns what has arrived: a trickle cannot outlast the deadline
                chunk = resp.read1(min(_CHUNK, size + 1 - n))
            except (OSError, http.client.HTTPException) as exc:
                if time.monotonic() > deadline:
                    raise _MirrorFailed(too_slow.format(n)) from None
                raise _network_failure(exc) from None
            if not chunk:
                return n, h.hexdigest()
            n += len(chunk)
            if n > size:
                raise _MirrorFailed(f"sent more than the {size} bytes of the official file; "
                                    "stopped reading")
            out.write(chunk)
            h.update(chunk)
            bar.update(len(chunk))
            if time.monotonic() > deadline and n < size:
                raise _MirrorFailed(too_slow.format(n))


def _network_failure(exc):
    if isinstance(exc, urllib.error.HTTPError):  # a 404 stays a 404; a 5xx may pass
        return _MirrorFailed(f"HTTP error {exc.code}: {exc.reason}", retry=exc.code >= 500)
    if isinstance(exc, urllib.error.URLError):
        return _MirrorFailed(f"cannot connect: {exc.reason}", retry=True)
    return _MirrorFailed(f"{type(exc).__name__}: {exc}", retry=True)  # timeouts, resets


def _discard(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


