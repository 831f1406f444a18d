"""Twitter-2017 in CoNLL format, and the alignment of words to word pieces.

A tweet is an ``IMGID:<id>`` line (its image is ``<id>.jpg``), one ``token<TAB>label`` line per
word with BIO labels (``B-PER``, ``I-PER``, ..., ``O``), and a blank line. The separator is a tab,
as in the released files: a line whose fields are separated by spaces is reported, never guessed
(a token may not contain a tab, but the format gives spaces no meaning).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from transformers import PreTrainedTokenizerBase

from ..data.textfiles import read_lines, require_records
from ..tasks.lines import BadLines, MalformedLineError, find_split_file

__all__ = ["Sentence", "read_conll", "read_conll_folder", "WordAlignment", "align_words", "TWITTER_SPLIT_FILES", "entity_type"]

IMAGE_PREFIX = "IMGID:"

#: file names tried for each split, in order
TWITTER_SPLIT_FILES: dict[str, tuple[str, ...]] = {
    "train": ("train.txt.gz", "train.txt"),
    "dev": ("valid.txt.gz", "valid.txt", "dev.txt.gz", "dev.txt", "val.txt.gz", "val.txt"),
    "test": ("test.txt.gz", "test.txt"),
}


@dataclass(frozen=True)
class Sentence:
    """One tweet: its words, their BIO tags, its image file name and where it starts."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    image: str | None
    #: ``file:line`` of its first line
    source: str


def entity_type(tag: str) -> str | None:
    """``PER`` for ``B-PER`` / ``I-PER``; None for ``O``."""
    return None if tag == "O" else tag[2:]


def _check_tag(tag: str, previous: str | None) -> str | None:
    """Why ``tag`` (after ``previous``) is not valid BIO, or None if it is."""
    if tag == "O":
        return None
    if len(tag) < 3 or tag[:2] not in ("B-", "I-"):
        return f"label {tag!r} is not O, B-TYPE or I-TYPE"
    if tag.startswith("I-") and (previous is None or previous == "O" or previous[2:] != tag[2:]):
        return f"label {tag!r} does not continue a {tag[2:]} entity (previous label: {previous or 'none'})"
    return None


def read_conll(path: Path, *, bad_lines: BadLines | None = None) -> list[Sentence]:
    r"""Read a CoNLL file with ``IMGID:`` lines.

    Each word line is ``token<TAB>label`` (surrounding spaces are stripped). Lines are read with the
    package's text reader (plain or gzip, BOM, ``\n`` / ``\r\n`` / ``\r``).

    :param bad_lines: where malformed lines go; by default the first one raises. An ``IMGID:`` line
        followed by no word (an empty sentence) is not an error: it is counted and named as a
        notice (``bad_lines.notices["empty sentence"]``).
    :raises MalformedLineError: naming the file and line for a line that is not ``token<TAB>label``
        (fields separated by spaces rather than a tab, a token/label missing, more than two fields),
        not UTF-8 or holding a NUL byte, an unknown label, or a BIO error (``I-X`` not after
        ``B-X``/``I-X``), unless ``bad_lines`` skips (then the whole sentence is dropped, the line
        counted and the sentence counted in ``bad_lines.dropped_instances``)
    """
    path = Path(path)
    bad_lines = bad_lines if bad_lines is not None else BadLines()
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    image: str | None = None
    start: int | None = None
    image_line: int | None = None
    broken = False

    def flush() -> None:
        nonlocal words, tags, image, start, image_line, broken
        if broken:
            bad_lines.drop_instance()
        elif words:
            sentences.append(Sentence(tuple(words), tuple(tags), image, f"{path}:{start}"))
        elif image_line is not None:
            bad_lines.notice("empty sentence", MalformedLineError(path, image_line, "an IMGID line with no words"))
        words, tags, image, start, image_line, broken = [], [], None, None, None, False

    def bad(error: MalformedLineError) -> None:
        nonlocal broken, start
        broken = True
        start = start if start is not None else error.line
        bad_lines.report(error)

    for number, line in read_lines(path):
        if isinstance(line, MalformedLineError):
            bad(line)
            continue
        if not line.strip():
            flush()
            continue
        if line.startswith(IMAGE_PREFIX):
            flush()
            image_id = line[len(IMAGE_PREFIX) :].strip()
            image, start, image_line = (f"{image_id}.jpg" if image_id else None), number, number
            continue
        start = start if start is not None else number
        if "\t" not in line:
            hint = "; separate token and label with a tab, not spaces" if len(line.split()) == 2 else ""
            bad(MalformedLineError(
                path, number, f"expected 'token<TAB>label', got {len(line.split())} field(s) and no tab{hint}: {line!r}"
            ))
            continue
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) != 2 or not fields[0] or not fields[1]:
            bad(MalformedLineError(
                path, number, f"expected 'token<TAB>label', got {len(fields)} field(s): {line!r}"
            ))
            continue
        word, tag = fields
        problem = _check_tag(tag, tags[-1] if tags else None)
        if problem is not None:
            bad(MalformedLineError(path, number, problem))
        words.append(word)
        tags.append(tag)
    flush()
    return sentences


def read_conll_folder(folder: Path, split: str, *, bad_lines: BadLines | None = None) -> list[Sentence]:
    """The ``split`` (``train``, ``dev``, ``test``) of a Twitter-2015/2017-style folder.

    :raises DataError: naming the split's file when it holds no sentence
    """
    bad_lines = bad_lines if bad_lines is not None else BadLines()
    path = find_split_file(Path(folder), TWITTER_SPLIT_FILES[split])
    skipped_before = len(bad_lines.errors)
    sentences = read_conll(path, bad_lines=bad_lines)
    return require_records(path, sentences, skipped=len(bad_lines.errors) - skipped_before, what="sentences")


@dataclass(frozen=True)
class WordAlignment:
    """Word pieces of a sentence and where each word starts."""

    input_ids: list[int]
    #: index in ``input_ids`` of each word's first piece, for the words that fit ``max_length``
    word_starts: list[int]


def align_words(words: Sequence[str], tokenizer: PreTrainedTokenizerBase, max_length: int) -> WordAlignment:
    """Split words into pieces and find each word's first piece (the one that carries its label).

    A word the tokenizer turns into no piece at all (e.g. a lone zero-width space) is replaced by the
    unknown token, so every word keeps a position. Words beyond ``max_length`` pieces are cut off:
    ``word_starts`` is then shorter than ``words``.
    """
    pieces = tokenizer(list(words), add_special_tokens=False)["input_ids"]
    visible = [word if piece else tokenizer.unk_token for word, piece in zip(words, pieces)]
    encoding = tokenizer(visible, is_split_into_words=True, truncation=True, max_length=max_length)
    starts: list[int] = []
    for position, word in enumerate(encoding.word_ids()):
        if word is not None and word == len(starts):
            starts.append(position)
    return WordAlignment(input_ids=list(encoding["input_ids"]), word_starts=starts)
