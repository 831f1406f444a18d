"""Hostile input files, one per class, and what each reader must make of them.

Used by ``tests/reliability/test_gauntlet.py`` (every class through every reader, and every image class
through the link-prediction and the RE/NER image paths) and by ``benchmarks/fuzz_campaign.py``,
which runs the same cases to write the table "input class -> behaviour" of RESULTS.md.

Outcomes:

- ``handled``: the input is read (possibly as nothing, e.g. an empty text table), no error;
- ``named skip``: the reader raises :class:`MalformedLineError` naming ``file:line`` by default, and
  with ``--skip-bad-lines`` skips the line, counts it and reads the rest (for images: the file is
  skipped with one warning naming it and a reason, counted in ``skipped``);
- ``error``: the package's :class:`DataError` naming the file (a file-level problem: nothing to skip).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from text_readers import TEXT_READERS, TextReader

# ---------------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ImageCase:
    """One class of image file: how to write it, and what the decoder must do with it."""

    name: str
    #: writes the file (or link, folder...) into the folder under ``file_name``
    make: Callable[[Path], None]
    file_name: str
    #: ``"handled"`` or ``"named skip"``
    expect: str
    #: a part of the skip reason (named skips), or what the decoded image must be (handled)
    detail: str
    #: for handled cases: the expected decoded size and pixel (0, 0), when known
    size: tuple[int, int] | None = None
    pixel: tuple[int, int, int] | None = None


def _encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny valid-looking PNG whose header claims ``width x height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _write(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _save(image_factory: Callable[[], Image.Image], fmt: str, **kwargs) -> Callable[[Path], None]:
    return lambda path: image_factory().save(path, fmt, **kwargs)


def _jpeg() -> bytes:
    return _encoded(Image.new("RGB", (64, 48), (200, 30, 40)), "JPEG", quality=90)


def _png() -> bytes:
    return _encoded(Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)), "PNG")


def _animated_gif(path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), colour).convert("P") for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def _multipage_tiff(path: Path) -> None:
    Image.new("RGB", (8, 8), (0, 255, 0)).save(path, "TIFF", save_all=True, append_images=[Image.new("RGB", (8, 8), (9, 9, 9))])


def _palette_with_transparency(path: Path) -> None:
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    image.save(path, "PNG", transparency=1)


def _grey_with_transparency_key(path: Path) -> None:
    Image.new("L", (8, 8), 77).save(path, "PNG", transparency=77)


def _symlink(target: str) -> Callable[[Path], None]:
    return lambda path: os.symlink(target, path)


def _fifo(path: Path) -> None:
    fifo = path.with_name(path.name + ".fifo")
    os.mkfifo(fifo)
    os.symlink(fifo.name, path)


def _sparse(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with path.open("wb") as file:
            file.write(b"\xff\xd8\xff")
            file.truncate(size)

    return make


def _exif_rotated(path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.new("RGB", (30, 10), (10, 200, 10)).save(path, "JPEG", exif=exif, quality=95)


def _sixteen_bit_tiff_big_endian(path: Path) -> None:
    Image.frombytes("I;16B", (6, 6), np.full((6, 6), 65535, dtype=">u2").tobytes()).save(path, "TIFF")


def _float_tiff(path: Path) -> None:
    Image.frombytes("F", (6, 6), np.full((6, 6), 0.5, dtype="<f4").tobytes()).save(path, "TIFF")


def _int32_tiff(path: Path) -> None:
    Image.frombytes("I", (6, 6), np.full((6, 6), 65535, dtype="<i4").tobytes()).save(path, "TIFF")


IMAGE_CASES: list[ImageCase] = [
    ImageCase("zero-byte file", _write(b""), "empty.jpg", "named skip", "empty file"),
    ImageCase("truncated JPEG", _write(_jpeg()[: len(_jpeg()) // 2]), "truncated.jpg", "named skip", "truncated"),
    ImageCase("truncated PNG (cut inside the pixel data)", _write(_png()[: len(_png()) // 2]), "truncated.png", "named skip",
              "truncated"),
    ImageCase("valid JPEG header + garbage body", _write(_jpeg()[:200] + bytes(range(256)) * 8), "garbage.jpg", "named skip",
              "image"),
    ImageCase("valid PNG header + garbage body", _write(_png()[:33] + bytes(range(256)) * 4), "garbage.png", "named skip",
              "image"),
    ImageCase("decompression bomb (PNG claiming 100,000 x 100,000 px)", _write(png_claiming(100_000, 100_000)),
              "bomb.png", "named skip", "decompression bomb"),
    ImageCase("decompression bomb between MAX_IMAGE_PIXELS and twice that (Pillow only warns)",
              _write(png_claiming(13_400, 10_000)), "bomb_warn.png", "named skip", "decompression bomb"),
    ImageCase("huge but legal (3,000 x 2,000 px PNG)", _save(lambda: Image.new("RGB", (3000, 2000), (1, 2, 3)), "PNG"),
              "huge.png", "handled", "decoded", (3000, 2000), (1, 2, 3)),
    ImageCase("extreme aspect ratio (1 x 5,000 px)", _save(lambda: Image.new("L", (1, 5000), 9), "PNG"), "thin.png",
              "named skip", "aspect ratio"),
    ImageCase("file over 256 MiB (sparse)", _sparse(300 * 2**20), "large.jpg", "named skip", "file too large"),
    ImageCase("mode 1 (bilevel)", _save(lambda: Image.new("1", (6, 6), 1), "PNG"), "m1.png", "handled", "white", (6, 6),
              (255, 255, 255)),
    ImageCase("mode L", _save(lambda: Image.new("L", (6, 6), 100), "PNG"), "mL.png", "handled", "grey", (6, 6), (100, 100, 100)),
    ImageCase("mode LA, fully transparent", _save(lambda: Image.new("LA", (6, 6), (10, 0)), "PNG"), "mLA.png", "handled",
              "on white", (6, 6), (255, 255, 255)),
    ImageCase("mode P", _save(lambda: Image.new("RGB", (6, 6), (0, 0, 255)).convert("P"), "PNG"), "mP.png", "handled",
              "palette", (6, 6), (0, 0, 255)),
    ImageCase("mode P with a transparent index", _palette_with_transparency, "mPt.png", "handled", "on white", (8, 8),
              (255, 255, 255)),
    ImageCase("mode L with a transparency key (tRNS)", _grey_with_transparency_key, "mLt.png", "handled", "on white",
              (8, 8), (255, 255, 255)),
    ImageCase("mode RGBA, half transparent", _save(lambda: Image.new("RGBA", (6, 6), (0, 0, 0, 128)), "PNG"), "mRGBA.png",
              "handled", "composed on white", (6, 6), (127, 127, 127)),
    ImageCase("mode CMYK (JPEG)", _save(lambda: Image.new("CMYK", (6, 6), (0, 0, 0, 0)), "JPEG", quality=100), "mCMYK.jpg",
              "handled", "white", (6, 6), (255, 255, 255)),
    ImageCase("mode YCbCr (JPEG)", _save(lambda: Image.new("YCbCr", (6, 6), (255, 128, 128)), "JPEG", quality=100),
              "mYCbCr.jpg", "handled", "white", (6, 6), (255, 255, 255)),
    ImageCase("mode I;16 (16-bit PNG), white", _save(lambda: Image.fromarray(np.full((6, 6), 65535, dtype=np.uint16)), "PNG"),
              "m16.png", "handled", "white stays white", (6, 6), (255, 255, 255)),
    ImageCase("mode I;16B (big-endian 16-bit TIFF), white", _sixteen_bit_tiff_big_endian, "m16B.tiff", "handled",
              "white stays white", (6, 6), (255, 255, 255)),
    ImageCase("mode I (32-bit integer TIFF)", _int32_tiff, "mI.tiff", "handled", "16-bit range scaled", (6, 6),
              (255, 255, 255)),
    ImageCase("mode F (float TIFF, 0.5)", _float_tiff, "mF.tiff", "handled", "[0, 1] scaled", (6, 6), (128, 128, 128)),
    ImageCase("mode LAB (TIFF)", _save(lambda: Image.new("LAB", (6, 6), (100, 128, 128)), "TIFF"), "mLAB.tiff", "handled",
              "converted", (6, 6), None),
    ImageCase("animated GIF (first frame)", _animated_gif, "anim.gif", "handled", "first frame", (8, 8), (255, 0, 0)),
    ImageCase("multi-page TIFF (first page)", _multipage_tiff, "pages.tiff", "handled", "first page", (8, 8), (0, 255, 0)),
    ImageCase("EXIF orientation 8 (JPEG)", _exif_rotated, "rotated.jpg", "handled", "upright", (10, 30), None),
    ImageCase("SVG named .jpg", _write(b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'), "vector.jpg",
              "named skip", "not a readable image"),
    ImageCase("HEIC (no Pillow plugin)", _write(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(200)), "photo.heic.jpg",
              "named skip", "not a readable image"),
    ImageCase("EPS (never handed to Ghostscript)", _write(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n" + b"%\n" * 20),
              "figure.eps.jpg", "named skip", "not a readable image"),
    ImageCase("text file named .jpg", _write(b"this is not an image\n" * 20), "notes.jpg", "named skip", "not a readable image"),
    ImageCase("directory named .jpg", lambda path: path.mkdir(), "folder.jpg", "named skip", "a directory"),
    ImageCase("symlink loop", _symlink("loop.jpg"), "loop.jpg", "named skip", "symlink loop"),
    ImageCase("dangling symlink", _symlink("nowhere.jpg"), "dangling.jpg", "named skip", "dangling symlink"),
    ImageCase("symlink to /dev/zero", _symlink("/dev/zero"), "zero.jpg", "named skip", "character device"),
    ImageCase("symlink to a FIFO (never opened, never blocks)", _fifo, "pipe.jpg", "named skip", "FIFO"),
    ImageCase("non-UTF-8 file name", _save(lambda: Image.new("RGB", (5, 5), (4, 5, 6)), "PNG"),
              os.fsdecode(b"caf\xe9.png"), "handled", "decoded", (5, 5), (4, 5, 6)),
    ImageCase("odd file name (spaces, newline, leading dash, quotes)", _save(lambda: Image.new("RGB", (5, 5), (7, 8, 9)), "PNG"),
              "-odd name\n'quoted\".png", "handled", "decoded", (5, 5), (7, 8, 9)),
]


def make_image_case(case: ImageCase, folder: Path) -> Path:
    """Write the case's file into ``folder``; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / case.file_name
    case.make(path)
    return path


# ---------------------------------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reader(TextReader):
    """A text reader of the package (from ``text_readers.py``), valid content, and its record count."""

    #: valid lines (no newline), without trailing blank line
    lines: tuple[str, ...]
    #: records read from the valid lines
    records: int

    def structural(self, line: str) -> bool:
        """Whether the line is part of the format's structure (CoNLL's ``IMGID`` and blank lines)."""
        return self.conll and (not line.strip() or line.startswith("IMGID:"))


MNRE_RECORDS = [
    {"token": ["Ann", "lives", "in", "Rome"], "h": {"name": "Ann", "pos": [0, 1]}, "t": {"name": "Rome", "pos": [3, 4]},
     "img_id": "a.jpg", "relation": "/per/loc/place_of_residence"},
    {"token": ["Bo", "met", "Cy", "."], "h": {"name": "Bo", "pos": [0, 1]}, "t": {"name": "Cy", "pos": [2, 3]},
     "img_id": "b.jpg", "relation": "/per/per/peer"},
    {"token": ["Zoë", "visits", "Malmö"], "h": {"name": "Zoë", "pos": [0, 1]}, "t": {"name": "Malmö", "pos": [2, 3]},
     "img_id": "c.jpg", "relation": "None"},
]

#: valid lines and their record count, per reader of ``TEXT_READERS``
_VALID = {
    "LP triples": (("a\tr\tb", "b\tr\tc", "Zoë\tr\tMalmö"), 3),
    "LP entity2text": (("a\talpha, the first", "b\t", "Zoë\tMalmö, a city"), 3),
    "MNRE JSONL": (tuple(json.dumps(r, ensure_ascii=False) for r in MNRE_RECORDS), 3),
    "MNRE dict literals": (tuple(repr(r) for r in MNRE_RECORDS), 3),
    "CoNLL": (("IMGID:1", "Ann\tB-PER", "in\tO", "Rome\tB-LOC", "", "IMGID:2", "Zoë\tB-PER", "", "IMGID:3", "Malmö\tB-LOC"), 3),
}

READERS: dict[str, Reader] = {
    name: reader.extended(Reader, lines=_VALID[name][0], records=_VALID[name][1]) for name, reader in TEXT_READERS.items()
}


def _joined(reader: Reader, newline: str = "\n", final: bool = True) -> bytes:
    return (newline.join(reader.lines) + (newline if final else "")).encode("utf-8")


def _corrupt_line(reader: Reader, index: int, replace: Callable[[bytes], bytes]) -> bytes:
    lines = [line.encode("utf-8") for line in reader.lines]
    lines[index] = replace(lines[index])
    return b"\n".join(lines) + b"\n"


def _a_record_line(reader: Reader) -> int:
    """The index of the first line that holds a record (not structure)."""
    return next(i for i, line in enumerate(reader.lines) if not reader.structural(line))


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _truncated_gzip(data: bytes) -> bytes:
    whole = _gzip(data * 50)
    return whole[: len(whole) // 2]


def _bad_crc_gzip(data: bytes) -> bytes:
    whole = bytearray(_gzip(data))
    whole[-8] ^= 0xFF  # the CRC-32 of the trailer
    return bytes(whole)


def _spaces_for_tabs(reader: Reader) -> bytes:
    return _corrupt_line(reader, _a_record_line(reader), lambda line: line.replace(b"\t", b" "))


@dataclasses.dataclass(frozen=True)
class TextCase:
    """One class of damaged text input: the bytes to write (from a reader's valid content)."""

    name: str
    content: Callable[[Reader], bytes]
    #: written under this name instead of the reader's (e.g. a ``.gz`` suffix)
    suffix: str = ""
    #: when not bytes: make the path into something that is not a regular file
    make: Callable[[Path], None] | None = None


TEXT_CASES: list[TextCase] = [
    TextCase("valid file", _joined),
    TextCase("non-UTF-8 byte in a line (Latin-1)", lambda r: _corrupt_line(r, _a_record_line(r), lambda line: line + b"\xe9")),
    TextCase("UTF-8 byte-order mark", lambda r: b"\xef\xbb\xbf" + _joined(r)),
    TextCase("CRLF line ends", lambda r: _joined(r, "\r\n")),
    TextCase("lone CR line ends (old Mac)", lambda r: _joined(r, "\r")),
    TextCase("NUL byte in a line", lambda r: _corrupt_line(r, _a_record_line(r), lambda line: line[:2] + b"\x00" + line[2:])),
    TextCase("UTF-16 file (with BOM)", lambda r: _joined(r).decode("utf-8").encode("utf-16")),
    TextCase("empty file", lambda r: b""),
    TextCase("whitespace-only file", lambda r: b" \n\t\n\r\n  \n"),
    TextCase("missing trailing newline", lambda r: _joined(r, final=False)),
    TextCase("extremely long line (0.8 to 2 MB)", lambda r: _joined(r) + _long_line(r)),
    TextCase("line over the 64 MiB limit", lambda r: _joined(r) + b"x" * (_max_line_bytes() + 10) + b"\n" + _joined(r)),
    TextCase("gzip-compressed (.gz)", lambda r: _gzip(_joined(r)), suffix=".gz"),
    TextCase("gzip content without .gz name", lambda r: _gzip(_joined(r))),
    TextCase(".gz name, plain content", _joined, suffix=".gz"),
    TextCase("truncated gzip", lambda r: _truncated_gzip(_joined(r)), suffix=".gz"),
    TextCase("corrupt gzip (bad CRC)", lambda r: _bad_crc_gzip(_joined(r)), suffix=".gz"),
    TextCase("not gzip at all, named .gz, binary", lambda r: b"\x1f\x8b" + bytes(range(256)), suffix=".gz"),
    TextCase("duplicated record line", lambda r: _joined(r) + (r.lines[_a_record_line(r)] + "\n").encode("utf-8")),
    TextCase("spaces instead of tabs in a line", _spaces_for_tabs),
    TextCase("random binary garbage line", lambda r: _joined(r) + bytes(range(1, 256)) + b"\n"),
    TextCase("directory where the file should be", lambda r: b"", make=lambda path: path.mkdir()),
    TextCase("symlink loop where the file should be", lambda r: b"", make=lambda path: os.symlink(path.name, path)),
    TextCase("FIFO where the file should be", lambda r: b"", make=lambda path: os.mkfifo(path)),
    TextCase("symlink to /dev/zero where the file should be", lambda r: b"", make=lambda path: os.symlink("/dev/zero", path)),
]


def _max_line_bytes() -> int:
    from pykeen_mkgformer.data import textfiles

    return textfiles.MAX_LINE_BYTES


def _long_line(reader: Reader) -> bytes:
    line = reader.lines[_a_record_line(reader)]
    if reader.name.startswith("MNRE"):
        record = dict(MNRE_RECORDS[0], token=["word"] * 100_000 + ["Ann", "Rome"])
        record["h"], record["t"] = {"name": "Ann", "pos": [100_000, 100_001]}, {"name": "Rome", "pos": [100_001, 100_002]}
        line = json.dumps(record) if reader.name == "MNRE JSONL" else repr(record)
    elif reader.name == "CoNLL":
        return ("\nIMGID:9\n" + "x" * 2_000_000 + "\tO\n").encode("utf-8")
    else:
        line = line.replace("a", "a" * 2_000_000, 1)
    return (line + "\n").encode("utf-8")


@dataclasses.dataclass
class Outcome:
    """What a reader made of a file."""

    kind: str  # handled / named skip / error / unhandled
    detail: str
    parsed: int = 0
    skipped: int = 0


def write_text_case(reader: Reader, case: TextCase, folder: Path) -> Path:
    """Write ``case`` of ``reader`` into ``folder``; return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (reader.file_name + case.suffix)
    if case.make is not None:
        case.make(path)
    else:
        path.write_bytes(case.content(reader))
    return path


#: file-level problems: the package's error naming the file
FILE_ERRORS = {
    "UTF-16 file (with BOM)",
    "truncated gzip",
    "corrupt gzip (bad CRC)",
    "not gzip at all, named .gz, binary",
    "directory where the file should be",
    "symlink loop where the file should be",
    "FIFO where the file should be",
    "symlink to /dev/zero where the file should be",
}
#: line-level problems: named (file:line) and skippable
LINE_PROBLEMS = {
    "non-UTF-8 byte in a line (Latin-1)",
    "NUL byte in a line",
    "line over the 64 MiB limit",
    "random binary garbage line",
}


def expected_kind(reader: Reader, case: TextCase) -> str:
    """What ``reader`` must make of ``case``."""
    if case.name in FILE_ERRORS:
        return "error"
    if case.name in {"empty file", "whitespace-only file"}:
        return "error" if reader.split else "handled"
    if case.name in LINE_PROBLEMS:
        return "named skip"
    if case.name == "spaces instead of tabs in a line":
        return "handled" if reader.name.startswith("MNRE") else "named skip"  # JSON has no tabs to replace
    if case.name == "duplicated record line" and reader.name == "LP entity2text":
        return "named skip"  # a key given twice
    return "handled"


def run_text_case(reader: Reader, path: Path) -> Outcome:
    """Read ``path`` strictly, then (after a line error) with skipping; classify what happened.

    For split readers, a file that yields no record ends as the split check's error, as the
    datasets and the ``re`` / ``ner`` commands report it.
    """
    outcome = _read_case(reader, path)
    if reader.split and outcome.kind in {"handled", "named skip"} and outcome.parsed == 0:
        from pykeen_mkgformer.data.errors import DataError
        from pykeen_mkgformer.data.textfiles import require_records

        try:
            require_records(path, [], skipped=outcome.skipped, what="records")
        except DataError as error:
            return Outcome("error", error.reason, skipped=outcome.skipped)
    return outcome


def _read_case(reader: Reader, path: Path) -> Outcome:
    from pykeen_mkgformer.data.errors import DataError, MalformedLineError
    from pykeen_mkgformer.data.textfiles import BadLines

    try:
        records = reader.read(path, BadLines())
        return Outcome("handled", f"{len(records)} records", parsed=len(records))
    except MalformedLineError as error:
        if error.path != str(path) or error.line is None:
            return Outcome("unhandled", f"error names {error.path}:{error.line}, not {path}")
        first = str(error)
    except DataError as error:
        if error.path != str(path):
            return Outcome("unhandled", f"error names {error.path}, not {path}")
        return Outcome("error", error.reason)
    except Exception as error:  # noqa: BLE001  what the gauntlet looks for
        return Outcome("unhandled", f"{type(error).__name__}: {error}")
    bad = BadLines(skip=True)
    try:
        records = reader.read(path, bad)
    except Exception as error:  # noqa: BLE001
        return Outcome("unhandled", f"with skipping: {type(error).__name__}: {error}")
    return Outcome("named skip", first.split(": ", 1)[1][:120], parsed=len(records), skipped=len(bad.errors))
