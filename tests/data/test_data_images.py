"""Images: Pillow modes, broken files (written here), the pixel cache and image processors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessorPil, CLIPVisionConfig, ViTConfig, ViTImageProcessorPil

from pykeen_mkgformer.data import images as images_module
from pykeen_mkgformer.data.images import ImageError, ImageLayout, PixelCache, image_processor_for, load_rgb


def write_image(path, colour=(200, 30, 40), size=(40, 30), mode="RGB", **save_kwargs):
    """Write a solid image with a darker left half (so that crops and resizes show)."""
    array = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    array[:] = colour
    array[:, : size[0] // 2] //= 2
    Image.fromarray(array).convert(mode).save(path, **save_kwargs)
    return path


@pytest.fixture()
def processor():
    return CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


# layout -------------------------------------------------------------------------------------------


def test_layout():
    official = ImageLayout.official()
    assert official.groups == ((1, 224), (3, 128), (3, 64))
    assert official.max_images == 7
    assert ImageLayout.single(32, count=2).groups == ((2, 32),)
    assert ImageLayout(groups=((1, 16), (2, 8))).slots() == [(0, 0), (1, 0), (1, 1)]
    with pytest.raises(ValueError, match="invalid"):
        ImageLayout(groups=((0, 32),))
    with pytest.raises(ValueError, match="at least one"):
        ImageLayout(groups=())


# decoding -----------------------------------------------------------------------------------------


def test_every_mode_becomes_rgb(tmp_path):
    grey = tmp_path / "grey.png"
    Image.new("L", (8, 8), 100).save(grey)
    assert load_rgb(grey).getpixel((0, 0)) == (100, 100, 100)

    transparent = tmp_path / "rgba.png"
    Image.new("RGBA", (8, 8), (10, 20, 30, 0)).save(transparent)
    assert load_rgb(transparent).getpixel((0, 0)) == (255, 255, 255)  # transparent -> white background
    opaque = tmp_path / "la.png"
    Image.new("LA", (8, 8), (50, 255)).save(opaque)
    assert load_rgb(opaque).getpixel((0, 0)) == (50, 50, 50)

    palette = tmp_path / "p.png"
    Image.new("RGB", (8, 8), (0, 0, 255)).convert("P").save(palette)
    assert load_rgb(palette).getpixel((0, 0)) == (0, 0, 255)

    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(cmyk)  # red
    red = load_rgb(cmyk).getpixel((4, 4))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60

    deep = tmp_path / "i16.png"
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(deep)
    assert Image.open(deep).mode.startswith("I")
    assert load_rgb(deep).getpixel((0, 0)) == (255, 255, 255)  # 16-bit white stays white

    for path in (grey, transparent, opaque, palette, cmyk, deep):
        assert load_rgb(path).mode == "RGB"


def make_broken_files(tmp_path):
    """One of each bad kind, with the reason we expect."""
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"this is not an image at all" * 10)
    truncated = tmp_path / "truncated.jpg"
    data = (write_image(tmp_path / "whole.jpg", size=(64, 64), quality=95)).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.jpg"
    return {corrupt: "not a readable image", truncated: "truncated", empty: "empty file", missing: "missing file"}


def test_broken_files_raise_image_errors(tmp_path):
    for path, reason in make_broken_files(tmp_path).items():
        with pytest.raises(ImageError, match=reason) as info:
            load_rgb(path)
        assert str(path) in str(info.value)


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    warned_zone = write_image(tmp_path / "bomb_small.png", size=(40, 40))  # 1600 px: Pillow only warns
    error_zone = write_image(tmp_path / "bomb_big.png", size=(64, 64))  # 4096 px: Pillow raises
    fine = write_image(tmp_path / "fine.png", size=(16, 16))
    for bomb in (warned_zone, error_zone):
        with pytest.raises(ImageError, match="decompression bomb"):
            load_rgb(bomb)
    assert load_rgb(fine).size == (16, 16)


# the cache ----------------------------------------------------------------------------------------


def test_bad_files_are_skipped_with_one_warning_each(tmp_path, processor):
    broken = make_broken_files(tmp_path)
    good = [write_image(tmp_path / f"good{k}.png", colour=(20 * k, 100, 50)) for k in range(3)]
    items = [
        [*broken, good[0]],  # four bad files, then a good one that takes the first slot
        [good[1], *broken, good[2]],
        list(broken),  # nothing usable
    ]
    with pytest.warns(UserWarning) as record:
        cache = PixelCache(
            items, processor=processor, layout=ImageLayout.single(32, count=6), cache_dir=tmp_path / "c", progress=False
        )
    messages = [str(w.message) for w in record]
    for path in broken:
        assert sum(str(path) in message for message in messages) == 1, path
    assert sorted(path for path, _ in cache.skipped) == sorted(map(str, broken))
    assert [cache.num_images(i) for i in range(3)] == [1, 2, 0]
    pixel_values, image_mask = cache.lookup(torch.arange(3))
    assert image_mask[0].tolist() == [[True] + [False] * 5, [True, True] + [False] * 4, [False] * 6]
    # the good files moved up into the first slots: item 0's slot 0 is good[0], item 1's slot 1 is good[2]
    reference = PixelCache(
        [good], processor=processor, layout=ImageLayout.single(32, count=3), cache_dir=tmp_path / "c"
    )
    expected = reference.lookup(torch.tensor([0]))[0][0][0]
    torch.testing.assert_close(pixel_values[0][0, 0], expected[0])
    torch.testing.assert_close(pixel_values[0][1, :2], expected[1:])
    assert torch.count_nonzero(pixel_values[0][2]) == 0  # empty slots are zeros


def test_lookup_equals_the_processor_output(tmp_path):
    paths = [
        write_image(tmp_path / f"{k}.jpg", colour=(30 * k, 200 - 20 * k, 90), size=(50 + 7 * k, 40)) for k in range(4)
    ]
    clip = CLIPImageProcessorPil()  # 224 px, CLIP mean/std
    layout = ImageLayout(groups=((1, 224), (2, 64)))
    cache = PixelCache([paths[:3], paths[3:]], processor=clip, layout=layout, cache_dir=tmp_path / "c", progress=False)
    pixel_values, image_mask = cache.lookup(torch.tensor([0, 1]))
    assert [p.shape for p in pixel_values] == [(2, 1, 3, 224, 224), (2, 2, 3, 64, 64)]
    assert image_mask[1].tolist() == [[True, True], [False, False]]
    reference_224 = clip(images=[load_rgb(paths[0]), load_rgb(paths[3])], return_tensors="np")["pixel_values"]
    torch.testing.assert_close(pixel_values[0][:, 0], torch.as_tensor(reference_224), atol=1e-5, rtol=0)
    reference_64 = clip(
        images=[load_rgb(paths[2])],
        size={"shortest_edge": 64},
        crop_size={"height": 64, "width": 64},
        return_tensors="np",
    )["pixel_values"]
    torch.testing.assert_close(pixel_values[1][0, 1], torch.as_tensor(reference_64[0]), atol=1e-5, rtol=0)
    # normalised in float32, then cast
    half, _ = cache.lookup(torch.tensor([0, 1]), dtype=torch.bfloat16)
    assert half[0].dtype == torch.bfloat16
    torch.testing.assert_close(half[0].float(), pixel_values[0], atol=2e-2, rtol=1e-2)


def test_second_construction_decodes_nothing(tmp_path, processor, monkeypatch):
    paths = [write_image(tmp_path / f"{k}.png", colour=(40 * k, 10, 10)) for k in range(3)]
    decoded = []
    original = images_module.load_rgb
    monkeypatch.setattr(images_module, "load_rgb", lambda path: decoded.append(path) or original(path))
    opened = []
    original_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a) or original_open(*a, **k))

    layout = ImageLayout.single(32, count=2)
    first = PixelCache(
        [paths[:2], paths[2:]], processor=processor, layout=layout, cache_dir=tmp_path / "c", progress=False
    )
    assert len(decoded) == 3
    decoded.clear()
    opened.clear()
    second = PixelCache(
        [paths[:2], paths[2:]], processor=processor, layout=layout, cache_dir=tmp_path / "c", progress=False
    )
    assert decoded == [] and opened == []
    assert second.path == first.path
    for a, b in zip(first.lookup(torch.arange(2))[0], second.lookup(torch.arange(2))[0], strict=True):
        torch.testing.assert_close(a, b)

    # other pixels (same file name), other processor settings or another layout: a new entry
    write_image(paths[2], colour=(0, 0, 250))
    third = PixelCache(
        [paths[:2], paths[2:]], processor=processor, layout=layout, cache_dir=tmp_path / "c", progress=False
    )
    assert third.path != first.path and len(decoded) == 3
    vit = ViTImageProcessorPil(size={"height": 32, "width": 32})
    assert (
        PixelCache([paths], processor=vit, layout=layout, cache_dir=tmp_path / "c", progress=False).path != third.path
    )
    assert (
        PixelCache(
            [paths], processor=processor, layout=ImageLayout.single(16, 2), cache_dir=tmp_path / "c", progress=False
        ).path
        != third.path
    )


def test_images_beyond_the_layout_are_capped(tmp_path, processor, caplog):
    paths = [write_image(tmp_path / f"{k}.png", colour=(25 * k, 0, 0), size=(16, 16)) for k in range(9)]
    layout = ImageLayout(groups=((1, 32), (3, 16), (3, 8)))
    with caplog.at_level("INFO"):
        cache = PixelCache(
            [paths, paths[:2]], processor=processor, layout=layout, cache_dir=tmp_path / "c", progress=False
        )
    assert "2 images beyond the layout's 7 per item are used only in place of unreadable ones" in caplog.text
    assert cache.num_images(0) == 7 and cache.num_images(1) == 2
    _, mask = cache.lookup(torch.tensor([1]))
    assert [m.tolist() for m in mask] == [[[True]], [[True, False, False]], [[False, False, False]]]


def test_an_unreadable_file_leaves_its_slot_to_a_file_beyond_the_layout(tmp_path, processor):
    good = [write_image(tmp_path / f"{k}.png", colour=(40 * k, 90, 20)) for k in range(3)]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    layout = ImageLayout.single(32, count=2)
    with pytest.warns(UserWarning, match="broken.png"):
        cache = PixelCache([[broken, *good]], processor=processor, layout=layout, cache_dir=tmp_path / "c")
    assert cache.num_images(0) == 2  # the third file takes the slot the unreadable first one left
    reference = PixelCache([good[:2]], processor=processor, layout=layout, cache_dir=tmp_path / "c")
    torch.testing.assert_close(cache.lookup(torch.tensor([0]))[0][0], reference.lookup(torch.tensor([0]))[0][0])


# processors and the encoder -----------------------------------------------------------------------


def test_image_processor_for(tmp_path):
    clip = image_processor_for(CLIPVisionConfig(image_size=48))
    assert clip.crop_size == {"height": 48, "width": 48}
    vit = image_processor_for({"model_type": "vit", "image_size": 40})
    assert vit.size == {"height": 40, "width": 40}
    assert tuple(vit.image_mean) == (0.5, 0.5, 0.5)
    saved = ViTImageProcessorPil(size={"height": 24, "width": 24}, image_mean=[0.1, 0.2, 0.3])
    saved.save_pretrained(tmp_path / "checkpoint")
    ViTConfig(image_size=24).save_pretrained(tmp_path / "checkpoint")
    loaded = image_processor_for(str(tmp_path / "checkpoint"))
    assert loaded.size == {"height": 24, "width": 24}
    assert list(loaded.image_mean) == pytest.approx([0.1, 0.2, 0.3])
    config_only = tmp_path / "config_only"
    ViTConfig(image_size=56).save_pretrained(config_only)
    assert image_processor_for(str(config_only)).size == {"height": 56, "width": 56}


def test_lookup_feeds_the_hybrid_encoder(tmp_path):
    from transformers import BertConfig

    from pykeen_mkgformer.encoder import HybridConfig, HybridTransformer

    vision = CLIPVisionConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8
    )
    text = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(0)
    encoder = HybridTransformer(HybridConfig(text=text, vision=vision, fusion_layers=1)).eval()
    paths = [write_image(tmp_path / f"{k}.png", colour=(60 * k, 90, 30)) for k in range(3)]
    cache = PixelCache(
        [paths, [], paths[:1]],
        processor=image_processor_for(vision),
        layout=ImageLayout(groups=((1, 32), (2, 16))),
        cache_dir=tmp_path / "c",
        progress=False,
    )
    pixel_values, image_mask = cache.lookup(torch.arange(3))
    input_ids = torch.randint(1, 50, (3, 6))
    with torch.no_grad():
        out = encoder(input_ids, torch.ones_like(input_ids), pixel_values=pixel_values, image_mask=image_mask)
        text_only = encoder(input_ids[1:2], torch.ones_like(input_ids[1:2]))
    assert out.text_last_hidden_state.shape == (3, 6, 32)
    # the item without images behaves as text-only
    torch.testing.assert_close(out.text_last_hidden_state[1:2], text_only.text_last_hidden_state, atol=1e-5, rtol=0)
    # images change the others
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not torch.allclose(out.text_last_hidden_state[0], out.text_last_hidden_state[2])


def test_pickling_sends_the_folder_not_the_pixels(tmp_path):
    import pickle

    paths = [write_image(tmp_path / f"{k}.png", colour=(50 * k, 60, 70), size=(300, 300)) for k in range(4)]
    cache = PixelCache(
        [paths[:2], paths[2:]],
        processor=CLIPImageProcessorPil(),
        layout=ImageLayout.single(224, count=2),
        cache_dir=tmp_path / "c",
        progress=False,
    )
    payload = pickle.dumps(cache)
    assert len(payload) < 4 * 3 * 224 * 224 // 10  # far less than the pixels themselves
    copy = pickle.loads(payload)
    for a, b in zip(cache.lookup(torch.arange(2))[0], copy.lookup(torch.arange(2))[0], strict=True):
        torch.testing.assert_close(a, b)
