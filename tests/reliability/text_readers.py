"""The package's text readers under test: one table shared by the gauntlet and the fuzzer.

``hostile_inputs.py`` (every class of hostile input through every reader, ``test_gauntlet.py``) and
``fuzz_support.py`` (generated files, ``test_fuzz.py``) both take their readers from
:data:`TEXT_READERS`, so a reader added here is tested by both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from pykeen_mkgformer.data.textfiles import BadLines


@dataclasses.dataclass(frozen=True)
class TextReader:
    """A text reader of the package: its name, the file name it reads, and ``read(path, bad_lines)`` -> records."""

    name: str
    file_name: str
    read: Callable[[Path, BadLines], list]
    #: records are sentences: blank lines and ``IMGID:`` lines are the format's structure
    conll: bool = False
    #: a split file (train/valid/test): one without records is an error
    split: bool = True

    def extended(self, cls: type, **fields):
        """This reader as ``cls``, a subclass that adds a suite's own (keyword-only) fields."""
        return cls(**{field.name: getattr(self, field.name) for field in dataclasses.fields(TextReader)}, **fields)


def _read_triples(path: Path, bad_lines: BadLines) -> list:
    from pykeen_mkgformer.data.readers import read_triples

    return list(read_triples(path, bad_lines=bad_lines))


def _read_table(path: Path, bad_lines: BadLines) -> list:
    from pykeen_mkgformer.data.readers import read_text_table

    return list(read_text_table(path, bad_lines=bad_lines).items())


def _read_mnre(path: Path, bad_lines: BadLines) -> list:
    from pykeen_mkgformer.re import read_mnre

    return read_mnre(path, bad_lines=bad_lines)


def _read_conll(path: Path, bad_lines: BadLines) -> list:
    from pykeen_mkgformer.ner import read_conll

    return read_conll(path, bad_lines=bad_lines)


TEXT_READERS: dict[str, TextReader] = {
    reader.name: reader
    for reader in (
        TextReader("LP triples", "train.tsv", _read_triples),
        TextReader("LP entity2text", "entity2text.tsv", _read_table, split=False),
        TextReader("MNRE JSONL", "train.jsonl", _read_mnre),
        TextReader("MNRE dict literals", "mnre_train.txt", _read_mnre),
        TextReader("CoNLL", "train.txt", _read_conll, conll=True),
    )
}
