"""Finding, verifying and downloading the files of a data set.

:mod:`sklenet.datasets` describes each data set (its files with their md5
and size, its mirrors) and reads the files; this module gets them onto the
disk. It looks in ``data_home`` (else ``$SKLENET_DATA_HOME``), in its
subdirectory named after the data set, then in the cache under
scikit-learn's data home, and downloads what is found nowhere into that
cache. sklearn's own ``fetch_file`` has neither a timeout nor a size cap,
hence this downloader:

- every mirror is given a deadline per file (:data:`DOWNLOAD_TIMEOUT`,
  ``$SKLENET_DOWNLOAD_TIMEOUT``) that covers the whole request, headers
  included, and every read a timeout (:data:`READ_TIMEOUT`), so a trickling
  mirror cannot hang the caller;
- ``file://`` mirrors and files found on disk must be regular files (a named
  pipe is never opened blocking), and a local file's size is compared with
  the official size before it is hashed;
- a mirror that fails is followed by the next one; network errors are
  retried, wrong answers (a 404, a wrong size or md5) are not, and neither
  is a mirror that cannot be reached at all (its name does not resolve, no
  route to it): that is what a machine without a network sees, and it will
  not change a second later;
- with ``verbose``, a mirror is announced once it answers (then a progress
  bar), and each failure of a mirror that was reached gets one line; a
  mirror that cannot be reached gets none: offline, nothing is printed and
  the error says why each mirror failed;
- no more bytes are read than the official file has;
- the cache only ever receives complete, verified files, and a call that
  fails leaves it as it was (all the missing files, or none of them).

A data set is described by a ``spec`` with ``name`` (for messages),
``dirname`` (the subdirectory), ``files`` (file name -> (md5, size)) and
``mirrors`` (base URLs).
"""

import contextlib
import email.message
import errno
import functools
import hashlib
import http.client
import math
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import urllib.response
import warnings
from pathlib import Path

from ._regular_file import open_regular_file

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
    """A mirror did not deliver a file; ``retry`` says whether trying again may help,
    ``unreachable`` that the mirror could not be reached at all (no network)."""

    def __init__(self, reason, retry=False, unreachable=False):
        super().__init__(reason)
        self.retry = retry and not unreachable
        self.unreachable = unreachable


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
    places, no_home = _places(spec, data_home)
    verbose = download_args["verbose"]
    found = {f: _find(spec, f, places, download_if_missing, verbose) for f in filenames}
    missing = [f for f, path in found.items() if path is None]
    if missing and not download_if_missing:
        raise DatasetNotFoundError(
            (f"{no_home}. " if no_home else "")
            + f"{', '.join(missing)} of {spec.name} not found in "
            f"{', '.join(str(d) for d, _ in places)}, and download_if_missing=False. "
            + _how_to_supply(filenames))
    if no_home:
        warnings.warn(f"{no_home}; looking in the scikit-learn data home cache instead.",
                      UserWarning, stacklevel=5)  # the caller of fetch_*, past validate_params
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
def _problem(path, md5, size):
    """None if ``path`` is the official file (``md5``, ``size``), else what is wrong.

    The size is compared first: a huge (or sparse) file of the official name is
    refused at once instead of hashed; a named pipe or a device is never read.
    """
    try:
        f = open_regular_file(path, _NotRegular)
    except _NotRegular as exc:
        return f"it is {exc}, not a regular file"
    with f:
        actual_size = os.fstat(f.fileno()).st_size
        if actual_size != size:
            return f"its size is {actual_size} bytes, the official file's {size}"
        h = hashlib.md5(usedforsecurity=False)
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    actual = h.hexdigest()
    return None if actual == md5 else f"its md5 is {actual}, expected {md5}"


class _NotRegular(Exception):
    """What a path is instead of a regular file (e.g. "a named pipe (FIFO)")."""


def _places(spec, data_home):
    """The directories to search, in order, each with whether it is our cache; and
    what is wrong with the user's directory (None if it exists)."""
    origin = "data_home"
    if data_home is None:
        data_home, origin = os.environ.get(DATA_HOME_ENV, "").strip() or None, DATA_HOME_ENV
    places, no_home = [], None
    if data_home is not None:
        root = Path(data_home).expanduser()
        if not root.is_dir():
            no_home = (f"The {origin} directory {str(root)!r} "
                       + ("is not a directory" if root.exists() else "does not exist"))
        places = [(root, False), (root / spec.dirname, False)]
    # sklearn's get_data_home() would create the folder: looking must change nothing.
    sklearn_home = os.environ.get("SCIKIT_LEARN_DATA", os.path.join("~", "scikit_learn_data"))
    return places + [(Path(sklearn_home).expanduser() / spec.dirname, True)], no_home


def _find(spec, fname, places, download_if_missing, verbose):
    """The verified local copy of ``fname``, or None if it must be downloaded."""
    md5, size = spec.files[fname]
    for directory, is_cache in places:
        path = directory / fname
        if not path.exists():  # a dangling link is a missing file too
            continue
        what = _problem(path, md5, size)
        if what is None:
            return path
        if is_cache and download_if_missing:
            _log(verbose, f"{path} is corrupted ({what}); downloading it again.")
            return None
        fix = ("Delete it, or pass download_if_missing=True to download it again"
               if is_cache else "Replace it with the original file, or remove it")
        raise OSError(f"{path} is corrupted or not the official {spec.name} file: {what}. "
                      f"{fix}.")
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
    unreachable = {}  # base URL -> why: not tried again for the next files
    try:
        for fname in filenames:
            parts[fname] = _download_one(spec, fname, cache, mirrors or spec.mirrors,
                                         n_retries, delay, timeout, verbose, unreachable)
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


def _download_one(spec, fname, cache, mirrors, n_retries, delay, timeout, verbose,
                  unreachable):
    """Try each mirror (each up to ``1 + n_retries`` times); return a verified part file.

    A mirror that cannot be reached is tried once, and added to ``unreachable``
    (base URL -> reason) so that the next files do not try it again.
    """
    md5, size = spec.files[fname]
    failures = []
    # A mirror that cannot be reached is passed over, not a reason to stop: a name
    # that does not resolve may be that mirror's alone (a typo in `mirrors`, a
    # lapsed domain) while the next one works. Offline, each further mirror costs
    # one failed lookup or connect, once: milliseconds, at worst a resolver timeout.
    for base in mirrors:
        url = urllib.parse.urljoin(base if base.endswith("/") else base + "/", fname)
        if base in unreachable:
            failures.append(f"{url}: {unreachable[base]}")
            continue
        for attempt in range(n_retries + 1):
            try:
                return _download_verified(url, cache, md5=md5, size=size, timeout=timeout,
                                          verbose=verbose)
            except _MirrorFailed as exc:
                failure = exc
            if failure.unreachable:
                unreachable[base] = str(failure)
                break
            if failure.retry and attempt < n_retries:
                _log(verbose, f"  {url}: {failure}; retry {attempt + 1} of {n_retries} "
                              f"in {delay:g} s")
                time.sleep(delay)
                continue
            _log(verbose, f"  {url}: {failure}")
            break
        failures.append(f"{url}: {failure}")
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

    too_slow = (f"too slow: {{}} of {size} bytes after {timeout:g} s (raise the timeout "
                f"parameter or {DOWNLOAD_TIMEOUT_ENV})")
    h, n = hashlib.md5(usedforsecurity=False), 0
    request = urllib.request.Request(url, headers={"User-Agent": "sklenet (urllib)"})
    with _Deadline(timeout) as deadline:
        try:
            resp = _opener(deadline).open(request, timeout=min(READ_TIMEOUT, timeout))
        except (OSError, http.client.HTTPException) as exc:
            if deadline.passed():
                raise _MirrorFailed(too_slow.format(0)) from None
            raise _network_failure(exc) from None
        _log(verbose, f"Downloading {url}")
        with resp, tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024,
                        leave=False, desc=url.rsplit("/", 1)[-1], disable=not verbose,
                        file=sys.stderr) as bar:
            announced = resp.headers.get("Content-Length", "")
            if announced.isdigit() and int(announced) != size:
                raise _MirrorFailed(
                    f"announces {announced} bytes, the official file has {size}")
            while True:
                try:  # read1 returns what has arrived: a trickle cannot outlast the deadline
                    chunk = resp.read1(min(_CHUNK, size + 1 - n))
                except (OSError, http.client.HTTPException) as exc:
                    if deadline.passed():
                        raise _MirrorFailed(too_slow.format(n)) from None
                    raise _network_failure(exc) from None
                if not chunk:
                    return n, h.hexdigest()
                n += len(chunk)
                if n > size:
                    raise _MirrorFailed(f"sent more than the {size} bytes of the official "
                                        "file; stopped reading")
                out.write(chunk)
                h.update(chunk)
                bar.update(len(chunk))
                if deadline.passed() and n < size:
                    raise _MirrorFailed(too_slow.format(n))


class _Deadline:
    """Ends every connection of one download when its time is up.

    A socket timeout bounds each read, not a request: a mirror that sends its
    response headers a byte at a time keeps ``urlopen`` reading for as long as
    it likes. From the deadline on, a thread shuts down the socket of every
    connection opened for the download, which ends any read blocked on it.
    """

    def __init__(self, seconds):
        self._at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._connections = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True,
                                        name="sklenet-download-deadline")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._done.set()
        self._thread.join()

    def passed(self):
        return time.monotonic() >= self._at

    def add(self, connection):
        """Watch ``connection`` (an ``http.client.HTTPConnection``) from now on."""
        if self.passed():
            raise TimeoutError("the download's deadline has passed")
        with self._lock:
            self._connections.append(connection)

    def _watch(self):
        if self._done.wait(max(0.0, self._at - time.monotonic())):
            return
        # Until the download gives up: a connection may get its socket after the
        # deadline (a TLS handshake follows the TCP connection).
        while True:
            with self._lock:
                sockets = [c.sock for c in self._connections if c.sock is not None]
            for sock in sockets:
                with contextlib.suppress(OSError):  # closed or shut down already
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
            if self._done.wait(0.05):
                return


class _Watched:
    """A connection that registers with its deadline before connecting."""

    def __init__(self, *args, deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def connect(self):
        self._deadline.add(self)
        super().connect()


class _WatchedHTTPConnection(_Watched, http.client.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline):
        super().__init__()
        self._deadline = deadline

    def http_open(self, req):
        return self.do_open(functools.partial(_WatchedHTTPConnection,
                                              deadline=self._deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline):
        super().__init__()
        self._deadline = deadline

    def https_open(self, req):
        return self.do_open(functools.partial(_WatchedHTTPSConnection,
                                              deadline=self._deadline),
                            req, context=self._context)


class _FileHandler(urllib.request.FileHandler):
    """``file://`` URLs of regular files only: opening a named pipe would block."""

    def open_local_file(self, req):
        path = urllib.request.url2pathname(req.selector)
        try:
            f = open_regular_file(path, _NotRegular)
        except _NotRegular as exc:
            raise _MirrorFailed(f"{path} is {exc}, not a regular file") from None
        except OSError as exc:
            raise urllib.error.URLError(exc) from None
        headers = email.message.Message()
        headers["Content-Length"] = str(os.fstat(f.fileno()).st_size)
        return urllib.response.addinfourl(f, headers, req.full_url)


def _opener(deadline):
    """urllib's opener (proxies, redirects, ftp), with the connections ``deadline`` ends
    and ``file://`` URLs that never block."""
    return urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline),
                                       _FileHandler())


# The host, or the network it is on, cannot be reached from here: no route, or
# an interface that is down. A refused connection or a timeout is not among
# them: the mirror's host is there, and may answer the next time.
_UNREACHABLE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENETUNREACH", "EHOSTUNREACH", "ENETDOWN", "EHOSTDOWN")
    if hasattr(errno, name))


def _network_failure(exc):
    if isinstance(exc, urllib.error.HTTPError):  # a 404 stays a 404; a 5xx may pass
        return _MirrorFailed(f"HTTP error {exc.code}: {exc.reason}", retry=exc.code >= 500)
    if isinstance(exc, urllib.error.URLError):
        return _MirrorFailed(f"cannot connect: {exc.reason}", retry=True,
                             unreachable=_is_unreachable(exc.reason))
    return _MirrorFailed(f"{type(exc).__name__}: {exc}", retry=True,  # timeouts, resets
                         unreachable=_is_unreachable(exc))


def _is_unreachable(error):
    """Whether ``error`` says that the network cannot be reached at all: the name
    does not resolve (every ``socket.gaierror``, EAI_AGAIN included: offline, the
    resolver fails the same way a second later), or there is no route to it."""
    return isinstance(error, socket.gaierror) or (
        isinstance(error, OSError) and error.errno in _UNREACHABLE_ERRNOS)


def _discard(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


