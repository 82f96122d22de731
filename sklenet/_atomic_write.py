"""Replace a file all at once: readers see the old file or the complete new one.

Examples
--------
>>> import os, tempfile
>>> from sklenet._atomic_write import write_atomically
>>> with tempfile.TemporaryDirectory() as directory:
...     path = os.path.join(directory, "model.sklenet")
...     write_atomically(path, b"first")
...     write_atomically(path, b"second")
...     with open(path, "rb") as f:
...         f.read(), os.listdir(directory)
(b'second', ['model.sklenet'])
"""

import contextlib
import errno
import os
import secrets

__all__ = ["write_atomically"]

_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


def write_atomically(path, payload):
    """Replace ``path`` by a file holding ``payload``: all or nothing.

    The bytes go to a new file in the same directory (``os.replace`` is atomic
    only within one file system) and reach the disk (``fsync``) before the file
    takes ``path``'s name; the directory is synced after, so that the rename
    survives a power cut too. The new file gets the permissions the umask
    gives any new file.

    Parameters
    ----------
    path : str
        The file to write. Its directory must be writable.
    payload : bytes-like
        The whole content of the file.

    Raises
    ------
    OSError
        The operating system's error (its errno and message), naming ``path``
        rather than the temporary file. On any failure, ``KeyboardInterrupt``
        included, the temporary file is removed and ``path`` is left as it was.
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
