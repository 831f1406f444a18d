"""The pixel cache is never read as pixels when its files are damaged: killed builds, truncation, bad sizes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessorPil

from pykeen_mkgformer.data import ImageLayout, PixelCache

LAYOUT = ImageLayout(groups=((1, 32), (2, 16)))


def processor():
    return CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


@pytest.fixture()
def items(tmp_path):
    """Six entities with one to three distinct images each."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for index in range(12):
        path = folder / f"{index}.png"
        Image.fromarray(rng.integers(0, 255, (20 + index, 24, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return [paths[0:1], paths[1:3], paths[3:6], paths[6:8], paths[8:11], paths[11:12]]


def build(items, cache_dir) -> PixelCache:
    return PixelCache(items, processor=processor(), layout=LAYOUT, cache_dir=cache_dir, progress=False)


def pixels(cache: PixelCache) -> list[torch.Tensor]:
    values, masks = cache.lookup(torch.arange(len(cache)))
    return [*values, *(mask.float() for mask in masks)]


def assert_same(a: PixelCache, b: PixelCache) -> None:
    for x, y in zip(pixels(a), pixels(b), strict=True):
        torch.testing.assert_close(x, y, atol=0, rtol=0)


def entries(cache_dir) -> list[str]:
    return sorted(name for name in os.listdir(cache_dir) if not name.startswith("."))


KILLER = textwrap.dedent(
    """
    import os, signal, sys, json
    from transformers import CLIPImageProcessorPil
    from pykeen_mkgformer.data import ImageLayout, PixelCache
    from pykeen_mkgformer.data import images

    items, cache_dir, after = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    resize, calls = images._resize, []

    def resize_then_die(*args, **kwargs):
        calls.append(1)
        if len(calls) > after:
            os.kill(os.getpid(), signal.SIGKILL)  # killed midway through the build
        return resize(*args, **kwargs)

    images._resize = resize_then_die
    PixelCache(items, processor=CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
               layout=ImageLayout(groups=((1, 32), (2, 16))), cache_dir=cache_dir, progress=False)
    """
)


def test_a_build_killed_midway_leaves_no_entry_and_is_redone(items, tmp_path):
    cache_dir = tmp_path / "cache"
    killed = subprocess.run([sys.executable, "-c", KILLER, json.dumps(items), str(cache_dir), "5"],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    leftovers = os.listdir(cache_dir)
    assert entries(cache_dir) == [] and len(leftovers) == 1 and leftovers[0].startswith(".")  # only the temporary folder

    cache = build(items, cache_dir)
    assert entries(cache_dir) == [cache.key]
    assert os.listdir(cache_dir) == [cache.key]  # the dead build's temporary folder was removed
    assert_same(cache, build(items, tmp_path / "reference"))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("truncate a pixel file", "truncated or overwritten"),
        ("append to a pixel file", "truncated or overwritten"),
        ("empty a pixel file", "truncated or overwritten"),
        ("delete a pixel file", "is missing"),
        ("truncate an index", "index_1.npy"),
        ("replace an index by another shape", "index_0.npy"),
        ("garble meta.json", "meta.json is unreadable"),
        ("delete meta.json", "meta.json is missing"),
        ("an older format", "format version"),
    ],
)
def test_a_damaged_entry_is_detected_and_rebuilt(items, tmp_path, damage, reason):
    cache_dir = tmp_path / "cache"
    first = build(items, cache_dir)
    reference = [t.clone() for t in pixels(first)]
    entry = first.path
    del first
    if damage == "truncate a pixel file":
        os.truncate(entry / "pixels_0.u8", os.path.getsize(entry / "pixels_0.u8") - 3 * 32 * 32)
    elif damage == "append to a pixel file":
        with open(entry / "pixels_1.u8", "ab") as file:
            file.write(b"\0" * 7)
    elif damage == "empty a pixel file":
        os.truncate(entry / "pixels_1.u8", 0)
    elif damage == "delete a pixel file":
        os.remove(entry / "pixels_0.u8")
    elif damage == "truncate an index":
        os.truncate(entry / "index_1.npy", 100)
    elif damage == "replace an index by another shape":
        np.save(entry / "index_0.npy", np.zeros((2, 2), dtype=np.int64))
    elif damage == "garble meta.json":
        (entry / "meta.json").write_bytes(b"{\"version\": 2, \"layo")
    elif damage == "delete meta.json":
        os.remove(entry / "meta.json")  # as a half-written entry copied by hand would look
    elif damage == "an older format":
        meta = json.loads((entry / "meta.json").read_text())
        (entry / "meta.json").write_text(json.dumps({**meta, "version": 1}))
    with pytest.warns(UserWarning, match=f"is damaged .*{reason}"):
        rebuilt = build(items, cache_dir)
    assert rebuilt.path == entry and entries(cache_dir) == [entry.name]
    for x, y in zip(pixels(rebuilt), reference, strict=True):
        torch.testing.assert_close(x, y, atol=0, rtol=0)


def test_an_index_pointing_outside_the_pixels_is_damage(items, tmp_path):
    cache = build(items, tmp_path / "cache")
    index = np.load(cache.path / "index_0.npy")
    index[0, 0] = 10_000
    np.save(cache.path / "index_0.npy", index)
    with pytest.warns(UserWarning, match="points outside"):
        build(items, tmp_path / "cache")


def test_damage_after_opening_is_named_when_a_worker_reopens(items, tmp_path):
    import pickle

    cache = build(items, tmp_path / "cache")
    payload = pickle.dumps(cache)
    os.truncate(cache.path / "pixels_0.u8", 10)
    with pytest.raises(RuntimeError, match=r"changed since it was opened: pixels_0.u8"):
        pickle.loads(payload)
