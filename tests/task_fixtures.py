"""Helpers for the relation extraction and NER tests: small data folders (the tiny text encoder is a fixture of conftest.py)."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path


def head_lines(path: Path, count: int) -> list[str]:
    """The first ``count`` lines of a (gzip) text file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as file:
        return [line.rstrip("\n") for line in itertools.islice(file, count)]


def write_mnre_folder(folder: Path, splits: dict[str, list[dict]], relations: list[str]) -> Path:
    """An MNRE-layout folder: ``{train,val,test}.jsonl`` and ``rel2id.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {"train": "train.jsonl", "dev": "val.jsonl", "test": "test.jsonl"}
    for split, records in splits.items():
        (folder / names[split]).write_text("".join(json.dumps(record) + "\n" for record in records))
    (folder / "rel2id.json").write_text(json.dumps({label: index for index, label in enumerate(relations)}))
    return folder


def write_conll_folder(folder: Path, splits: dict[str, list[list[tuple[str, str]]]]) -> Path:
    """A Twitter-2017-layout folder: ``{train,valid,test}.txt`` with ``IMGID`` lines."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}
    for split, sentences in splits.items():
        blocks = []
        for index, sentence in enumerate(sentences):
            blocks.append(f"IMGID:{split}_{index}\n" + "".join(f"{word}\t{tag}\n" for word, tag in sentence))
        (folder / names[split]).write_text("\n".join(blocks) + "\n")
    return folder
