"""A saved MKGformer holds its trained encoder as a Hugging Face model (``mkgformer/encoder/``)."""

from __future__ import annotations

import json

import torch
from kgc_support import run_python, tiny_model_kwargs
from safetensors.torch import save_file

from pykeen_mkgformer.kgc import MKGformer, save_model


def test_saved_encoder_reloads_with_auto_model_in_a_fresh_interpreter(shapes, image_cache, tmp_path):
    model = MKGformer(triples_factory=shapes.training, random_seed=0, **tiny_model_kwargs(image_cache, fusion_layers=2))
    encoder = model.interaction.encoder.eval()
    with torch.no_grad():  # trained-looking weights, entity token rows included
        for parameter in encoder.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    folder = save_model(model, tmp_path / "mkgformer", training=shapes.training)
    config = json.loads((folder / "encoder" / "config.json").read_text())
    assert config["model_type"] == "mkgformer_hybrid" and config["fusion_layers"] == 2
    vocabulary = encoder.get_input_embeddings().num_embeddings
    assert config["text_config"]["vocab_size"] == vocabulary > shapes.num_entities  # the entity tokens are in it

    generator = torch.Generator().manual_seed(1)
    side = encoder.config.vision_config().image_size
    batch = {
        "input_ids": torch.randint(0, vocabulary, (2, 7), generator=generator),
        "attention_mask": torch.tensor([[1] * 7, [1] * 5 + [0] * 2]),
        "pixel_values": torch.randn(2, 1, 3, side, side, generator=generator),
        "image_mask": torch.tensor([[True], [False]]),
    }
    with torch.no_grad():
        out = encoder(**batch)
    save_file({**batch, "text": out.text_last_hidden_state, "vision": out.vision_last_hidden_state}, str(tmp_path / "io.safetensors"))
    process = run_python(
        "import torch\n"
        "from safetensors.torch import load_file\n"
        "from transformers import AutoModel, AutoTokenizer\n"
        "import pykeen_mkgformer.encoder  # registers the model type with AutoConfig / AutoModel\n"
        f"model = AutoModel.from_pretrained({str(folder / 'encoder')!r}).eval()\n"
        f"tokenizer = AutoTokenizer.from_pretrained({str(folder / 'tokenizer')!r})\n"
        f"io = load_file({str(tmp_path / 'io.safetensors')!r})\n"
        "with torch.no_grad():\n"
        "    out = model(**{k: io[k] for k in ('input_ids', 'attention_mask', 'pixel_values', 'image_mask')})\n"
        # the entity rows follow the tokenizer's vocabulary, then the relation rows
        f"print(type(model).__name__, len(tokenizer) + {shapes.num_entities} + {model.num_relations} == model.get_input_embeddings().num_embeddings,\n"
        "      torch.equal(out.text_last_hidden_state, io['text']), torch.equal(out.vision_last_hidden_state, io['vision']))\n",
        cwd=tmp_path,
    )
    assert process.stdout.split() == ["HybridEncoderModel", "True", "True", "True"]
