"""The lines of a text input file, read the same way by every reader of the package.

Link prediction (triples, ``entity2text``, ``relation2text``), MNRE (JSON lines and the original
dict-literal lines) and CoNLL all get their lines from :func:`read_lines`:

- plain or gzip-compressed, recognised by the gzip magic bytes (so a ``.gz`` name is not needed
  and a misnamed file still reads); a corrupt or truncated gzip stream is a :class:`DataError`
  naming the file;
- UTF-8, with or without a byte-order mark; a UTF-16 file is refused with a :class:`DataError`
  that says so; a line that is not valid UTF-8 is a :class:`MalformedLineError` naming ``file:line``
  and the offending byte;
- newlines ``\\n``, ``\\r\\n`` or a lone ``\\r`` (universal newlines, as Python's text mode
  counts them), with or without a final newline;
- a line holding a NUL byte (binary data, or UTF-16 read as UTF-8) or longer than
  :data:`MAX_LINE_BYTES` is a :class:`MalformedLineError`;
- only regular files are opened (:func:`~pykeen_mkgformer.data.files.open_regular`).

Line errors are *yielded*, not raised, so that each reader decides what a bad line means (skip the
instance it belongs to, or stop); :class:`BadLines` is the usual place they go: it raises the first
one, or with ``skip=True`` (``--skip-bad-lines``) counts and lists every one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import gzip
import logging
import os
import warnings
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from .errors import DataError, MalformedLineError
from .files import open_regular

__all__ = [
    "paused_gc",
    "require_records",
    "BadLines",
    "read_lines",
    "content_lines",
    "numbered_lines",
    "open_binary",
    "MAX_LINE_BYTES",
]

logger = logging.getLogger(__name__)

#: lines longer than this (in bytes, before decoding) are reported instead of read
MAX_LINE_BYTES = 64 * 2**20

#: bytes read at a time
BLOCK_BYTES = 4 * 2**20

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while many small objects are built.

    Parsing a 300,000-line file makes millions of small lists and strings, none of them cyclic; the
    collector would otherwise rescan them again and again (it more than doubles the reading time).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclasses.dataclass
class BadLines:
    """Collects malformed lines: raises on the first one, or (``skip=True``) counts them all.

    Besides malformed lines, readers record *notices*: input that is well-formed but holds nothing
    (e.g. an ``IMGID:`` line followed by no token); they never stop a run, and are counted and named
    so that no input disappears without a word.
    """

    #: skip malformed lines (and the instance they belong to) instead of raising
    skip: bool = False
    #: every skipped line, in reading order
    errors: list[MalformedLineError] = dataclasses.field(default_factory=list)
    #: instances dropped because one of their lines was skipped (a tweet with one bad line is dropped whole)
    dropped_instances: int = 0
    #: kind (e.g. ``"empty sentence"``) -> where, in reading order
    notices: dict[str, list[DataError]] = dataclasses.field(default_factory=dict)

    def report(self, error: MalformedLineError) -> None:
        """Raise ``error``, or record it when skipping."""
        if not self.skip:
            raise error
        logger.warning("skipping %s", error)
        self.errors.append(error)

    def drop_instance(self) -> None:
        """Count one instance that was dropped because of a reported line."""
        self.dropped_instances += 1

    def notice(self, kind: str, error: DataError) -> None:
        """Record well-formed input that yields nothing (never raises); one warning each."""
        warnings.warn(f"{kind} ignored: {error}", stacklevel=2)
        self.notices.setdefault(kind, []).append(error)

    def summary(self) -> dict:
        """JSON-ready: how many lines were skipped and which, dropped instances, notices by kind."""
        return {
            "skipped": len(self.errors),
            "lines": [str(error) for error in self.errors],
            "dropped_instances": self.dropped_instances,
            "notices": {kind: [str(error) for error in errors] for kind, errors in self.notices.items()},
        }


@contextlib.contextmanager
def open_binary(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a regular file for reading bytes, decompressing it when it starts with the gzip magic bytes.

    A context manager (it closes the file, and the gzip reader on top of it).

    :raises DataError: if ``path`` is not a regular file (see :func:`~.files.open_regular`)
    """
    with open_regular(path) as file:
        try:
            magic = file.read(2)
            file.seek(0)
        except OSError as error:
            raise DataError(path, f"read error ({error.strerror or error})") from error
        if magic == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=file, mode="rb") as unzipped:
                yield unzipped  # type: ignore[misc]
        else:
            yield file


def _decode_problem(raw: bytes, error: UnicodeDecodeError) -> str:
    bad = raw[error.start : error.end]
    return f"not valid UTF-8 (byte {bad[:1].hex(' ')} at column {error.start + 1}); save the file as UTF-8"


def content_lines(path: str | os.PathLike, bad_lines: BadLines) -> Iterator[tuple[int, str]]:
    """The non-blank lines of a file with one record per line; unreadable lines go to ``bad_lines``."""
    for number, line in read_lines(path):
        if isinstance(line, MalformedLineError):
            bad_lines.report(line)
        elif line.strip():
            yield number, line


def numbered_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Like :func:`read_lines`, but raise the first :class:`MalformedLineError` instead of yielding it."""
    for number, line in read_lines(path):
        if isinstance(line, MalformedLineError):
            raise line
        yield number, line


def read_lines(path: str | os.PathLike) -> Iterator[tuple[int, str | MalformedLineError]]:
    """Yield ``(line number, text without its newline)`` for every line, or a :class:`MalformedLineError`.

    Numbers start at 1 and count ``\\n``, ``\\r\\n`` and lone ``\\r`` as line ends; a UTF-8 byte-order
    mark at the start of the file is dropped.

    :raises DataError: naming the file when it is not a regular file, when it is UTF-16, or when its
        gzip stream is corrupt or truncated (raised when reading reaches the damage)
    """
    path = os.fspath(path)
    with open_binary(path) as stream:
        yield from _numbered(path, stream)


def _blocks(stream: BinaryIO) -> Iterator[bytes | None]:
    """Runs of whole lines (each ending in ``\n``, except perhaps the file's last); None stands for
    one line of more than :data:`MAX_LINE_BYTES` bytes (read in bounded pieces and dropped).

    Blocks are at most ``MAX_LINE_BYTES`` long, so only a line that reaches into the next block
    (the carried-over part) can be too long, and that is checked exactly.
    """
    limit = MAX_LINE_BYTES
    size = min(BLOCK_BYTES, limit)
    carry = b""
    dropping = False  # inside a line that is too long
    while block := stream.read(size):
        start = 0
        if dropping or carry:
            first = block.find(b"\n")
            if first < 0:
                if not dropping:
                    carry += block
                    if len(carry) > limit:
                        carry, dropping = b"", True
                continue
            if dropping or len(carry) + first > limit:
                yield None
            else:
                yield carry + block[: first + 1]
            carry, dropping, start = b"", False, first + 1
        end = block.rfind(b"\n", start)
        if end < 0:
            carry = block[start:]
        else:
            if end + 1 > start:
                yield block[start : end + 1]
            carry = block[end + 1 :]
        if len(carry) > limit:
            carry, dropping = b"", True
    if dropping:
        yield None
    elif carry:
        yield carry


def _numbered(path: str, stream: BinaryIO) -> Iterator[tuple[int, str | MalformedLineError]]:
    compressed = isinstance(stream, gzip.GzipFile)
    number = 0
    first = True
    try:
        for block in _blocks(stream):
            if block is None:
                number += 1
                yield number, MalformedLineError(path, number, f"line longer than {MAX_LINE_BYTES:,} bytes")
                continue
            if first:
                first = False
                if block.startswith(UTF16_BOMS):
                    raise DataError(path, "UTF-16 text (starts with a UTF-16 byte-order mark); save it as UTF-8")
                if block.startswith(UTF8_BOM):
                    block = block[len(UTF8_BOM) :]
            if block.endswith(b"\n"):
                block = block[:-1]
            # fast path: the whole block is clean UTF-8 with \n line ends only
            if b"\r" not in block and b"\x00" not in block:
                try:
                    text = block.decode("utf-8")
                except UnicodeDecodeError:
                    pass
                else:
                    for line in text.split("\n"):
                        number += 1
                        yield number, line
                    continue
            for raw in block.split(b"\n"):
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                # a lone \r inside is a line end too (universal newlines)
                for piece in raw.split(b"\r") if b"\r" in raw else (raw,):
                    number += 1
                    if b"\x00" in piece:
                        yield number, MalformedLineError(
                            path, number, "contains a NUL byte (binary data, or UTF-16 text read as UTF-8?)"
                        )
                        continue
                    try:
                        yield number, piece.decode("utf-8")
                    except UnicodeDecodeError as error:
                        yield number, MalformedLineError(path, number, _decode_problem(piece, error))
    except (EOFError, zlib.error) as error:
        raise DataError(path, f"corrupt or truncated gzip data after line {number} ({error})") from error
    except OSError as error:  # gzip.BadGzipFile is an OSError; so are read errors
        kind = "corrupt or truncated gzip data" if compressed else "read error"
        raise DataError(path, f"{kind} after line {number} ({error})") from error


def require_records(path: str | os.PathLike, records: list, *, skipped: int, what: str) -> list:
    """Return ``records``; a split file that yields none is a :class:`DataError` naming it.

    :param skipped: how many malformed lines of the file were skipped (to tell an empty file from
        one whose every line was skipped)
    :param what: what the file holds, for the message (``"triples"``, ``"instances"``, ``"sentences"``)
    """
    if records:
        return records
    reason = f"all {skipped} malformed lines were skipped" if skipped else "the file is empty or holds only blank lines"
    raise DataError(path, f"no {what} in this split ({reason})")
