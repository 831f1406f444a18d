"""Property-based fuzzing of every reader and of the image decoder (hypothesis strategies and oracles).

Shared by ``tests/test_fuzz.py`` (a few hundred examples per reader, in CI) and
``benchmarks/fuzz_campaign.py`` (the long campaign whose figures go to RESULTS.md).

The property, for every input: the reader returns parsed data, or raises the package's own error
naming the file (:class:`DataError`) or ``file:line`` (:class:`MalformedLineError`), never another
exception; and with skipping on, nothing is lost without a word: every line is accounted for by an
independent oracle (blank / structural, parsed, or reported), and every line the oracle knows to
be undecodable is reported with its number.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from pykeen_mkgformer.data.errors import DataError, ImageError, MalformedLineError
from pykeen_mkgformer.data.textfiles import BadLines

# ---------------------------------------------------------------------------------------------------
# text: strategies
# ---------------------------------------------------------------------------------------------------

#: characters that make parsers stumble
_TRICKY = "\t \r\n\x00\x0b\x0c\x1c\x85\u2028\ufeff\ud800\\\"'{}[]:,#é漢😀"
_field_text = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list(_TRICKY)), max_size=12)
_label = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_characters="\t"), min_size=1, max_size=8)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # lone surrogates become invalid UTF-8 bytes


@st.composite
def _mutated(draw, line: bytes) -> bytes:
    """A line with a few byte-level edits (inserted bytes, deletions, tabs <-> spaces, truncation)."""
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["insert", "delete", "tab-space", "space-tab", "truncate", "dup"]))
        position = draw(st.integers(0, len(line)))
        if kind == "insert":
            line = line[:position] + draw(st.sampled_from([b"\x00", b"\xe9", b"\xff", b"\r", b"\t", b" ", b"\xef\xbb\xbf",
                                                           b"\xc3", b'"', b"}", b"\x1f\x8b"])) + line[position:]
        elif kind == "delete":
            line = line[:position] + line[position + 1 :]
        elif kind == "tab-space":
            line = line.replace(b"\t", b" ", 1)
        elif kind == "space-tab":
            line = line.replace(b" ", b"\t", 1)
        elif kind == "truncate":
            line = line[:position]
        else:
            line = line + line
    return line


def _lines_of(valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """One line: valid, mutated, free text, or raw bytes."""
    return st.one_of(
        valid,
        valid,
        valid.flatmap(_mutated),
        _field_text.map(_encode),
        st.binary(max_size=24).filter(lambda b: b"\n" not in b and b"\r" not in b),
    )


def _triple_line() -> st.SearchStrategy[bytes]:
    fields = st.lists(st.one_of(_label, _field_text), min_size=1, max_size=4)
    return fields.map(lambda parts: _encode("\t".join(parts)))


def _table_line() -> st.SearchStrategy[bytes]:
    return st.tuples(st.sampled_from(["a", "b", "c", "Zoë", " a ", ""]) | _label, _field_text).map(
        lambda kv: _encode(f"{kv[0]}\t{kv[1]}")
    )


@st.composite
def _mnre_record(draw) -> dict:
    tokens = draw(st.lists(_field_text, min_size=0, max_size=6))
    n = len(tokens)

    def span():
        if n and draw(st.booleans()):  # in range
            start = draw(st.integers(0, n - 1))
            return [start, draw(st.integers(start + 1, n))]
        start = draw(st.integers(-1, n + 1))
        return [start, draw(st.integers(start - 1, n + 2))]

    record = {
        "token": tokens,
        "h": {"name": draw(_field_text), "pos": span()},
        "t": {"name": draw(_field_text), "pos": span()},
        "img_id": draw(st.one_of(st.none(), _field_text, st.integers(-3, 3))),
        "relation": draw(st.one_of(st.sampled_from(["None", "/per/per/peer"]), _field_text, st.integers())),
    }
    for key in draw(st.sets(st.sampled_from(list(record)), max_size=2)):  # sometimes a field is missing
        del record[key]
    return record


def _mnre_line(literal: bool) -> st.SearchStrategy[bytes]:
    def dump(record: dict) -> bytes:
        if literal:
            return _encode(repr(record))
        return _encode(json.dumps(record, ensure_ascii=False))

    return _mnre_record().map(dump)


def _conll_line() -> st.SearchStrategy[bytes]:
    tag = st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "X-ORG", "B-", ""])
    word = st.tuples(st.one_of(_label, _field_text), tag).map(lambda wt: _encode(f"{wt[0]}\t{wt[1]}"))
    return st.one_of(word, word, word, st.just(b""), st.integers(0, 99).map(lambda i: f"IMGID:{i}".encode()),
                     st.just(b"IMGID:"), st.just(b"word O"))


@dataclasses.dataclass(frozen=True)
class FuzzedReader:
    """A reader under fuzzing: its file name, line strategy and ``read(path, bad_lines)``."""

    name: str
    file_name: str
    line: Callable[[], st.SearchStrategy[bytes]]
    read: Callable
    conll: bool = False


def _read_triples(path, bad_lines):
    from pykeen_mkgformer.data.readers import read_triples

    return list(read_triples(path, bad_lines=bad_lines))


def _read_table(path, bad_lines):
    from pykeen_mkgformer.data.readers import read_text_table

    return list(read_text_table(path, bad_lines=bad_lines))


def _read_mnre(path, bad_lines):
    from pykeen_mkgformer.re import read_mnre

    return read_mnre(path, bad_lines=bad_lines)


def _read_conll(path, bad_lines):
    from pykeen_mkgformer.ner import read_conll

    return read_conll(path, bad_lines=bad_lines)


FUZZED_READERS: dict[str, FuzzedReader] = {
    reader.name: reader
    for reader in (
        FuzzedReader("LP triples", "train.tsv", _triple_line, _read_triples),
        FuzzedReader("LP entity2text", "entity2text.tsv", _table_line, _read_table),
        FuzzedReader("MNRE JSONL", "train.jsonl", lambda: _mnre_line(False), _read_mnre),
        FuzzedReader("MNRE dict literals", "mnre_train.txt", lambda: _mnre_line(True), _read_mnre),
        FuzzedReader("CoNLL", "train.txt", _conll_line, _read_conll, conll=True),
    )
}


@dataclasses.dataclass(frozen=True)
class TextInput:
    """A generated file: its bytes, and how they were made."""

    data: bytes
    #: the uncompressed bytes (None when the gzip stream was damaged on purpose)
    plain: bytes | None


@st.composite
def text_files(draw, reader: FuzzedReader) -> TextInput:
    """Lines joined with random newlines, sometimes with a BOM, sometimes gzip'd (whole or truncated)."""
    lines = draw(st.lists(_lines_of(reader.line()), max_size=14))
    newline = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    plain = newline.join(lines) + (newline if lines and draw(st.booleans()) else b"")
    if draw(st.integers(0, 9)) == 0:
        plain = b"\xef\xbb\xbf" + plain
    packing = draw(st.sampled_from(["plain"] * 6 + ["gzip", "gzip", "truncated gzip"]))
    if packing == "plain":
        return TextInput(plain, plain)
    packed = gzip.compress(plain, mtime=0)
    if packing == "gzip":
        return TextInput(packed, plain)
    return TextInput(packed[: draw(st.integers(0, len(packed) - 1))], None)


# ---------------------------------------------------------------------------------------------------
# text: the oracle
# ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class OracleLine:
    number: int
    text: str | None  # None: undecodable or NUL (must be reported)

    @property
    def blank(self) -> bool:
        return self.text is not None and not self.text.strip()


def oracle_lines(plain: bytes) -> list[OracleLine]:
    """The file's lines as the format defines them (BOM dropped; ``\\r\\n``, ``\\r``, ``\\n`` end a line)."""
    if plain.startswith(b"\xef\xbb\xbf"):
        plain = plain[3:]
    if not plain:
        return []
    pieces = re.split(rb"\r\n|\r|\n", plain)
    if re.search(rb"(\r\n|\r|\n)$", plain):
        pieces = pieces[:-1]
    lines = []
    for number, piece in enumerate(pieces, start=1):
        try:
            text = None if b"\x00" in piece else piece.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        lines.append(OracleLine(number, text))
    return lines


class FuzzFailure(AssertionError):
    """A property of the readers or the decoder does not hold."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise FuzzFailure(message)


def check_text(reader: FuzzedReader, file: TextInput) -> str:
    """Run the property on one generated file; return the outcome's kind (for the campaign's counts).

    :raises FuzzFailure: when the property does not hold (an exception of another type escapes too)
    """
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / reader.file_name
        path.write_bytes(file.data)
        return _check_text(reader, file, path)


def _file_level_problem(file: TextInput) -> bool:
    """Whether the file as a whole is unreadable: a damaged gzip stream, UTF-16, or plain bytes that
    start with the gzip magic (read as gzip, then found corrupt; such bytes are no UTF-8 text anyway)."""
    if file.plain is None or file.plain.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    return file.data == file.plain and file.data.startswith(b"\x1f\x8b")


def _check_text(reader: FuzzedReader, file: TextInput, path: Path) -> str:
    first_error: MalformedLineError | None = None
    try:
        strict = reader.read(path, BadLines())
    except MalformedLineError as error:
        _expect(error.path == str(path) and error.line is not None and error.line >= 1, f"bad location {error!r}")
        first_error = error
        strict = None
    except DataError as error:
        _expect(type(error) is DataError and error.path == str(path), f"file error names {error.path!r}")
        _expect(_file_level_problem(file), f"file-level error on a file that is fine as a whole: {error}")
        return "error"
    bad = BadLines(skip=True)
    try:
        records = reader.read(path, bad)
    except MalformedLineError as error:
        raise FuzzFailure(f"a line error escaped while skipping: {error}") from error
    except DataError as error:
        _expect(_file_level_problem(file), f"file-level error only while skipping: {error}")
        return "error"
    if first_error is not None:
        _expect(bool(bad.errors) and bad.errors[0].line == first_error.line,
                f"strict stopped at line {first_error.line}, skipping reported {[e.line for e in bad.errors]}")
    else:
        _expect(not bad.errors and len(records) == len(strict), "strict and skipping runs disagree")
    if file.plain is None:  # truncated gzip that happened to end at a member boundary: nothing to compare
        return "named skip" if bad.errors else "handled"
    lines = oracle_lines(file.plain)
    reported = [error.line for error in bad.errors]
    _expect(len(set(reported)) == len(reported), f"a line reported twice: {reported}")
    for line in lines:
        if line.text is None:
            _expect(line.number in reported, f"undecodable line {line.number} not reported (reported: {reported})")
    _expect(all(1 <= n <= len(lines) for n in reported), f"reported line numbers {reported} beyond {len(lines)} lines")
    if reader.conll:
        _account_conll(lines, records, bad, path)
    else:
        _account_lines(reader, lines, records, bad)
    return "named skip" if bad.errors else "handled"


def _account_lines(reader: FuzzedReader, lines: list[OracleLine], records: list, bad: BadLines) -> None:
    """One record per line: every non-blank line is parsed or reported, never both, never neither."""
    content = [line.number for line in lines if not line.blank]
    reported = {error.line for error in bad.errors}
    _expect(len(records) + len(reported) == len(content),
            f"{len(content)} non-blank lines, {len(records)} parsed + {len(reported)} reported")
    if reader.name.startswith("MNRE"):
        parsed = {int(record.source.rsplit(":", 1)[1]) for record in records}
        _expect(parsed.isdisjoint(reported) and parsed | reported == set(content), "parsed/reported lines do not partition")


def _account_conll(lines: list[OracleLine], sentences: list, bad: BadLines, path: Path) -> None:
    """Blocks (an IMGID line and/or word lines up to a blank or IMGID line): parsed, dropped or noticed."""
    blocks: list[tuple[int | None, list[int]]] = []
    current: tuple[int | None, list[int]] | None = None
    for line in lines:
        if line.blank:
            current = None
            continue
        if line.text is not None and line.text.startswith("IMGID:"):
            current = (line.number, [])
            blocks.append(current)
            continue
        if current is None:
            current = (None, [])
            blocks.append(current)
        current[1].append(line.number)
    with_words = [block for block in blocks if block[1]]
    empty = [block[0] for block in blocks if not block[1]]
    _expect(len(sentences) + bad.dropped_instances == len(with_words),
            f"{len(with_words)} sentences in the file, {len(sentences)} parsed + {bad.dropped_instances} dropped")
    noticed = [error.line for error in bad.notices.get("empty sentence", [])]
    _expect(noticed == empty, f"empty sentences at {empty}, noticed {noticed}")
    starts = {(block[0] if block[0] is not None else block[1][0]): block for block in with_words}
    reported = {error.line for error in bad.errors}
    for sentence in sentences:
        start = int(sentence.source.rsplit(":", 1)[1])
        _expect(start in starts, f"a sentence starts at line {start}, which starts no block")
        words = starts[start][1]
        _expect(len(sentence.words) == len(words) and not reported & set(words),
                f"sentence at {start}: {len(sentence.words)} words from {len(words)} lines")


# ---------------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------------

#: (format, modes it can store)
IMAGE_FORMATS: dict[str, tuple[str, ...]] = {
    "PNG": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"),
    "JPEG": ("L", "RGB", "CMYK"),
    "GIF": ("L", "P"),
    "BMP": ("1", "L", "P", "RGB"),
    "TIFF": ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I;16B", "I", "F", "LAB"),
    "WEBP": ("RGB", "RGBA"),
    "PPM": ("1", "L", "RGB", "I;16"),
    "TGA": ("L", "LA", "P", "RGB", "RGBA"),
    "ICO": ("RGBA",),
}


def _image(mode: str, width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode in {"I;16", "I;16B"}:
        return Image.frombytes(mode, (width, height), rng.integers(0, 65535, (height, width)).astype(
            "<u2" if mode == "I;16" else ">u2").tobytes())
    if mode == "I":
        return Image.frombytes("I", (width, height), rng.integers(0, 65535, (height, width)).astype("<i4").tobytes())
    if mode == "F":
        return Image.frombytes("F", (width, height), rng.random((height, width)).astype("<f4").tobytes())
    rgba = Image.fromarray(rng.integers(0, 255, (height, width, 4), dtype=np.uint8), "RGBA")
    if mode == "P":
        return rgba.convert("RGB").convert("P")
    return rgba.convert(mode) if mode not in {"LAB", "CMYK"} else rgba.convert("RGB").convert(mode)


@dataclasses.dataclass(frozen=True)
class ImageInput:
    data: bytes
    #: the size when the file is an intact encoding; None after a mutation
    size: tuple[int, int] | None
    description: str


@st.composite
def image_files(draw) -> ImageInput:
    """A real image (random format, mode, size, pixels), intact or damaged; or random bytes."""
    if draw(st.integers(0, 19)) == 0:
        return ImageInput(draw(st.binary(max_size=300)), None, "random bytes")
    fmt = draw(st.sampled_from(sorted(IMAGE_FORMATS)))
    mode = draw(st.sampled_from(IMAGE_FORMATS[fmt]))
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    if fmt == "ICO":
        width = height = draw(st.sampled_from([16, 32]))
    image = _image(mode, width, height, draw(st.integers(0, 2**16)))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    data = buffer.getvalue()
    what = f"{fmt} {mode} {width}x{height}"
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip", "garbage body", "append", "zero body"]))
    if damage == "none":
        return ImageInput(data, (width, height), what)
    position = draw(st.integers(0, max(len(data) - 1, 0)))
    if damage == "truncate":
        data = data[:position]
    elif damage == "flip":
        changed = bytearray(data)
        for index in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            changed[index] ^= draw(st.integers(1, 255))
        data = bytes(changed)
    elif damage == "garbage body":
        data = data[: min(position, 64)] + draw(st.binary(min_size=1, max_size=400))
    elif damage == "append":
        data = data + draw(st.binary(min_size=1, max_size=200))
    else:
        data = data[: min(position, 64)] + bytes(len(data) - min(position, 64))
    return ImageInput(data, None, f"{what}, {damage} at {position}")


def check_image(file: ImageInput, processor) -> str:
    """The decoder returns an RGB image the processor takes (of the encoded size when intact), or an
    :class:`ImageError` naming the file; return ``"handled"`` or ``"named skip"``."""
    from pykeen_mkgformer.data.decoding import file_digest, load_rgb

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image.jpg"
        path.write_bytes(file.data)
        digest = file_digest(path)
        _expect(len(digest) == 64, f"digest {digest!r}")
        try:
            image = load_rgb(path)
        except ImageError as error:
            _expect(error.path == str(path), f"names {error.path!r}")
            _expect(file.size is None, f"an intact {file.description} was refused: {error.reason}")
            return "named skip"
    _expect(image.mode == "RGB" and image.width >= 1 and image.height >= 1, f"decoded {image.mode} {image.size}")
    if file.size is not None:
        _expect(image.size == file.size, f"{file.description} decoded as {image.size}")
    pixels = processor(images=image, return_tensors="np")["pixel_values"]
    _expect(pixels.shape[1:] == (3, 32, 32), f"processor output {pixels.shape}")
    return "handled"
