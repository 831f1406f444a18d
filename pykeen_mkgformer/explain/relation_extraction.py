r"""Case analysis of one relation extraction instance of a model written by ``pykeen-mkgformer re``.

The ``re`` output folder holds ``model/`` (``encoder/``, ``head.safetensors``, ``tokenizer/``,
``task.json`` with the relation labels) and ``metrics.json`` (the run's settings: data folder,
image and crop folders, ``max_length``). The instance is read from the data folder's split exactly
as training read it (same markers ``<s> </s> <o> </o>``, same image and crops), classified by the
saved model, and encoded once more with ``output_attentions=True`` for the CAF heatmaps and PGI
bars; the predicted distribution is :math:`\mathrm{softmax}(W[h_{<s>}; h_{<o>}] + b)`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .attention import fused_layers, query_images
from .explanation import Answer, Explanation, QueryToken

__all__ = ["SavedRelationModel", "load_relation_model", "explain_relation_extraction"]

SPLITS = ("train", "dev", "test")


@dataclass
class SavedRelationModel:
    """A relation classifier written by ``pykeen-mkgformer re``, with what is needed to feed it."""

    model: Any
    tokenizer: Any
    labels: list[str]
    #: the run's settings (``metrics.json``)
    settings: dict[str, Any]
    #: how the encoder was chosen (``metrics.json``)
    encoder_description: dict[str, Any]


def _setting(settings: dict[str, Any], key: str) -> str | None:
    value = settings.get(key)
    return None if value in (None, "None", "") else str(value)


def _saved_recipe(folder: Path):
    """The run's :class:`~pykeen_mkgformer.re.recipe.RERecipe` from ``model/task.json``; None for older runs."""
    import json

    from ..re.recipe import RERecipe

    path = Path(folder) / "model" / "task.json"
    if not path.is_file():
        return None
    values = json.loads(path.read_text(encoding="utf-8")).get("recipe")
    return RERecipe.from_dict(values) if isinstance(values, dict) else None


def load_relation_model(folder: str | Path, device: str | torch.device = "cpu") -> SavedRelationModel:
    """Load ``model/`` of an ``re`` output folder.

    :raises FileNotFoundError: when a file of the folder is missing
    :raises ValueError: when the folder holds another task, or the head's weights do not fit
    """
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from ..encoder import HybridTransformer
    from ..re.model import RelationClassifier

    folder = Path(folder)
    for name in ("model/task.json", "model/head.safetensors", "model/encoder", "model/tokenizer", "metrics.json"):
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder / name} is missing; expected an output folder of 'pykeen-mkgformer re'.")
    task = json.loads((folder / "model" / "task.json").read_text(encoding="utf-8"))
    if task.get("task") != "re":
        raise ValueError(f"{folder} holds a {task.get('task')!r} model; explain supports link prediction and 're'.")
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    encoder = HybridTransformer.load(folder / "model" / "encoder")
    tokenizer = AutoTokenizer.from_pretrained(str(folder / "model" / "tokenizer"))
    model = RelationClassifier(encoder, len(task["labels"]))
    result = model.load_state_dict(load_file(str(folder / "model" / "head.safetensors")), strict=False)
    missing = [key for key in result.missing_keys if not key.startswith("encoder.")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{folder / 'model' / 'head.safetensors'} does not fit a classifier over {len(task['labels'])} relations "
            f"(missing {missing}, unexpected {result.unexpected_keys})."
        )
    model.to(device).eval()
    return SavedRelationModel(model, tokenizer, list(task["labels"]), metrics.get("settings", {}), metrics.get("encoder", {}))


def _processor(saved: SavedRelationModel):
    """The image processor of the run: the vision checkpoint's own, or the one for a random tower's config."""
    from ..data.images import image_processor_for
    from ..tasks.encoders import vision_config_from_spec

    spec = saved.encoder_description.get("vision_encoder") or _setting(saved.settings, "vision_encoder") or "tiny"
    if vision_config_from_spec(spec) is not None:
        return image_processor_for(saved.model.encoder.vision_config)
    return image_processor_for(spec)


@torch.no_grad()
def explain_relation_extraction(
    folder: str | Path,
    instance: int,
    *,
    split: str = "test",
    data: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> Explanation:
    """Explain the ``instance``-th instance (0-based, file order) of a split of the run's data.

    :param folder: an output folder of ``pykeen-mkgformer re``
    :param instance: the instance's position in the split file
    :param split: ``train``, ``dev`` or ``test``
    :param data: the data folder (default: the one the run used, from ``metrics.json``)
    :param device: where the model runs
    :raises ValueError: for an instance outside the split, or labels that differ from the saved model's
    """
    from ..re.data import load_relations
    from ..re.model import ENTITY_MARKERS, HEAD_END, HEAD_START, TAIL_END, TAIL_START
    from ..re.train import RelationExtraction
    from ..tasks.images import InstanceImages
    from ..tasks.lines import BadLines

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    folder = Path(folder)
    saved = load_relation_model(folder, device)
    settings = saved.settings
    data_folder = Path(data) if data is not None else Path(_setting(settings, "data") or "")
    if not data_folder.is_dir():
        raise FileNotFoundError(f"The run's data folder {data_folder} is not there; give it with --data.")
    recipe = _saved_recipe(folder)
    task = RelationExtraction(
        data_folder, bad_lines=BadLines(skip=_setting(settings, "skip_bad_lines") == "True"), recipe=recipe
    )
    instances = task.read(split)
    if not 0 <= instance < len(instances):
        raise ValueError(f"Instance {instance} is outside the {split} split of {data_folder} ({len(instances)} instances: 0..{len(instances) - 1}).")
    item = instances[instance]
    encoder = saved.model.encoder
    task.setup(saved.tokenizer, encoder, task.read("train") if load_relations(data_folder) is None else [])
    if task.labels != saved.labels:
        raise ValueError(f"The relations of {data_folder} ({task.labels}) differ from the saved model's ({saved.labels}).")

    max_length = recipe.max_length if recipe is not None else int(_setting(settings, "max_length") or 128)
    features = task.features(item, saved.tokenizer, max_length)
    batch = task.collate([features], saved.tokenizer.pad_token_id)
    images_folder = _setting(settings, "images")
    crops_folder = _setting(settings, "crops")
    processor = _processor(saved)
    image_folder = Path(images_folder) if images_folder else data_folder / "images"
    if _setting(settings, "fusion_variant") == "official":
        # the official MRE / MNER input the run trained on: object crops at two sizes, no main image
        from ..encoder.backbone import resized_processor
        from ..tasks.images import OfficialCropImages

        # the run's recipe (model/task.json) says where the crops come from; runs saved before recipes
        # existed read their small crops from --crops
        small_crops = _setting(settings, "small_crops") or (crops_folder if recipe is None else None)
        patch = encoder.vision_config.patch_size
        images = OfficialCropImages(
            image_folder,
            [resized_processor(processor, side * patch) for _, side in OfficialCropImages.GROUPS],
            patch_size=patch,
            crops_folder=Path(crops_folder) if crops_folder else None,
            small_crops_folder=Path(small_crops) if small_crops else None,
            crop_source=recipe.crop_source if recipe is not None else "stem",
            missing=recipe.missing_images if recipe is not None else "masked",
        )
    else:
        images = InstanceImages(image_folder, processor, crops_folder=Path(crops_folder) if crops_folder else None)
    if isinstance(images, InstanceImages):
        image_batch = images.batch(images.prepare([task.image_name(item)], progress=False))
    else:
        image_batch = images.batch(
            images.prepare([task.image_name(item)], keys=[task.crop_key(item)], split=split, progress=False)
        )
    batch = {key: value.to(device) for key, value in batch.items()}
    if image_batch is not None:
        batch["images"] = ([p.to(device) for p in image_batch[0]], [m.to(device) for m in image_batch[1]])

    logits = saved.model.logits(batch)[0].float().cpu()
    probabilities = logits.softmax(dim=-1)
    pixel_values, image_mask = batch.get("images", (None, None))
    output = encoder(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        pixel_values=pixel_values,
        image_mask=image_mask,
        output_attentions=True,
    )
    states = output.text_last_hidden_state[0]
    again = saved.model.classifier(torch.cat([states[batch["head_index"][0]], states[batch["tail_index"][0]]]))
    if not torch.allclose(again.float().cpu(), logits, atol=1e-3 * max(1.0, float(logits.abs().max()))):
        raise RuntimeError("The attention pass does not reproduce the classifier's logits.")

    # tokens: markers and the mentions between them are the entity tokens
    ids = batch["input_ids"][0].tolist()
    texts = saved.tokenizer.convert_ids_to_tokens(ids)
    special = set(saved.tokenizer.all_special_ids) - set(saved.tokenizer.convert_tokens_to_ids(list(ENTITY_MARKERS)))
    tokens, inside = [], set()
    for index, (token_id, text) in enumerate(zip(ids, texts)):
        if text in (HEAD_START, TAIL_START):
            inside.add(text)
        kind = "entity" if text in ENTITY_MARKERS or inside else ("special" if token_id in special else "text")
        tokens.append(QueryToken(index=index, text=text, kind=kind, token_id=token_id))
        if text == HEAD_END:
            inside.discard(HEAD_START)
        if text == TAIL_END:
            inside.discard(TAIL_START)

    notes = []
    slots = []
    if image_batch is None:
        notes.append(
            f"This instance has no image ({item.image or 'none named'}; missing or unreadable): the model read the "
            "sentence as text only, so there are no CAF heatmaps and no PGI attention to show."
        )
    else:
        groups = [(pixels.shape[1], pixels.shape[-1]) for pixels in pixel_values]  # main image, then crops
        slots = query_images(groups, encoder.vision_config.patch_size, output, pixel_values, image_mask, processor)
        official = _setting(settings, "fusion_variant") == "official"
        for slot in slots:
            if slot.present:
                if official:  # both groups are object crops (large, then small)
                    size = "large" if slot.group == 0 else "small"
                    slot.source = f"object crop {slot.position + 1} ({size}) of {item.image}"
                else:
                    slot.source = item.image if slot.group == 0 else f"object crop {slot.position + 1} of {item.image}"
    layers = fused_layers(output, encoder)

    order = torch.argsort(probabilities, descending=True, stable=True).tolist()
    answers = [
        Answer(
            position=position,
            label=saved.labels[label],
            score=float(logits[label]),
            probability=float(probabilities[label]),
            is_target=saved.labels[label] == item.relation,
        )
        for position, label in enumerate(order, start=1)
    ]
    gold_position = next(answer.position for answer in answers if answer.is_target)
    sentence = " ".join(item.tokens)
    facts = {
        "model": str(folder),
        "data": str(data_folder),
        "instance": f"{split} #{instance} ({item.source})",
        "sentence": sentence,
        "head mention": item.head.name,
        "tail mention": item.tail.name,
        "image": item.image or "none",
        "predicted": f"{answers[0].label} (p = {answers[0].probability:.3f})",
        "gold": f"{item.relation} (position {gold_position} of {len(answers)})",
        "fused layers": encoder.config.fusion_layers,
        "vision patch size": encoder.vision_config.patch_size,
    }
    if features.get("truncated"):
        notes.append(f"The instance was cut at max_length={max_length}: a marker fell off; the classifier read [CLS] instead.")
    return Explanation(
        task="relation extraction",
        query=f"({item.head.name}, ?, {item.tail.name})",
        tokens=tokens,
        images=slots,
        layers=layers,
        answers=answers,
        target=item.relation,
        facts=facts,
        notes=notes,
    )
