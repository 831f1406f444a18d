"""Readers for MNRE: one instance per line, as JSON (``.jsonl``, ``.jsonl.gz``) or as the original
release's Python dict literals (``.txt``, parsed with :func:`ast.literal_eval`, never ``eval``).

An instance::

    {"token": ["The", "latest", "Arkham", ...], "h": {"name": "Circle Undone", "pos": [8, 10]},
     "t": {"name": "Arkham Horror LCG", "pos": [2, 5]}, "img_id": "twitter_19_31_16_6.jpg",
     "relation": "/misc/misc/part_of"}

``pos`` is a half-open token span ``[start, end)``.

Lines come from the package's one text reader (:mod:`pykeen_mkgformer.data.textfiles`: plain or
gzip, BOM, any newline); a line that is not UTF-8, not a JSON object / literal dict, or not a
valid instance is a :class:`~pykeen_mkgformer.data.errors.MalformedLineError` naming ``file:line``
(skipped and counted with ``--skip-bad-lines``). Strings holding lone UTF-16 surrogates (which
JSON's ``\ud800`` escapes allow, but no tokenizer or UTF-8 file can take) are malformed too.
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..data.errors import DataError
from ..data.files import read_bounded
from ..data.textfiles import content_lines, require_records
from ..tasks.lines import BadLines, MalformedLineError, find_split_file

__all__ = ["Span", "RelationInstance", "read_mnre", "read_mnre_folder", "load_relations", "MNRE_SPLIT_FILES", "NONE_RELATION"]

#: the label of "no relation", left out of the micro scores
NONE_RELATION = "None"

#: file names tried for each split, in order (the JSON lines of shared/data, then the txt release)
MNRE_SPLIT_FILES: dict[str, tuple[str, ...]] = {
    "train": ("train.jsonl.gz", "train.jsonl", "mnre_train.txt", "ours_train.txt"),
    "dev": ("val.jsonl.gz", "val.jsonl", "dev.jsonl.gz", "dev.jsonl", "mnre_val.txt", "mnre_val .txt", "ours_val.txt"),
    "test": ("test.jsonl.gz", "test.jsonl", "mnre_test.txt", "ours_test.txt"),
}


@dataclass(frozen=True)
class Span:
    """An entity mention: its text and its half-open token span."""

    name: str
    start: int
    end: int


@dataclass(frozen=True)
class RelationInstance:
    """One MNRE instance."""

    tokens: tuple[str, ...]
    head: Span
    tail: Span
    #: the image's file name, or None
    image: str | None
    relation: str
    #: ``file:line`` it was read from
    source: str


def load_relations(folder: Path) -> dict[str, int] | None:
    """``rel2id.json`` of the folder (label -> id), or None when there is none.

    :raises DataError: naming the file if it is not a regular file, not UTF-8 JSON (a BOM is
        allowed), or not an object mapping relations to the distinct integer ids 0..n-1
    """
    path = Path(folder) / "rel2id.json"
    if not os.path.lexists(path):
        return None
    try:
        relations = json.loads(read_bounded(path, 2**26).decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise DataError(path, f"not valid UTF-8 (byte at offset {error.start})") from error
    except (ValueError, RecursionError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(path, f"not valid JSON ({error})") from error
    ids = list(relations.values()) if isinstance(relations, dict) else None
    if ids is None or not all(type(i) is int for i in ids) or sorted(ids) != list(range(len(ids))):
        raise DataError(path, "must map each relation to a distinct id 0..n-1")
    return relations


def read_mnre(path: Path, *, relations: Mapping[str, int] | None = None, bad_lines: BadLines | None = None) -> list[RelationInstance]:
    """Read an MNRE split; ``.txt`` files hold Python dict literals, others JSON objects.

    :param relations: the allowed labels (e.g. from ``rel2id.json``); any label when None
    :param bad_lines: where malformed lines go; by default the first one raises
    :raises MalformedLineError: naming the file and line (bad syntax, missing field, span out of
        range, unknown relation) unless ``bad_lines`` skips
    """
    path = Path(path)
    bad_lines = bad_lines if bad_lines is not None else BadLines()
    python_literals = path.name.endswith(".txt") or path.name.endswith(".txt.gz")
    instances = []
    for number, line in content_lines(path, bad_lines):
        try:
            record = _parse(line, python_literals)
            instances.append(_instance(record, relations, f"{path}:{number}"))
        except (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError) as error:
            bad_lines.report(error if isinstance(error, MalformedLineError) else MalformedLineError(path, number, _reason(error)))
    return instances


def read_mnre_folder(folder: Path, split: str, *, bad_lines: BadLines | None = None) -> list[RelationInstance]:
    """The ``split`` (``train``, ``dev``, ``test``) of an MNRE folder, checked against its ``rel2id.json``.

    :raises DataError: naming the split's file when it holds no instance
    """
    bad_lines = bad_lines if bad_lines is not None else BadLines()
    path = find_split_file(Path(folder), MNRE_SPLIT_FILES[split])
    skipped_before = len(bad_lines.errors)
    instances = read_mnre(path, relations=load_relations(folder), bad_lines=bad_lines)
    return require_records(path, instances, skipped=len(bad_lines.errors) - skipped_before, what="instances")


def _parse(line: str, python_literals: bool) -> Any:
    if python_literals:
        return ast.literal_eval(line.strip())
    return json.loads(line)


def _reason(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"not valid JSON ({error.msg} at column {error.colno})"
    if isinstance(error, (SyntaxError, ValueError)) and not isinstance(error, MalformedLineError):
        return f"not a valid literal ({error})"
    if isinstance(error, KeyError):
        return f"missing field {error}"
    if isinstance(error, (MemoryError, RecursionError)):
        return f"too deeply nested or too large to parse ({type(error).__name__})"
    return str(error) or type(error).__name__


def _not_unicode(text: str) -> bool:
    """True when ``text`` cannot be encoded as UTF-8 (it holds a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _instance(record: Any, relations: Mapping[str, int] | None, source: str) -> RelationInstance:
    path, _, number = source.rpartition(":")

    def fail(reason: str) -> MalformedLineError:
        return MalformedLineError(path, int(number), reason)

    if not isinstance(record, dict):
        raise fail(f"expected an object, got {type(record).__name__}")
    for key in ("token", "h", "t", "relation"):
        if key not in record:
            raise fail(f"missing field {key!r}")
    tokens = record["token"]
    if not isinstance(tokens, list) or not tokens or not all(isinstance(token, str) for token in tokens):
        raise fail("'token' must be a non-empty list of strings")
    for position, token in enumerate(tokens):
        if _not_unicode(token):
            raise fail(f"token {position} holds a lone surrogate ({token!r}), which is no text")
    spans = {}
    for key in ("h", "t"):
        entity = record[key]
        position = entity.get("pos") if isinstance(entity, dict) else None
        if (
            not isinstance(position, (list, tuple))
            or len(position) != 2
            or not all(isinstance(p, int) and not isinstance(p, bool) for p in position)
        ):
            raise fail(f"{key!r} needs 'pos': [start, end] with integer positions")
        start, end = position
        if not 0 <= start < end <= len(tokens):
            raise fail(f"{key!r} span [{start}, {end}) is out of range for {len(tokens)} tokens")
        name = str(entity.get("name", " ".join(tokens[start:end])))
        if _not_unicode(name):
            raise fail(f"{key!r} name holds a lone surrogate ({name!r})")
        spans[key] = Span(name, start, end)
    relation = record["relation"]
    if not isinstance(relation, str) or _not_unicode(relation):
        raise fail(f"'relation' must be a string, got {relation!r}")
    if relations is not None and relation not in relations:
        raise fail(f"relation {relation!r} is not in rel2id.json")
    image = record.get("img_id")
    if isinstance(image, int) and not isinstance(image, bool):
        image = str(image)
    if image is not None and not isinstance(image, str):
        raise fail(f"'img_id' must be a file name, got {image!r}")
    if image and _not_unicode(image):
        raise fail(f"'img_id' holds a lone surrogate ({image!r})")
    return RelationInstance(
        tokens=tuple(tokens),
        head=spans["h"],
        tail=spans["t"],
        image=str(image) if image else None,
        relation=relation,
        source=source,
    )
