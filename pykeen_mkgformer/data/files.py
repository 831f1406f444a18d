"""Opening input files safely: only regular files, never blocking, always a named reason when refused.

A data folder may hold anything: a directory named ``photo.jpg``, a symlink loop, a dangling
symlink, a symlink to ``/dev/zero`` or to a FIFO (opening a FIFO blocks until someone writes;
reading ``/dev/zero`` never ends). :func:`open_regular` opens a path only when it is a regular file,
checks that on the opened descriptor itself (so a file swapped between the check and the open is
caught too), opens with ``O_NONBLOCK`` (a FIFO never blocks the open), and otherwise raises the
requested :class:`~pykeen_mkgformer.data.errors.DataError` subclass naming the path and the reason.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

from .errors import DataError

__all__ = ["open_regular", "file_problem", "read_bounded"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _os_reason(path: str, error: OSError | ValueError) -> str:
    """Why ``os.stat`` / ``os.open`` failed, in words."""
    if isinstance(error, ValueError):  # e.g. an embedded NUL character
        return f"invalid file name ({error})"
    code = error.errno
    if code == errno.ENOENT:
        if os.path.islink(path):
            return f"dangling symlink (to {os.readlink(path)!r})"
        return "missing file"
    if code == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links)"
    if code in (errno.EACCES, errno.EPERM):
        return "unreadable (permission denied)"
    if code == errno.ENOTDIR:
        return "missing file (a parent is not a directory)"
    if code == errno.ENAMETOOLONG:
        return "file name too long"
    return f"cannot open ({error.strerror or error})"


def file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be opened as a regular file (None when it can be, as far as ``stat`` tells)."""
    path = os.fspath(path)
    try:
        status = os.stat(path)
    except (OSError, ValueError) as error:
        return _os_reason(path, error)
    if not stat.S_ISREG(status.st_mode):
        return f"not a regular file ({_kind(status.st_mode)})"
    return None


def open_regular(path: str | os.PathLike, *, error: type[DataError] = DataError) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file.

    :param error: the :class:`DataError` subclass raised (``DataError`` or ``ImageError``)
    :raises DataError: (``error``) naming the path and why: missing, dangling symlink, symlink loop,
        permission denied, a directory / FIFO / device / socket, an invalid name
    """
    path = os.fspath(path)
    problem = file_problem(path)
    if problem is not None:
        raise error(path, problem)
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError) as failure:
        raise error(path, _os_reason(path, failure)) from failure
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):  # swapped since the check above
            raise error(path, f"not a regular file ({_kind(status.st_mode)})")
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_bounded(path: str | os.PathLike, max_bytes: int, *, error: type[DataError] = DataError) -> bytes:
    """All bytes of a regular file of at most ``max_bytes`` bytes.

    :raises DataError: (``error``) for the reasons of :func:`open_regular`, an empty file, a file over
        ``max_bytes``, or a read error
    """
    with open_regular(path, error=error) as file:
        size = os.fstat(file.fileno()).st_size
        if size > max_bytes:
            raise error(path, f"file too large ({size:,} bytes; the limit is {max_bytes:,})")
        try:
            data = file.read(max_bytes + 1)
        except OSError as failure:
            raise error(path, f"read error ({failure.strerror or failure})") from failure
    if not data:
        raise error(path, "empty file")
    if len(data) > max_bytes:  # grew while being read
        raise error(path, f"file too large (over the limit of {max_bytes:,} bytes)")
    return data
