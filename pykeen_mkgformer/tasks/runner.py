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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.utils.data import DataLoader

from .encoders import load_encoder
from .images import InstanceImages
from .lines import BadLines
from .sampling import sample_fraction, sample_shots
from .task import SPLITS, Task, TaskModel
from .training import FineTuner, TrainingSettings, length_bucketed_batches, predict

__all__ = ["RunOptions", "run_task"]

logger = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """Everything the ``re`` and ``ner`` commands take."""

    data: Path
    output: Path
    text_encoder: str
    vision_encoder: str = "tiny"
    fusion_layers: int | None = None
    epochs: int = 5
    batch_size: int = 16
    lr: float = 5e-5
    head_lr: float | None = None
    seed: int = 42
    #: read at most this many instances of each split
    limit: int | None = None
    train_fraction: float | None = None
    shots: int | None = None
    max_length: int = 128
    device: str = "cpu"
    skip_bad_lines: bool = False
    #: folder of the instances' images; ``DATA/images`` when None
    images: Path | None = None
    #: folder of object crops ``<image stem>_<n>.jpg``; none when None
    crops: Path | None = None
    progress: bool = True

    def signature(self) -> dict[str, Any]:
        """The settings that decide the result (what a resumed run must share)."""
        ignored = {"output", "device", "progress"}
        return {key: str(value) for key, value in asdict(self).items() if key not in ignored}


def run_task(task_class: type[Task], options: RunOptions) -> dict[str, Any]:
    """Fine-tune and evaluate ``task_class`` on ``options.data``; returns what metrics.json holds."""
    if options.train_fraction is not None and options.shots is not None:
        raise ValueError("Give at most one of --train-fraction and --shots.")
    output = Path(options.output)
    output.mkdir(parents=True, exist_ok=True)
    device = torch.device(options.device)
    torch.manual_seed(options.seed)

    bad_lines = BadLines(skip=options.skip_bad_lines)
    task = task_class(Path(options.data), bad_lines=bad_lines)
    splits = {split: task.read(split) for split in SPLITS}
    read_counts = {split: len(instances) for split, instances in splits.items()}
    if options.limit is not None:
        splits = {split: instances[: options.limit] for split, instances in splits.items()}
    if options.train_fraction is not None:
        splits["train"] = sample_fraction(splits["train"], options.train_fraction, seed=options.seed)
    elif options.shots is not None:
        splits["train"] = sample_shots(splits["train"], options.shots, task.classes, seed=options.seed)

    bundle = load_encoder(options.text_encoder, options.vision_encoder, fusion_layers=options.fusion_layers)
    tokenizer = bundle.tokenizer
    task.setup(tokenizer, bundle.encoder, splits["train"])
    images = InstanceImages(
        Path(options.images) if options.images is not None else Path(options.data) / "images",
        bundle.image_processor,
        crops_folder=Path(options.crops) if options.crops is not None else None,
    )
    features = {
        split: [task.features(instance, tokenizer, options.max_length) for instance in instances]
        for split, instances in splits.items()
    }
    pixels = {
        split: images.prepare([task.image_name(instance) for instance in instances], progress=options.progress)
        for split, instances in splits.items()
    }

    def loader(split: str, generator: torch.Generator | None = None) -> DataLoader:
        rows = list(zip(features[split], pixels[split]))
        lengths = [len(row["input_ids"]) for row in features[split]]
        return DataLoader(
            rows,
            batch_sampler=length_bucketed_batches(lengths, options.batch_size, generator),
            collate_fn=lambda batch: {
                **task.collate([row for row, _ in batch], tokenizer.pad_token_id),
                "images": images.batch([item for _, item in batch]),
            },
        )

    def predictions(trained: TaskModel, split: str) -> list:
        """Predictions in the split's order (the loader batches by length)."""
        order = [index for batch in length_bucketed_batches([len(r["input_ids"]) for r in features[split]], options.batch_size) for index in batch]
        predicted = predict(trained, loader(split), device, progress=options.progress, desc=split)
        result: list = [None] * len(order)
        for index, prediction in zip(order, predicted):
            result[index] = prediction
        return result

    torch.manual_seed(options.seed)
    model = task.build_model(bundle.encoder)
    settings = TrainingSettings(
        epochs=options.epochs, batch_size=options.batch_size, lr=options.lr, head_lr=options.head_lr, seed=options.seed
    )
    tuner = FineTuner(model, settings, output, signature=options.signature(), device=device, progress=options.progress)
    training = tuner.fit(
        lambda generator: loader("train", generator),
        lambda trained: task.score(splits["dev"], predictions(trained, "dev")),
    )

    test_predictions = predictions(model, "test")
    test = task.score(splits["test"], test_predictions)
    metrics = {
        "task": task.name,
        **{key: test[key] for key in ("precision", "recall", "f1")},
        "test": test,
        **training,
        "instances": {split: len(instances) for split, instances in splits.items()},
        "instances_read": read_counts,
        "truncated": {split: sum(bool(f.get("truncated")) for f in rows) for split, rows in features.items()},
        "images": {split: images.summary(items) for split, items in pixels.items()},
        "bad_lines": bad_lines.summary(),
        "encoder": bundle.description,
        "settings": {**options.signature(), "device": options.device},
    }
    _write_outputs(output, metrics, [task.prediction_record(i, p) for i, p in zip(splits["test"], test_predictions)])
    model.save(output / "model")
    tokenizer.save_pretrained(output / "model" / "tokenizer")
    (output / "model" / "task.json").write_text(json.dumps(task.describe(), indent=2), encoding="utf-8")
    return metrics


def _write_outputs(output: Path, metrics: dict[str, Any], records: Sequence[dict[str, Any]]) -> None:
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    with (output / "predictions.jsonl").open("w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
