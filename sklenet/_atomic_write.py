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
import stat

__all__ = ["write_atomically"]

_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


def write_atomically(path, payload):
    """Replace ``path`` by a file holding ``payload``: all or nothing.

    The bytes go to a new file in the same directory (``os.replace`` is atomic
    only within one file system) and reach the disk (``fsync``) before the file
    takes ``path``'s name; the directory is synced after, so that the rename
    survives a power cut too. A new file gets the permissions the umask gives
    any new file; a file written over keeps its permissions (a file made
    private stays private).

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
                written = os.write(fd, view)
                if not written:  # else this loop would never end
                    raise OSError(errno.EIO, "the system wrote 0 bytes of the file")
                view = view[written:]
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
    """A new empty file next to ``path``, opened for writing: ``(fd, name)``.

    It has the permissions of the file at ``path`` if there is one, else those
    the umask gives new files.
    """
    directory, name = os.path.split(os.path.abspath(path))
    try:
        existing = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:  # no file yet (or none we can see): a new one
        existing = None
    # Mode 0o666, as open() asks for: the kernel applies the umask and any
    # default ACL, where mkstemp's fixed 0o600 would need a chmod that reads
    # the umask (process-wide, so racy in threads). Over an existing file, it
    # is created no wider than that file, then given its exact mode before any
    # byte is written.
    mode = 0o666 if existing is None else existing & 0o666
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY
    prefix = _temporary_prefix(directory, name)
    for _ in range(100):
        candidate = os.path.join(directory, f"{prefix}{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(candidate, flags, mode)
        except FileExistsError:
            continue
        if existing is not None and hasattr(os, "fchmod"):
            try:
                os.fchmod(fd, existing)
            except BaseException:
                os.close(fd)
                os.unlink(candidate)
                raise
        return fd, candidate
    raise FileExistsError(errno.EEXIST, "No free temporary file name", directory)


def _temporary_prefix(directory, name):
    """``".<name>."``, cut so that the temporary name fits the file system's limit.

    The limit (NAME_MAX, 255 on most systems) counts bytes, not characters:
    ``"é" * 121`` is a legal 242-byte name whose temporary name must be shorter.
    """
    try:
        name_max = os.pathconf(directory, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows), or no answer
        name_max = 255
    budget = name_max - len(".") - len(".") - len("01234567.tmp")
    while len(os.fsencode(name)) > budget:
        name = name[:-1]
    return f".{name}."


def _error_about(exc, path):
    """The ``OSError`` ``exc``, with its errno and message, about ``path``."""
    if exc.errno is None:
        return OSError(f"Cannot write {path!r}: {exc.strerror or exc}")
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
