"""Malformed lines of an input file: an error naming file and line, or counted and reported."""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

__all__ = ["MalformedLineError", "BadLines", "open_text", "numbered_lines", "find_split_file"]

logger = logging.getLogger(__name__)


class MalformedLineError(ValueError):
    """A line of an input file that cannot be read; names the file and the 1-based line number."""

    def __init__(self, path: str | Path, line: int, reason: str):
        self.path = str(path)
        self.line = line
        self.reason = reason
        super().__init__(f"{self.path}:{line}: {reason}")


@dataclass
class BadLines:
    """Collects malformed lines: raises on the first one, or (``skip=True``) counts them all."""

    #: skip malformed lines (and the instance they belong to) instead of raising
    skip: bool = False
    #: every skipped line, in reading order
    errors: list[MalformedLineError] = field(default_factory=list)

    def report(self, error: MalformedLineError) -> None:
        """Raise ``error``, or record it when skipping."""
        if not self.skip:
            raise error
        logger.warning("skipping %s", error)
        self.errors.append(error)

    def summary(self) -> dict:
        """JSON-ready: how many lines were skipped, and which."""
        return {"skipped": len(self.errors), "lines": [str(error) for error in self.errors]}


def open_text(path: Path) -> IO[str]:
    """Open a UTF-8 text file, gzip-compressed when its name ends in ``.gz``."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line without its newline)``, numbers starting at 1."""
    with open_text(path) as file:
        for number, line in enumerate(file, start=1):
            yield number, line.rstrip("\r\n")


def find_split_file(folder: Path, names: tuple[str, ...]) -> Path:
    """The first of ``names`` that exists in ``folder``.

    :raises FileNotFoundError: naming the folder and every name tried
    """
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"None of {', '.join(names)} exists in {folder}.")
