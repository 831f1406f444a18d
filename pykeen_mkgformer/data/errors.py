"""The package's errors about input data: each names the file, and the line when there is one.

Every reader and the image decoder turn whatever goes wrong with a file (bad bytes, a corrupt
gzip stream, a symlink loop, a decompression bomb, ...) into one of these, so a user always learns
*which* file (and line) to fix, and callers catch one type::

    DataError (ValueError)
    ├── MalformedLineError   one line of a text file (skippable with ``--skip-bad-lines``)
    └── ImageError           one image file (skipped, named and counted by the image loaders)

``DataError`` itself is raised for whole-file problems of text inputs: not a regular file, empty
split, corrupt or truncated gzip data, UTF-16 text.
"""

from __future__ import annotations

import os

__all__ = ["DataError", "MalformedLineError", "ImageError"]


class DataError(ValueError):
    """Input data that cannot be used; :attr:`path` names the file, :attr:`line` the 1-based line (or None)."""

    def __init__(self, path: str | os.PathLike, reason: str, *, line: int | None = None):
        self.path = os.fspath(path)
        self.line = line
        self.reason = reason
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # keep the attributes through pickling (multiprocessing, pytest-xdist)
        return _rebuild, (type(self), self.path, self.reason, self.line)


def _rebuild(cls: type[DataError], path: str, reason: str, line: int | None) -> DataError:
    error = DataError.__new__(cls)
    DataError.__init__(error, path, reason, line=line)
    return error


class MalformedLineError(DataError):
    """A line of an input file that cannot be read; names the file and the 1-based line number."""

    def __init__(self, path: str | os.PathLike, line: int, reason: str):
        super().__init__(path, reason, line=line)


class ImageError(DataError):
    """An image file that cannot be used (missing, not a regular file, empty, corrupt, truncated, a bomb...)."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(path, reason)
