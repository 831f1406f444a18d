"""Readers for MNRE: one instance per line, as JSON (``.jsonl``, ``.jsonl.gz``) or as the original
release's Python dict literals (``.txt``, parsed with :func:`ast.literal_eval`, never ``eval``).

An instance::

    {"token": ["The", "latest", "Arkham", ...], "h": {"name": "Circle Undone", "pos": [8, 10]},
     "t": {"name": "Arkham Horror LCG", "pos": [2, 5]}, "img_id": "twitter_19_31_16_6.jpg",
     "relation": "/misc/misc/part_of"}

``pos`` is a half-open token span ``[start, end)``.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..tasks.lines import BadLines, MalformedLineError, find_split_file, numbered_lines

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

    :raises ValueError: if the file is not a JSON object of distinct integer ids 0..n-1
    """
    path = Path(folder) / "rel2id.json"
    if not path.is_file():
        return None
    relations = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(relations, dict) or sorted(relations.values()) != list(range(len(relations))):
        raise ValueError(f"{path} must map each relation to a distinct id 0..n-1.")
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
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        try:
            record = _parse(line, python_literals)
            instances.append(_instance(record, relations, f"{path}:{number}"))
        except (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError) as error:
            bad_lines.report(error if isinstance(error, MalformedLineError) else MalformedLineError(path, number, _reason(error)))
    return instances


def read_mnre_folder(folder: Path, split: str, *, bad_lines: BadLines | None = None) -> list[RelationInstance]:
    """The ``split`` (``train``, ``dev``, ``test``) of an MNRE folder, checked against its ``rel2id.json``."""
    path = find_split_file(Path(folder), MNRE_SPLIT_FILES[split])
    return read_mnre(path, relations=load_relations(folder), bad_lines=bad_lines)


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
    return str(error)


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
        spans[key] = Span(str(entity.get("name", " ".join(tokens[start:end]))), start, end)
    relation = record["relation"]
    if not isinstance(relation, str):
        raise fail(f"'relation' must be a string, got {relation!r}")
    if relations is not None and relation not in relations:
        raise fail(f"relation {relation!r} is not in rel2id.json")
    image = record.get("img_id")
    return RelationInstance(
        tokens=tuple(tokens),
        head=spans["h"],
        tail=spans["t"],
        image=str(image) if image else None,
        relation=relation,
        source=source,
    )
