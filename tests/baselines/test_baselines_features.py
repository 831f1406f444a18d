"""Entity features from real pretrained towers (offline), the content-keyed cache, the papers' files, the CLI."""

from __future__ import annotations

import json
import pickle
import shutil

import pytest
import torch
from click.testing import CliRunner

from kgc_support import single_thread
from pykeen_mkgformer.baselines import features as features_module
from pykeen_mkgformer.baselines.features import EntityFeatures, TextEncoder, VisionEncoder, extract_features
from pykeen_mkgformer.data import MultimodalTriplesFactory, load_rgb
from pykeen_mkgformer.data.errors import DataError


@pytest.fixture(scope="module")
def towers():
    with single_thread():
        return VisionEncoder("efficientnet-lite0"), TextEncoder("minilm")


@pytest.fixture()
def tiny_graph(shared_data, tmp_path):
    """Three entities: two images (a shark, a goldfish), none, one image (a hammerhead shark)."""
    sources = {name: sorted((shared_data / "wn18_images" / name).iterdir())[0] for name in ("n01484850", "n01443537", "n01494475")}
    images = {}
    for name, source in sources.items():
        images[name] = tmp_path / f"{name}.jpg"
        shutil.copy(source, images[name])
    import numpy as np

    triples = np.asarray([["a", "r", "b"], ["b", "r", "c"]], dtype=str)
    factory = MultimodalTriplesFactory.from_labeled_triples(
        triples,
        entity_descriptions={"a": "a dog playing in the park", "b": "a puppy running on grass", "c": "an erupting volcano"},
        entity_images={"a": [images["n01484850"], images["n01443537"]], "c": [images["n01494475"]]},
    )
    return factory, images


def test_real_pretrained_features(tiny_graph, towers):
    factory, images = tiny_graph
    vision, text = towers
    with single_thread():
        result = extract_features(factory, vision=vision, text=text, progress=False)
        one = vision.encode([load_rgb(images["n01484850"])])[0]
        two = vision.encode([load_rgb(images["n01443537"])])[0]
    assert result.visual.shape == (3, 1280) and result.textual.shape == (3, 384)
    assert result.visual_count.tolist() == [2, 0, 1]
    assert result.visual_missing.tolist() == [False, True, False]
    torch.testing.assert_close(result.visual[0], (one + two) / 2, rtol=1e-4, atol=1e-5)  # the mean over the images
    assert torch.count_nonzero(result.visual[1]) == 0  # marked by the count, never read as a feature
    cos = torch.nn.functional.cosine_similarity
    # MiniLM's pretrained weights: a dog is closer to a puppy than to a volcano
    assert cos(result.textual[0], result.textual[1], dim=0) > cos(result.textual[0], result.textual[2], dim=0) + 0.2
    # EfficientNet-Lite0's ImageNet head recognises the first image (class 2, great white shark)
    with torch.no_grad(), single_thread():
        import numpy as np

        pixels = torch.from_numpy(np.asarray(load_rgb(images["n01484850"]).resize((224, 224)), dtype=np.float32))
        logits = vision.model((pixels.permute(2, 0, 1)[None] - 127.0) / 128.0)
    assert int(logits.argmax()) == 2


def test_cache_is_keyed_by_content_and_resumes(tiny_graph, towers, tmp_path, monkeypatch):
    factory, images = tiny_graph
    vision, _ = towers
    with single_thread():
        first = extract_features(factory, vision=vision, cache_dir=tmp_path / "cache", progress=False)
    calls = []
    original = vision.encode
    monkeypatch.setattr(vision, "encode", lambda batch: calls.append(len(batch)) or original(batch))
    again = extract_features(factory, vision=vision, cache_dir=tmp_path / "cache", progress=False)
    assert calls == []  # every image came from the cache
    torch.testing.assert_close(again.visual, first.visual)
    shutil.copy(images["n01494475"], images["n01443537"])  # same path, new content
    with single_thread():
        changed = extract_features(factory, vision=vision, cache_dir=tmp_path / "cache", progress=False)
    assert calls == []  # the new content is a hammerhead shark, whose vector is cached already (entity c)
    shark = vision.encode([load_rgb(images["n01484850"])])[0]
    torch.testing.assert_close(changed.visual[0], (shark + first.visual[2]) / 2, rtol=1e-4, atol=1e-5)
    calls.clear()
    load_rgb(images["n01484850"]).transpose(0).save(images["n01443537"], format="JPEG")  # content never seen
    with single_thread():
        extract_features(factory, vision=vision, cache_dir=tmp_path / "cache", progress=False)
    assert calls == [1]  # only the new content is encoded


class Interrupted(Exception):
    """Stands for a killed run."""


def test_interrupted_run_resumes(tiny_graph, towers, tmp_path, monkeypatch):
    factory, _ = tiny_graph
    _, text = towers
    original, calls, fail_at = text.encode, [], [2]

    def failing(batch):
        calls.append(list(batch))
        if len(calls) == fail_at[0]:
            raise Interrupted
        return original(batch)

    monkeypatch.setattr(text, "encode", failing)
    with pytest.raises(Interrupted), single_thread():
        extract_features(factory, text=text, cache_dir=tmp_path / "cache", batch_size=1, checkpoint_every=1, progress=False)
    calls.clear()
    fail_at[0] = None
    with single_thread():
        resumed = extract_features(factory, text=text, cache_dir=tmp_path / "cache", batch_size=1, checkpoint_every=1, progress=False)
    texts = ["a dog playing in the park", "a puppy running on grass", "an erupting volcano"]
    assert calls == [[texts[1]], [texts[2]]]  # the first text was checkpointed before the interruption
    torch.testing.assert_close(resumed.textual[0], original([texts[0]])[0])


def test_unreadable_image_is_skipped_and_counted(tiny_graph, towers, tmp_path, caplog):
    factory, images = tiny_graph
    vision, _ = towers
    images["n01443537"].write_bytes(b"not an image")
    with single_thread(), caplog.at_level("WARNING"):
        result = extract_features(factory, vision=vision, progress=False)
    assert result.visual_count.tolist() == [1, 0, 1]
    assert "n01443537.jpg" in caplog.text


def test_hugging_face_vision_tower_from_a_folder(tmp_path, tiny_graph):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    factory, _ = tiny_graph
    config = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=16)
    CLIPVisionModel(config).save_pretrained(tmp_path / "tower")
    result = extract_features(factory, vision=str(tmp_path / "tower"), progress=False)
    assert result.visual.shape == (3, 16)
    assert result.visual_count.tolist() == [2, 0, 1]


def test_papers_feature_files_are_read_safely(tmp_path):
    folder = tmp_path / "DB15K"
    folder.mkdir()
    torch.save(torch.arange(12.0).reshape(4, 3), folder / "DB15K-visual.pth")
    torch.save({"embeddings": torch.ones(4, 2)}, folder / "DB15K-textual.pth")
    loaded = EntityFeatures.load(folder, num_entities=4)
    assert loaded.visual.tolist()[1] == [3.0, 4.0, 5.0] and loaded.textual.shape == (4, 2)
    assert loaded.visual_count.tolist() == [1, 1, 1, 1]
    with pytest.raises(DataError, match="DB15K-visual.pth.*4 rows, but the graph has 5"):
        EntityFeatures.load(folder, num_entities=5)

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(tmp_path / 'pwned')!r}, 'w').close()",))

    (folder / "DB15K-visual.pth").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(DataError, match="not a safe tensor file"):
        features_module.read_feature_file(folder / "DB15K-visual.pth")
    assert not (tmp_path / "pwned").exists()


def test_saved_features_round_trip(tmp_path):
    features = EntityFeatures(
        visual=torch.randn(3, 2), visual_count=torch.tensor([1, 0, 4]), textual=torch.randn(3, 5), metadata={"x": 1}
    )
    features.save(tmp_path)
    loaded = EntityFeatures.load(tmp_path, num_entities=3)
    torch.testing.assert_close(loaded.visual, features.visual)
    assert loaded.visual_count.tolist() == [1, 0, 4] and loaded.metadata == {"x": 1}
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left behind


def test_cli_writes_features_for_shapeskg(tmp_path):
    from pykeen_mkgformer.cli import main

    runner = CliRunner()
    with single_thread():
        result = runner.invoke(
            main,
            [
                "features", "--dataset", "ShapesKG", "--dataset-kwargs", json.dumps({"cache_root": str(tmp_path / "shapes")}),
                "--text", "minilm", "--output", str(tmp_path / "out"),
            ],
        )
    assert result.exit_code == 0, result.output
    loaded = EntityFeatures.load(tmp_path / "out", num_entities=48)
    assert loaded.textual.shape == (48, 384) and loaded.visual is None
    assert json.loads((tmp_path / "out" / "features.json").read_text())["text"] == "minilm"
    assert runner.invoke(main, ["features", "--dataset", "ShapesKG", "--output", str(tmp_path / "x")]).exit_code != 0
