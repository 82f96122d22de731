"""Open a path for reading only if it is a regular file, without blocking.

Model files, downloaded data and IDX files are read from paths a user (or a
forger) chose. A named pipe would block ``open`` until a writer comes, a
device such as ``/dev/zero`` never ends: :func:`open_regular_file` refuses
them before reading a byte.

Examples
--------
>>> import os, tempfile
>>> from sklenet._regular_file import open_regular_file
>>> with tempfile.TemporaryDirectory() as directory:
...     open_regular_file(directory, OSError)
Traceback (most recent call last):
...
OSError: a directory
"""

import os
import stat

__all__ = ["non_regular_kind", "open_regular_file"]

_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # POSIX only
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def non_regular_kind(mode):
    """None for a regular file's ``st_mode``, else what the file is ("a directory", ...)."""
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def open_regular_file(path, error):
    """``path`` opened for binary reading, if it is a regular file.

    Checked before opening (opening a device can have effects of its own) and
    again on the open file, in case ``path`` was replaced in between. The open
    itself does not block: ``O_NONBLOCK`` makes opening a FIFO return at once
    instead of waiting for a writer (reading regular files ignores the flag).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    error : callable
        Called with what the file is instead (e.g. ``"a named pipe (FIFO)"``);
        returns the exception to raise.

    Returns
    -------
    file : io.BufferedReader
        The open file; the caller closes it.

    Raises
    ------
    OSError
        If ``path`` cannot be opened (missing, no permission).
    Exception
        ``error(kind)`` for anything but a regular file.
    """
    kind = non_regular_kind(os.stat(path).st_mode)
    if kind is not None:
        raise error(kind)
    fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_BINARY)
    f = os.fdopen(fd, "rb")
    try:
        kind = non_regular_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise error(kind)
    except BaseException:
        f.close()
        raise
    return f
