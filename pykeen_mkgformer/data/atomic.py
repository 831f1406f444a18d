"""Writing outputs safely: atomically, never over an input, never over an old output without consent.

- :func:`atomic_write` (and :func:`write_text` / :func:`write_json` on top of it) writes a file under
  a temporary name in the same folder, flushes it to disk, then renames it into place: a reader
  (or a killed process) sees the old file or the whole new one, never half of one.
- :func:`atomic_folder` does the same for a whole folder: everything is written into a hidden
  sibling folder that replaces the target only when the block finished without an error.
- :func:`check_output` refuses an output that is (or lies inside, or contains) one of the
  command's inputs, naming both, and an output that exists already unless ``overwrite``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["OutputError", "atomic_write", "atomic_folder", "write_text", "write_json", "check_output"]


class OutputError(ValueError):
    """An output that must not be written (it would replace an input, or an existing output without consent)."""


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing; on success it becomes ``path`` (``os.replace``).

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        binary = "b" in mode
        with os.fdopen(descriptor, mode, **({} if binary else {"encoding": encoding, "newline": ""})) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically; returns the path."""
    with atomic_write(path) as file:
        file.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, value: Any, *, indent: int | None = 2) -> Path:
    """Write JSON atomically (strict: NaN / infinity refused, any string kept, non-ASCII as escapes)."""
    return write_text(path, json.dumps(value, indent=indent, ensure_ascii=True, allow_nan=False) + "\n")


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh hidden folder next to ``path``; on success it replaces ``path``.

    :param overwrite: whether an existing ``path`` may be replaced (else :class:`OutputError`, before
        anything is written)
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists already; give --overwrite (overwrite=True) to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield staging
        old = None
        if path.exists() or path.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "replaced")
        os.replace(staging, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _overlap(output: Path, source: Path) -> bool:
    """Whether writing ``output`` would replace (part of) ``source``: the same path or file, a folder
    holding the input, or an existing file inside an input folder (a new file there is fine)."""
    if output == source or source.is_relative_to(output):
        return True
    with contextlib.suppress(OSError):
        if output.exists() and source.exists() and os.path.samefile(output, source):
            return True
    return output.is_relative_to(source) and output.exists()


def check_output(
    output: str | os.PathLike,
    inputs: Mapping[str, str | os.PathLike | None] | Iterable[tuple[str, str | os.PathLike | None]],
    *,
    option: str,
    overwrite: bool = False,
) -> Path:
    """Refuse an output that would replace one of the command's inputs, or an existing one without ``overwrite``.

    Paths are compared after resolving symlinks: an output is refused when it is an input, holds an
    input (a folder to be replaced), or is an existing file inside an input folder.

    :param output: the path to be written
    :param inputs: ``option name -> path`` of the command's inputs (None values are skipped)
    :param option: how the output was given (``--save``, ``--output``), for the message
    :raises OutputError: naming the output and the input it would destroy, or the existing output
    """
    target = _resolved(output)
    pairs = inputs.items() if isinstance(inputs, Mapping) else inputs
    for name, source in pairs:
        if source is None:
            continue
        if _overlap(target, _resolved(source)):
            raise OutputError(
                f"{option} {output} would write over the input {name} {source}; choose another {option}."
            )
    if (target.exists() or Path(output).is_symlink()) and not overwrite:
        raise OutputError(f"{option} {output} exists already; give --overwrite to replace it.")
    return Path(output)
