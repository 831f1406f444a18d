"""Malformed lines of an input file (an error naming file and line, or counted and reported) and split files.

The line reading itself is the package's one text reader, :mod:`pykeen_mkgformer.data.textfiles`
(BOM, newlines, gzip, bad bytes); the errors are :mod:`pykeen_mkgformer.data.errors`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..data.errors import DataError, MalformedLineError
from ..data.files import file_problem
from ..data.textfiles import BadLines, numbered_lines

__all__ = ["DataError", "MalformedLineError", "BadLines", "numbered_lines", "find_split_file"]


def find_split_file(folder: Path, names: tuple[str, ...]) -> Path:
    """The first of ``names`` that exists in ``folder``.

    :raises FileNotFoundError: naming the folder and every name tried
    :raises DataError: when the first name that exists is not a regular file (a directory, a
        symlink loop, a dangling symlink, a FIFO...)
    """
    for name in names:
        path = folder / name
        if os.path.lexists(path):
            problem = file_problem(path)
            if problem is not None:
                raise DataError(path, problem)
            return path
    raise FileNotFoundError(f"None of {', '.join(names)} exists in {folder}.")
