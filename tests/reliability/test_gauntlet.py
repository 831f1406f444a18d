"""Every class of hostile input through every reader and through both image paths (issue 11).

The classes and the expected behaviour live in ``hostile_inputs.py`` (shared with
``benchmarks/fuzz_campaign.py``, which writes the same table to RESULTS.md).
"""

from __future__ import annotations

import errno
import os
import signal
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessorPil

from hostile_inputs import IMAGE_CASES, READERS, TEXT_CASES, expected_kind, make_image_case, run_text_case, write_text_case
from pykeen_mkgformer.data import ImageLayout, PixelCache, load_rgb
from pykeen_mkgformer.data import files as files_module
from pykeen_mkgformer.data import textfiles
from pykeen_mkgformer.data.decoding import file_digest, to_rgb
from pykeen_mkgformer.data.errors import DataError, ImageError
from pykeen_mkgformer.data.readers import list_entity_images
from pykeen_mkgformer.tasks.images import InstanceImages


@pytest.fixture(autouse=True)
def never_hang():
    """Fail instead of hanging should anything block (a FIFO opened for reading)."""

    def timeout(*_):
        raise TimeoutError("blocked")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture()
def small_limits(monkeypatch):
    """A 4 KiB line limit (1 KiB blocks), so the over-long-line case stays small."""
    monkeypatch.setattr(textfiles, "MAX_LINE_BYTES", 4096)
    monkeypatch.setattr(textfiles, "BLOCK_BYTES", 1024)


@pytest.fixture()
def processor():
    return CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


# text ------------------------------------------------------------------------------------------------

SAME_RECORDS = {"valid file", "UTF-8 byte-order mark", "CRLF line ends", "lone CR line ends (old Mac)",
                "missing trailing newline", "gzip-compressed (.gz)", "gzip content without .gz name",
                ".gz name, plain content"}


@pytest.mark.parametrize("case", TEXT_CASES, ids=lambda case: case.name)
@pytest.mark.parametrize("reader", READERS.values(), ids=lambda reader: reader.name)
def test_text_case(reader, case, tmp_path, request):
    if case.name == "line over the 64 MiB limit":
        request.getfixturevalue("small_limits")
    path = write_text_case(reader, case, tmp_path)
    outcome = run_text_case(reader, path)
    assert outcome.kind == expected_kind(reader, case), outcome
    if case.name in SAME_RECORDS:
        assert outcome.parsed == reader.records
    if outcome.kind == "named skip":
        assert outcome.skipped >= 1 and outcome.parsed >= reader.records - 1  # only the bad record is lost


def test_a_skipped_line_names_file_line_and_byte(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(b"a\tr\tb\r\nc\tr\xff\td\r\n")
    with pytest.raises(DataError) as error:
        textfiles_reader(path)
    assert (error.value.path, error.value.line) == (str(path), 2)
    assert "byte ff at column 4" in str(error.value)


def textfiles_reader(path):
    from pykeen_mkgformer.data.readers import read_triples

    return read_triples(path)


def test_line_numbers_count_every_newline_style(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\ntwo\rthree\n\rfive\r\r\nseven")
    assert list(textfiles.read_lines(path)) == [
        (1, "one"), (2, "two"), (3, "three"), (4, ""), (5, "five"), (6, ""), (7, "seven")
    ]


def test_unreadable_text_file_is_an_error_naming_it(tmp_path, monkeypatch):
    """We run as root, so permissions are not enforced: the refusal is simulated at os.open."""
    path = tmp_path / "train.tsv"
    path.write_text("a\tr\tb\n")
    real_open = os.open

    def denied(name, *args, **kwargs):
        if os.fspath(name) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(files_module.os, "open", denied)
    with pytest.raises(DataError, match="permission denied") as error:
        textfiles_reader(path)
    assert error.value.path == str(path)
    with pytest.raises(ImageError, match="permission denied"):
        load_rgb(path)


# images ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", IMAGE_CASES, ids=lambda case: case.name)
def test_image_case(case, tmp_path):
    path = make_image_case(case, tmp_path)
    if case.expect == "named skip":
        with pytest.raises(ImageError) as error:
            load_rgb(path)
        assert error.value.path == str(path) and case.detail in error.value.reason
        assert file_digest(path).startswith("unusable:") or os.path.isfile(path)
    else:
        image = load_rgb(path)
        assert image.mode == "RGB"
        if case.size is not None:
            assert image.size == case.size
        if case.pixel is not None:
            assert image.getpixel((0, 0)) == pytest.approx(case.pixel, abs=1)


def test_image_cases_through_the_link_prediction_and_the_task_paths(tmp_path, processor):
    """Both paths decode the same files, skip the same ones (each named once), never crash."""
    root = tmp_path / "entity_images"
    for index, case in enumerate(IMAGE_CASES):
        make_image_case(case, root / f"e{index:02d}")
    flat = tmp_path / "task_images"
    for case in IMAGE_CASES:
        make_image_case(case, flat)
    expected_skips = {case.file_name for case in IMAGE_CASES if case.expect == "named skip"}

    # a symlink leading out of the image folder (to /dev/zero) is refused when listed,
    # like a ../ name (issue 22); every other entry with an image suffix is listed, whatever it is
    real_root = os.path.realpath(root)
    leaving = {
        case.file_name for index, case in enumerate(IMAGE_CASES)
        if os.path.islink(root / f"e{index:02d}" / case.file_name) and os.path.lexists(root / f"e{index:02d}" / case.file_name)
        and not os.path.realpath(root / f"e{index:02d}" / case.file_name).startswith(real_root + os.sep)
    }
    assert leaving == {"zero.jpg"}
    problems: list = []
    with pytest.warns(UserWarning, match=f"{len(leaving)} image entries refused"):
        listed = list_entity_images(root, problems=problems)
    assert {os.path.basename(path) for path, _ in problems} == leaving
    assert all("symlink leading outside" in reason for _, reason in problems)
    paths = [listed.get(f"e{index:02d}", ()) for index in range(len(IMAGE_CASES))]
    assert [len(entry) for entry in paths] == [int(case.file_name not in leaving) for case in IMAGE_CASES]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = PixelCache(paths, processor=processor, layout=ImageLayout.single(32), cache_dir=tmp_path / "cache",
                           progress=False)
    assert {os.path.basename(path) for path, _ in cache.skipped} == expected_skips - leaving
    assert len(cache.skipped) == len(expected_skips - leaving)
    # the first five named one by one, the others counted in one warning (with a few examples)
    for path, _ in cache.skipped[:5]:
        assert sum(path in str(w.message) for w in caught) == 1, path
    rest = len(cache.skipped) - 5
    assert rest > 0 and sum(str(w.message).startswith(f"{rest} more images skipped") for w in caught) == 1
    assert len([w for w in caught if "image skipped" in str(w.message) or "more images skipped" in str(w.message)]) == 6
    assert [cache.num_images(i) for i in range(len(IMAGE_CASES))] == [
        int(case.expect == "handled") for case in IMAGE_CASES
    ]

    images = InstanceImages(flat, processor)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        items = images.prepare([case.file_name for case in IMAGE_CASES], progress=False)
    assert {os.path.basename(path) for path, _ in images.skipped} == expected_skips
    assert images.missing == set()
    lp_pixels = cache.lookup(torch.arange(len(IMAGE_CASES)))[0][0][:, 0]
    for row, (case, (main, _)) in enumerate(zip(IMAGE_CASES, items)):
        if case.expect == "handled":
            torch.testing.assert_close(main, lp_pixels[row], atol=1e-5, rtol=0, msg=case.name)
        else:
            assert main is None, case.name


def test_unreadable_image_is_a_named_skip(tmp_path, monkeypatch):
    """Simulated (we run as root): the cache skips the file with 'permission denied'."""
    path = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(path)
    real_open = os.open
    monkeypatch.setattr(files_module.os, "open", lambda name, *a, **k: (_ for _ in ()).throw(
        PermissionError(errno.EACCES, "Permission denied")) if os.fspath(name) == str(path) else real_open(name, *a, **k))
    assert file_digest(path) == "unusable:unreadable (permission denied)"
    with pytest.raises(ImageError, match=r"secret.png: unreadable \(permission denied\)"):
        load_rgb(path)


def test_image_names_that_leave_the_folder_are_refused(tmp_path, processor):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "outside.png")
    images = InstanceImages(folder, processor)
    with pytest.warns(UserWarning, match="not a file name inside"):
        items = images.prepare(["../outside.png", str(tmp_path / "outside.png"), "a\x00b.png"], progress=False)
    assert [main for main, _ in items] == [None, None, None]
    assert len(images.skipped) == 3


@pytest.mark.parametrize("mode", ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB",
                                  "HSV", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"])
def test_every_pillow_mode_converts_to_rgb(mode):
    """Modes Pillow cannot write to a file are checked on images made in memory."""
    image = Image.new(mode, (3, 2))
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == (3, 2)


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("I;16", [0, 32768, 65535], [0, 128, 255]),  # floor((255 v + 32767) / 65535)
        ("I;16B", [0, 257, 65535], [0, 1, 255]),  # big-endian
        ("I;16L", [128, 65406, 65407], [0, 254, 255]),  # the rounding boundary
        ("F", [0.0, 0.5, 1.0], [0, 128, 255]),  # floats in [0, 1]
        ("F", [0.0, 100.0, 255.0], [0, 100, 255]),  # floats in [0, 255]
        ("F", [-1.0, 0.0, 3.0], [0, 64, 255]),  # other floats: min-max
        ("F", [float("nan"), 0.5, 1.0], [0, 128, 255]),  # NaN counts as 0
        ("I", [0, 32768, 65535], [0, 128, 255]),  # 32-bit integers within 16 bits
        ("I", [-5, 0, 5], [0, 128, 255]),  # other integers: min-max
    ],
)
def test_deep_greys_scale_by_hand(mode, values, expected):
    dtype = {"I;16": "<u2", "I;16L": "<u2", "I;16B": ">u2", "F": "<f4", "I": "<i4"}[mode]
    image = Image.frombytes(mode, (3, 1), np.asarray(values, dtype=dtype).tobytes())
    assert np.asarray(to_rgb(image))[0, :, 0].tolist() == expected


def test_bomb_limit_is_exact(tmp_path, monkeypatch):
    """Exactly MAX_IMAGE_PIXELS pixels decode; one more is refused before decoding."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)
    Image.new("RGB", (20, 20)).save(tmp_path / "at.png")
    Image.new("RGB", (401, 1)).save(tmp_path / "over.png")
    assert load_rgb(tmp_path / "at.png").size == (20, 20)
    with pytest.raises(ImageError, match="decompression bomb"):
        load_rgb(tmp_path / "over.png")


# odd names and small files of the RE / LP folders ------------------------------------------------------


def test_image_paths_that_are_not_utf8_survive_the_binary_dataset_copy(tmp_path):
    from pykeen_mkgformer.data import MultimodalTriplesFactory

    odd = os.fsdecode(b"/images/caf\xe9.jpg")  # a lone surrogate in Python's view of the name
    factory = MultimodalTriplesFactory.from_labeled_triples(
        np.array([["a", "r", "b"]]), entity_images={"a": [odd]}, entity_descriptions={"a": "café"}
    )
    factory.to_path_binary(tmp_path / "copy")
    loaded = MultimodalTriplesFactory.from_path_binary(tmp_path / "copy")
    assert loaded.entity_images == factory.entity_images and loaded.entity_descriptions == factory.entity_descriptions


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'\xef\xbb\xbf{"None": 0, "/per/per/peer": 1}', None),  # a BOM is fine
        (b"", "empty file"),
        (b'{"None": 0, "x": 0}', "distinct id"),
        (b'{"None": "0"}', "distinct id"),
        (b'["None"]', "distinct id"),
        (b'{"None": 0', "not valid JSON"),
        (b'{"Caf\xe9": 0}', "not valid UTF-8"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_rel2id_json_is_read_or_named(tmp_path, content, problem):
    from pykeen_mkgformer.re import load_relations

    (tmp_path / "rel2id.json").write_bytes(content)
    if problem is None:
        assert load_relations(tmp_path) == {"None": 0, "/per/per/peer": 1}
        return
    with pytest.raises(DataError, match=problem) as error:
        load_relations(tmp_path)
    assert error.value.path == str(tmp_path / "rel2id.json")


@pytest.mark.parametrize("kind", ["directory", "dangling symlink", "FIFO"])
def test_a_split_that_is_not_a_file_is_named(tmp_path, kind):
    from pykeen_mkgformer.re import read_mnre_folder

    path = tmp_path / "train.jsonl"
    {"directory": path.mkdir, "dangling symlink": lambda: os.symlink("gone.jsonl", path),
     "FIFO": lambda: os.mkfifo(path)}[kind]()
    with pytest.raises(DataError) as error:
        read_mnre_folder(tmp_path, "train")
    assert error.value.path == str(path)
