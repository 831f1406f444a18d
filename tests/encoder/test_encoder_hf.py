"""The hybrid encoder as a Hugging Face model: save_pretrained / AutoModel.from_pretrained round-trips exactly."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from kgc_support import run_python
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, BertConfig, CLIPVisionConfig

from pykeen_mkgformer.encoder import HybridConfig, HybridEncoderConfig, HybridEncoderModel, HybridTransformer

TEXT = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                  max_position_embeddings=32)
VISION = CLIPVisionConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                          image_size=32, patch_size=16)


def make(**switches) -> HybridTransformer:
    torch.manual_seed(0)
    return HybridTransformer(HybridConfig(text=TEXT, vision=VISION, **switches)).eval()


def inputs() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, 4:] = 0
    return {
        "input_ids": torch.randint(1, 50, (2, 6), generator=generator),
        "attention_mask": mask,
        "pixel_values": torch.randn(2, 2, 3, 32, 32, generator=generator),
        "image_mask": torch.tensor([[True, True], [True, False]]),
    }


def outputs(encoder, batch) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        out = encoder(**batch)
    return {"text": out.text_last_hidden_state, "vision": out.vision_last_hidden_state}


def comparable(config: HybridConfig) -> dict:
    """The config as a dict, without the towers' ``dtype`` (which saving records)."""
    data = config.to_dict()
    for role in ("text", "vision"):
        data[role].pop("dtype", None)
    return data


SWITCHES = [
    dict(fusion_layers=1),
    dict(fusion_layers=2, fusion_variant="official"),
    dict(fusion_layers=1, fusion_variant="official", vision_embedding="class_and_groups", group_positions=(8,)),
]


@pytest.mark.parametrize("switches", SWITCHES[:2])
def test_auto_model_reloads_in_a_fresh_interpreter(tmp_path, switches):
    encoder = make(**switches)
    batch = inputs()
    folder = encoder.save_pretrained(tmp_path / "encoder")
    save_file({**batch, **outputs(encoder, batch)}, str(tmp_path / "io.safetensors"))
    saved = json.loads((folder / "config.json").read_text())
    assert saved["model_type"] == "mkgformer_hybrid" and saved["fusion_layers"] == switches["fusion_layers"]
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    process = run_python(
        "import torch\n"
        "from safetensors.torch import load_file\n"
        "from transformers import AutoModel\n"
        "import pykeen_mkgformer.encoder  # registers the model type with AutoConfig / AutoModel\n"
        f"model = AutoModel.from_pretrained({str(folder)!r}).eval()\n"
        f"io = load_file({str(tmp_path / 'io.safetensors')!r})\n"
        "with torch.no_grad():\n"
        "    out = model(**{k: io[k] for k in ('input_ids', 'attention_mask', 'pixel_values', 'image_mask')})\n"
        "print(type(model).__name__, torch.equal(out.text_last_hidden_state, io['text']),"
        " torch.equal(out.vision_last_hidden_state, io['vision']))\n",
        cwd=tmp_path,
    )
    assert process.stdout.split() == ["HybridEncoderModel", "True", "True"]


@pytest.mark.parametrize("switches", SWITCHES)
def test_round_trip_is_exact(tmp_path, switches):
    encoder = make(**switches)
    encoder.save_pretrained(tmp_path)
    for loaded in (HybridTransformer.load(tmp_path), AutoModel.from_pretrained(tmp_path).hybrid):
        assert comparable(loaded.config) == comparable(encoder.config)
        reference, state = encoder.state_dict(), loaded.state_dict()
        assert reference.keys() == state.keys()
        assert all(torch.equal(reference[key], state[key]) for key in reference)
        batch = inputs()
        if switches.get("vision_embedding") == "class_and_groups":
            batch["pixel_values"], batch["image_mask"] = [batch["pixel_values"]], [batch["image_mask"]]  # one group
        for name, value in outputs(loaded.eval(), batch).items():
            assert torch.equal(value, outputs(encoder, batch)[name]), name
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, HybridEncoderConfig) and comparable(config.to_hybrid_config()) == comparable(encoder.config)


def test_wrapping_keeps_the_weights():
    encoder = make(fusion_layers=1)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    model = HybridEncoderModel.from_hybrid(encoder)
    assert model.hybrid is encoder
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())


def test_older_folders_still_load_with_a_warning(tmp_path):
    encoder = make(fusion_layers=1)
    (tmp_path / "hybrid_config.json").write_text(json.dumps(encoder.config.to_dict(), default=str))
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(tmp_path / "model.safetensors"))
    with pytest.warns(DeprecationWarning, match="older pykeen-mkgformer"):
        loaded = HybridTransformer.load(tmp_path)
    batch = inputs()
    assert torch.equal(outputs(loaded.eval(), batch)["text"], outputs(encoder, batch)["text"])
    assert set(load_file(str(tmp_path / "model.safetensors"))) == set(encoder.state_dict())


def test_a_folder_without_config_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        HybridTransformer.load(tmp_path)


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_recording_attentions_restores_the_attention_implementation(implementation):
    encoder = make(fusion_layers=1)
    for tower in (encoder.text_model, encoder.vision_model):
        tower.set_attn_implementation(implementation)
    with torch.no_grad():
        out = encoder(**inputs(), output_attentions=True)
    assert len(out.text_attentions) == 2
    assert [tower.config._attn_implementation for tower in (encoder.text_model, encoder.vision_model)] == [
        implementation, implementation
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoder(**inputs())  # still runs
