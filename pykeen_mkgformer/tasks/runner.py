"""One run of a task: read the data folder, fine-tune, evaluate, write everything to the output folder.

Output folder:

- ``metrics.json``: test ``precision``, ``recall``, ``f1`` (+ ``per_label``), the development
  scores per epoch, images used / missing, skipped lines, truncations, settings
- ``predictions.jsonl``: one test prediction per line
- ``model/``: the trained encoder (``encoder/``), head (``head.safetensors``), tokenizer and ``task.json``
- ``checkpoint.pt`` / ``best_model.pt``: what a resumed run continues from
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from ..data.atomic import atomic_folder, atomic_write, write_text
from .encoders import load_encoder
from .images import InstanceImages, OfficialCropImages
from .lines import BadLines
from .recipe import TaskRecipe, resolve_task_recipe
from .sampling import sample_fraction, sample_shots
from .task import SPLITS, Task, TaskModel
from .training import FineTuner, TrainingSettings, length_bucketed_batches, predict

__all__ = ["RunOptions", "PreparedData", "run_task", "read_splits", "build_images", "training_settings"]

logger = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """Everything the ``re`` and ``ner`` commands take."""

    data: Path
    output: Path
    text_encoder: str
    vision_encoder: str = "tiny"
    fusion_layers: int | None = None
    #: ``"paper"``, ``"official"``, a dict (``{"base": "official", ...}``) or the task's recipe object
    recipe: Any = "paper"
    #: recipe fields to override (None values ignored)
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    #: shortcuts for the most used recipe fields (None: the recipe's value)
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    head_lr: float | None = None
    seed: int = 42
    #: read at most this many instances of each split
    limit: int | None = None
    train_fraction: float | None = None
    shots: int | None = None
    max_length: int | None = None
    device: str = "cpu"
    skip_bad_lines: bool = False
    #: folder of the instances' images; ``DATA/images`` when None
    images: Path | None = None
    #: folder of object crops ``<image stem>_<n>.jpg``; none when None
    crops: Path | None = None
    #: ``"paper"`` or ``"official"`` (the official MRE / MNER encoder and its crop input); None: the recipe's
    fusion_variant: str | None = None
    #: official variant: the small (2 patches a side) crops' folder (never defaults to ``crops``)
    small_crops: Path | None = None
    progress: bool = True

    #: the recipe fields the shortcuts above set
    SHORTCUTS = ("epochs", "batch_size", "lr", "head_lr", "max_length", "fusion_variant")

    def resolve_recipe(self, recipe_class: type[TaskRecipe]) -> TaskRecipe:
        """The run's recipe: the named / given one with the overrides and shortcuts applied."""
        base = resolve_task_recipe(recipe_class, self.recipe)
        changes = {key: value for key, value in self.recipe_overrides.items() if value is not None}
        changes.update({key: getattr(self, key) for key in self.SHORTCUTS if getattr(self, key) is not None})
        unknown = set(changes) - recipe_class.field_names()
        if unknown:
            raise ValueError(f"{sorted(unknown)} are not {recipe_class.__name__} fields.")
        return base.replace(**changes)

    def signature(self, recipe: TaskRecipe | None = None) -> dict[str, Any]:
        """The settings that decide the result (what a resumed run must share), with the resolved recipe's fields."""
        ignored = {"output", "device", "progress", "recipe", "recipe_overrides", *self.SHORTCUTS}
        settings = {key: str(value) for key, value in asdict(self).items() if key not in ignored}
        if recipe is not None:
            settings.update({key: str(value) for key, value in recipe.to_dict().items()})
        return settings


def read_splits(task: Task, options: RunOptions) -> dict[str, list]:
    """Train, dev and test instances, cut to ``--limit``, the training split sampled for low resource.

    Every split is read whole (every line checked) before anything else happens.

    :raises DataError: naming the file (and line) of a split that is missing, not a regular file,
        empty, undecodable, or malformed (unless ``--skip-bad-lines``)
    """
    if options.train_fraction is not None and options.shots is not None:
        raise ValueError("Give at most one of --train-fraction and --shots.")
    splits = {split: task.read(split) for split in SPLITS}
    if options.limit is not None:
        splits = {split: instances[: options.limit] for split, instances in splits.items()}
    if options.train_fraction is not None:
        splits["train"] = sample_fraction(splits["train"], options.train_fraction, seed=options.seed)
    elif options.shots is not None:
        splits["train"] = sample_shots(splits["train"], options.shots, task.classes, seed=options.seed)
    return splits


class PreparedData:
    """The splits as features and images, batched by length."""

    def __init__(
        self,
        task: Task,
        splits: dict[str, list],
        tokenizer: PreTrainedTokenizerBase,
        images: InstanceImages,
        *,
        max_length: int,
        batch_size: int,
        progress: bool = True,
    ):
        self.task, self.splits, self.tokenizer, self.images = task, splits, tokenizer, images
        self.batch_size, self.progress = batch_size, progress
        self.features = {
            split: [task.features(instance, tokenizer, max_length) for instance in instances]
            for split, instances in splits.items()
        }
        escaped = {split: sum(int(f.get("escaped_markers", 0)) for f in features) for split, features in self.features.items()}
        if any(escaped.values()):
            logger.warning("marker strings in the text were escaped (so they cannot move the entity markers): %s", escaped)
        self.pixels = {split: self._prepare(split, instances) for split, instances in splits.items()}

    def _prepare(self, split: str, instances: list) -> list:
        names = [self.task.image_name(instance) for instance in instances]
        if isinstance(self.images, OfficialCropImages):
            keys = [self.task.crop_key(instance) for instance in instances]
            return self.images.prepare(names, keys=keys, split=split, progress=self.progress)
        return self.images.prepare(names, progress=self.progress)

    def _batches(self, split: str, generator: torch.Generator | None) -> list[list[int]]:
        lengths = [len(feature["input_ids"]) for feature in self.features[split]]
        return length_bucketed_batches(lengths, self.batch_size, generator)

    def loader(self, split: str, generator: torch.Generator | None = None) -> DataLoader:
        """Batches of the split: shuffled with ``generator``, else sorted by length."""
        return DataLoader(
            list(zip(self.features[split], self.pixels[split])),
            batch_sampler=self._batches(split, generator),
            collate_fn=self._collate,
        )

    def _collate(self, rows: Sequence[tuple[dict, tuple]]) -> dict[str, Any]:
        return {
            **self.task.collate([features for features, _ in rows], self.tokenizer.pad_token_id),
            "images": self.images.batch([pixels for _, pixels in rows]),
        }

    def predict(self, model: TaskModel, split: str, device: torch.device) -> list:
        """The model's predictions, in the split's order."""
        order = [index for batch in self._batches(split, None) for index in batch]
        predicted = predict(model, self.loader(split), device, progress=self.progress, desc=split)
        result: list = [None] * len(order)
        for index, prediction in zip(order, predicted):
            result[index] = prediction
        return result

    def summary(self) -> dict[str, Any]:
        """Instances, truncations and images per split."""
        return {
            "instances": {split: len(instances) for split, instances in self.splits.items()},
            "truncated": {
                split: sum(bool(feature.get("truncated")) for feature in features) for split, features in self.features.items()
            },
            # marker strings found in the text itself (RE), escaped so that they cannot move the markers
            "escaped_markers": {
                split: sum(int(feature.get("escaped_markers", 0)) for feature in features)
                for split, features in self.features.items()
            },
            "images": {split: self.images.summary(items) for split, items in self.pixels.items()},
            "image_files": self.images.file_summary(),
        }


def run_task(task_class: type[Task], options: RunOptions) -> dict[str, Any]:
    """Fine-tune and evaluate ``task_class`` on ``options.data``; returns what metrics.json holds.

    The data are validated first: every split is read, checked and turned into features, and every
    image decoded, before the output folder is created or touched and before any training step; a
    data error therefore never leaves a half-written (or overwritten) output behind.
    """
    output = Path(options.output)
    _check_outputs(output, options)
    device = torch.device(options.device)
    bad_lines = BadLines(skip=options.skip_bad_lines)
    recipe = options.resolve_recipe(task_class.recipe_class)
    task = task_class(Path(options.data), bad_lines=bad_lines, recipe=recipe)
    splits = read_splits(task, options)

    torch.manual_seed(options.seed)  # the random vision tower and fusion weights
    bundle = load_encoder(
        options.text_encoder, options.vision_encoder, fusion_layers=options.fusion_layers,
        fusion_variant=recipe.fusion_variant,
    )
    task.setup(bundle.tokenizer, bundle.encoder, splits["train"])
    images = build_images(recipe, bundle, options)
    data = PreparedData(
        task, splits, bundle.tokenizer, images,
        max_length=recipe.max_length, batch_size=recipe.batch_size, progress=options.progress,
    )

    output.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(options.seed)
    model = task.build_model(bundle.encoder)
    settings = training_settings(recipe, seed=options.seed)
    signature = options.signature(recipe)
    tuner = FineTuner(model, settings, output, signature=signature, device=device, progress=options.progress)
    training = tuner.fit(
        lambda generator: data.loader("train", generator),
        lambda trained: task.score(splits["dev"], data.predict(trained, "dev", device)),
    )

    predictions = data.predict(model, "test", device)
    test = task.score(splits["test"], predictions)
    metrics = {
        "task": task.name,
        **{key: test[key] for key in ("precision", "recall", "f1")},
        "test": test,
        **training,
        **data.summary(),
        "bad_lines": bad_lines.summary(),
        "encoder": bundle.description,
        "recipe": recipe.to_dict(),
        "settings": {**signature, "device": options.device},
    }
    _write_outputs(output, metrics, [task.prediction_record(i, p) for i, p in zip(splits["test"], predictions)])
    # the model folder is written aside and renamed into place: never half a model
    with atomic_folder(output / "model", overwrite=True) as staging:
        model.save(staging)
        bundle.tokenizer.save_pretrained(staging / "tokenizer")
        write_text(staging / "task.json", json.dumps(task.describe(), indent=2))
    return metrics


#: what a run writes into its output folder (a resumed run rewrites them: that is its purpose)
OUTPUT_NAMES = ("metrics.json", "predictions.jsonl", "model", "checkpoint.pt", "best_model.pt")


def _check_outputs(output: Path, options: RunOptions) -> None:
    """Refuse an output folder whose files would replace one of the run's inputs (naming both)."""
    from ..data.atomic import check_output

    inputs = {"--data": options.data, "--images": options.images, "--crops": options.crops, "--small-crops": options.small_crops}
    for name in OUTPUT_NAMES:
        check_output(output / name, inputs, option="--output", overwrite=True)


def build_images(recipe: TaskRecipe, bundle, options: RunOptions) -> InstanceImages | OfficialCropImages:
    """The run's image source: the official crop groups under ``fusion_variant="official"``, else main image + crops."""
    image_folder = Path(options.images) if options.images is not None else Path(options.data) / "images"
    crops = Path(options.crops) if options.crops is not None else None
    if recipe.fusion_variant == "official":
        return OfficialCropImages(
            image_folder, bundle.crop_processors, patch_size=bundle.encoder.vision_config.patch_size,
            crops_folder=crops, small_crops_folder=Path(options.small_crops) if options.small_crops else None,
            crop_source=recipe.crop_source, missing=recipe.missing_images,
        )
    return InstanceImages(image_folder, bundle.image_processor, crops_folder=crops, missing=recipe.missing_images)


def training_settings(recipe: TaskRecipe, *, seed: int) -> TrainingSettings:
    """The fine-tuning loop's settings: every field of :class:`TrainingSettings` but the seed is the recipe's field of that name."""
    numbers = {item.name: getattr(recipe, item.name) for item in fields(TrainingSettings) if item.name != "seed"}
    return TrainingSettings(**numbers, seed=seed)


def _write_outputs(output: Path, metrics: dict[str, Any], records: Sequence[dict[str, Any]]) -> None:
    """metrics.json and predictions.jsonl, each written atomically (a temporary name, then a rename)."""
    write_text(output / "metrics.json", json.dumps(metrics, indent=2))
    with atomic_write(output / "predictions.jsonl") as file:
        for record in records:
            # ASCII escapes: any token or label (lone surrogates included) round-trips
            file.write(json.dumps(record, ensure_ascii=True) + "\n")
