"""Property-based fuzzing of every reader and of the image decoder (hypothesis strategies and oracles).

Shared by ``tests/reliability/test_fuzz.py`` (a few hundred examples per reader, in CI) and
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
from text_readers import TEXT_READERS, TextReader

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


@dataclasses.dataclass(frozen=True, kw_only=True)
class FuzzedReader(TextReader):
    """A text reader of the package (from ``text_readers.py``) and the strategy of its lines."""

    line: Callable[[], st.SearchStrategy[bytes]]


#: the line strategy per reader of ``TEXT_READERS``
_LINES = {
    "LP triples": _triple_line,
    "LP entity2text": _table_line,
    "MNRE JSONL": lambda: _mnre_line(False),
    "MNRE dict literals": lambda: _mnre_line(True),
    "CoNLL": _conll_line,
}

FUZZED_READERS: dict[str, FuzzedReader] = {
    name: reader.extended(FuzzedReader, line=_LINES[name]) for name, reader in TEXT_READERS.items()
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


# ---------------------------------------------------------------------------------------------------
# label maps: any label round-trips through a saved folder, or is refused by name (issue 22)
# ---------------------------------------------------------------------------------------------------

#: characters that broke or could break label storage: TSV separators, line ends, JSON/HTML specials
_LABEL_TRICKY = "\t\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\ufeff\x00\x1b\\\"'<>&/ é漢😀"
label_text = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list(_LABEL_TRICKY)), min_size=1, max_size=10)
#: lone surrogates: what Python holds for undecodable bytes; labels with one must be refused
label_with_surrogate = st.tuples(label_text, st.integers(0xD800, 0xDFFF)).map(lambda t: t[0] + chr(t[1]))


@dataclasses.dataclass(frozen=True)
class LabelMap:
    """A small graph over generated labels: triples, texts and a flag for a surrogate in a label."""

    entities: tuple[str, ...]
    relations: tuple[str, ...]
    triples: tuple[tuple[int, int, int], ...]
    descriptions: tuple[str, ...]
    has_surrogate: bool


@st.composite
def label_maps(draw, *, max_entities: int = 8, surrogates: bool = True) -> LabelMap:
    """Distinct entity / relation labels (any text, sometimes a lone surrogate) and a few triples over them."""
    bad = surrogates and draw(st.integers(0, 4)) == 0
    entities = draw(st.lists(label_text, min_size=2, max_size=max_entities, unique=True))
    relations = draw(st.lists(label_text, min_size=1, max_size=3, unique=True))
    if bad:
        entities[draw(st.integers(0, len(entities) - 1))] = draw(label_with_surrogate)
        entities = list(dict.fromkeys(entities))
    n, m = len(entities), len(relations)
    triples = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, m - 1), st.integers(0, n - 1)), min_size=1, max_size=12))
    descriptions = tuple(draw(st.lists(label_text | st.just(""), min_size=n, max_size=n)))
    return LabelMap(tuple(entities), tuple(relations), tuple(triples), descriptions, bad)


def label_factory(labels: LabelMap):
    """The :class:`MultimodalTriplesFactory` of a generated label map (labels as given, no normalisation)."""
    import torch

    from pykeen_mkgformer.data import MultimodalTriplesFactory

    return MultimodalTriplesFactory(
        mapped_triples=torch.as_tensor(sorted(set(labels.triples)), dtype=torch.long).view(-1, 3),
        entity_to_id={label: i for i, label in enumerate(labels.entities)},
        relation_to_id={label: i for i, label in enumerate(labels.relations)},
        create_inverse_triples=True,
        entity_descriptions=list(labels.descriptions),
        relation_texts=[f"text of {label}" for label in labels.relations],
    )


def check_factory_round_trip(labels: LabelMap) -> None:
    """``to_path_binary`` -> ``from_path_binary`` gives the same labels, texts and triples, with no pickle read."""
    import torch

    from pykeen_mkgformer.data import MultimodalTriplesFactory

    factory = label_factory(labels)
    with tempfile.TemporaryDirectory() as folder:
        path = factory.to_path_binary(Path(folder) / "factory")
        (path / "base.pth").unlink()  # the JSON copy must be enough
        again = MultimodalTriplesFactory.from_path_binary(path)
    _expect(again.entity_to_id == factory.entity_to_id, f"entity labels changed: {factory.entity_to_id} -> {again.entity_to_id}")
    _expect(again.relation_to_id == factory.relation_to_id, "relation labels changed")
    _expect(again.entity_descriptions == factory.entity_descriptions, "descriptions changed")
    _expect(torch.equal(again.mapped_triples, factory.mapped_triples), "triples changed")


def check_model_round_trip(labels: LabelMap, model_factory: Callable) -> None:
    """Save -> load of a model over the label map: the same labels and the same scores, or (a label
    with a lone surrogate) a ValueError naming it as soon as the labels become a factory."""
    import torch

    from pykeen_mkgformer.kgc.saved_model import load_model, save_model

    if labels.has_surrogate:  # refused up front, when the labels become a factory, naming the label
        try:
            label_factory(labels)
        except ValueError as error:
            _expect("cannot be stored" in str(error) and "\\ud" in str(error), f"unexpected error {error}")
            return
        raise FuzzFailure("a label with a lone surrogate was accepted")
    factory = label_factory(labels)
    model = model_factory(factory)
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "saved"
        save_model(model, target)
        loaded = load_model(target)
    _expect(loaded.label_factory.entity_to_id == factory.entity_to_id, "entity labels changed")
    _expect(loaded.label_factory.relation_to_id == factory.relation_to_id, "relation labels changed")
    queries = torch.tensor([[e, r] for e in range(factory.num_entities) for r in range(factory.real_num_relations)])
    with torch.no_grad():
        _expect(torch.equal(loaded.predict_t(queries), model.predict_t(queries)), "scores changed")


# ---------------------------------------------------------------------------------------------------
# --add-entities files: parsed entities or a NewEntityError naming file:line
# ---------------------------------------------------------------------------------------------------


@st.composite
def _entity_record(draw) -> object:
    record = {
        "label": draw(st.one_of(label_text, label_text, label_with_surrogate, st.integers(), st.none(), st.just(""))),
        "description": draw(st.one_of(label_text, st.just(""), st.integers(), st.lists(label_text, max_size=2))),
        "images": draw(st.one_of(st.none(), label_text, st.lists(label_text | st.integers(), max_size=3))),
        "name": draw(st.one_of(st.none(), label_text, st.integers())),
    }
    for key in draw(st.sets(st.sampled_from(list(record)), max_size=2)):
        del record[key]
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([[record], "text", 3, None]))
    return record


def _entity_line() -> st.SearchStrategy[bytes]:
    def dump(record: object) -> bytes:
        return json.dumps(record, ensure_ascii=True).encode("ascii")

    deep = st.integers(1, 4000).map(lambda depth: b"[" * depth + b"]" * depth)
    nested = st.integers(100_000, 200_000).map(lambda depth: b'{"label": ' + b"[" * depth + b"]" * depth + b"}")
    return st.one_of(_entity_record().map(dump), _entity_record().map(dump), deep, nested, _field_text.map(_encode),
                     _entity_record().map(dump).flatmap(_mutated))


@st.composite
def new_entity_files(draw) -> bytes:
    """JSON Lines of new entities: valid, mistyped, nested deeply, damaged."""
    lines = draw(st.lists(_entity_line(), max_size=8))
    return b"\n".join(lines) + (b"\n" if lines and draw(st.booleans()) else b"")


def check_new_entities(data: bytes) -> str:
    """The reader returns entities (each label a non-empty string without a lone surrogate, no two equal
    after normalisation) or raises :class:`NewEntityError` naming the file (and ``file:line`` for a line)."""
    from pykeen_mkgformer.data.labels import label_key
    from pykeen_mkgformer.kgc.new_entities import NewEntityError, read_new_entities

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "new.jsonl"
        path.write_bytes(data)
        try:
            entities = read_new_entities(path)
        except NewEntityError as error:
            _expect(str(error).startswith(str(path)), f"the error does not name the file: {error}")
            return "error"
        except Exception as error:  # noqa: BLE001 - the property: nothing else escapes
            raise FuzzFailure(f"{type(error).__name__} escaped the reader: {error!r}"[:500]) from error
    labels = entities["labels"]
    _expect(len(labels) == len(entities["descriptions"]) == len(entities["images"]) == len(entities["names"]), "ragged lists")
    _expect(all(isinstance(label, str) and label.strip() for label in labels), "an empty or non-string label")
    _expect(not any(re.search("[\ud800-\udfff]", label) for label in labels), "a label with a lone surrogate")
    _expect(len({label_key(label) for label in labels}) == len(labels), "labels equal after normalisation")
    _expect(all(isinstance(p, str) for paths in entities["images"] for p in paths), "a non-string image path")
    return "parsed"
