"""The demo: MKGformer against TransE and RotatE on the bundled WN18IMGMini, one PyKEEN evaluator.

All three models see the same training / validation / testing triples and are scored by the same
filtered :class:`pykeen.evaluation.RankBasedEvaluator` (realistic ranks, both sides), so the table
compares like with like. MKGformer runs with small random towers (a 2-layer BERT whose WordPiece
vocabulary is built from the graph's texts, a 2-layer CLIP vision transformer, one fused layer); a
pretrained MiniLM text tower did not finish two epochs in 19 CPU minutes here. The default epochs
give the three models roughly equal training time on 2 CPU cores (about 2 to 2.5 minutes each;
MKGformer 40 epochs, TransE and RotatE 120: 150 until the ShapesKG table was added, trimmed so that
the whole demo keeps its time, see RESULTS.md), so that none wins by training longer. No pretrained
vision weights can be fetched offline. Real images are used when ``PYKEEN_MKGFORMER_DATA`` points at
the benchmark data (else entities are text-only).

A second table (:func:`run_shapes_demo`) shows what images buy on a fresh machine, where the WN18IMGMini
table runs text-only: the bundled, rendered ``ShapesKG``, whose test heads never occur in training and
whose tails can only be read from the heads' pictures. MKGformer, MKGformer without images, TransE and
RotatE, the same filtered evaluator, tail prediction (as the dataset prescribes).
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from .terminal import warn_at_caller

__all__ = [
    "DemoRow",
    "run_demo",
    "run_shapes_demo",
    "format_table",
    "default_model_settings",
    "shapes_model_settings",
    "SHAPES_MODELS",
    "training_kwargs_for",
    "TEXT_ONLY_NOTE",
]

logger = logging.getLogger(__name__)

METRICS = ("mrr", "hits_at_1", "hits_at_3", "hits_at_10", "mr")

#: said once when WN18IMGMini finds no images (instead of the model's own warning, once per model)
TEXT_ONLY_NOTE = (
    "WN18IMGMini has no images here (set PYKEEN_MKGFORMER_DATA to the benchmark data for its real images): "
    "its MKGformer runs text-only; the ShapesKG table shows what images buy."
)


def training_kwargs_for(device: str) -> dict[str, dict[str, Any]]:
    """The pipeline options that depend on the device: pinned memory and PyKEEN's memory probing (a trial
    batch before training) only with an accelerator; on a CPU they do nothing but warn."""
    accelerator = torch.device(device).type != "cpu"
    return dict(
        training_kwargs=dict(pin_memory=accelerator),
        training_loop_kwargs=dict(automatic_memory_optimization=accelerator),
    )


@dataclass
class DemoRow:
    """One model's line of the table."""

    model: str
    mrr: float
    hits_at_1: float
    hits_at_3: float
    hits_at_10: float
    mr: float
    train_seconds: float
    parameters: int
    epochs: int


def default_model_settings(
    epochs: int | None = None, kge_epochs: int | None = None, entity_modeling_epochs: int | None = None
) -> dict[str, dict[str, Any]]:
    """The pipeline keyword arguments of each model in the demo (all three fit a few minutes on 2 CPU cores)."""
    from .kgc.presets import tiny_model_kwargs, tiny_text_encoder

    return {
        "MKGformer": dict(
            model="MKGformer",
            model_kwargs=tiny_model_kwargs(
                text_encoder=tiny_text_encoder(max_length=32),
                entity_modeling_epochs=2 if entity_modeling_epochs is None else entity_modeling_epochs,
                entity_modeling_batch_size=64,
                entity_modeling_lr=1e-2,
            ),
            loss="CrossEntropy",
            training_loop="lcwa",
            training_kwargs=dict(num_epochs=epochs or 40, batch_size=64),
            optimizer="Adam",
            optimizer_kwargs=dict(lr=3e-3),
        ),
        "TransE": dict(
            model="TransE",
            model_kwargs=dict(embedding_dim=128, scoring_fct_norm=1),
            training_loop="slcwa",
            negative_sampler="basic",
            negative_sampler_kwargs=dict(num_negs_per_pos=16),
            training_kwargs=dict(num_epochs=kge_epochs or 120, batch_size=256),
            optimizer="Adam",
            optimizer_kwargs=dict(lr=1e-2),
        ),
        "RotatE": dict(
            model="RotatE",
            model_kwargs=dict(embedding_dim=128),
            training_loop="slcwa",
            negative_sampler="basic",
            negative_sampler_kwargs=dict(num_negs_per_pos=16),
            loss="NSSALoss",
            loss_kwargs=dict(margin=6.0, adversarial_temperature=1.0),
            training_kwargs=dict(num_epochs=kge_epochs or 120, batch_size=256),
            optimizer="Adam",
            optimizer_kwargs=dict(lr=1e-2),
        ),
    }


#: the models of the ShapesKG table
SHAPES_MODELS = ("MKGformer", "MKGformer (no images)", "TransE", "RotatE")


def shapes_model_settings(epochs: int | None = None, kge_epochs: int | None = None) -> dict[str, dict[str, Any]]:
    """Pipeline keyword arguments of the ShapesKG table: MKGformer (2 fused layers, ``epochs`` stage-1
    and stage-2 epochs, default 30; the one source of these settings: the ShapesKG quality and inductive
    tests and ``benchmarks/{ablations,inductive,baselines}.py`` take them from here), the same without images, and
    the demo's TransE and RotatE with ``kge_epochs`` (default 25, to keep the demo's time: the
    held-out test heads get no training whatever the epochs, so more cannot help on the test triples)."""
    from .kgc.presets import tiny_model_kwargs

    epochs = epochs or 30
    mkgformer = dict(
        model="MKGformer",
        model_kwargs=tiny_model_kwargs(fusion_layers=2, max_images=1, entity_modeling_epochs=epochs, entity_modeling_lr=1e-2),
        loss="bcewithlogits",
        training_loop="lcwa",
        training_kwargs=dict(num_epochs=epochs, batch_size=32),
        optimizer="Adam",
        optimizer_kwargs=dict(lr=3e-3),
    )
    without = dict(mkgformer, model_kwargs=dict(mkgformer["model_kwargs"], max_images=0))
    kge = default_model_settings(kge_epochs=kge_epochs or 25)
    return {"MKGformer": mkgformer, "MKGformer (no images)": without, "TransE": kge["TransE"], "RotatE": kge["RotatE"]}


def run_shapes_demo(
    *,
    output: Path,
    device: str = "cpu",
    epochs: int | None = None,
    kge_epochs: int | None = None,
    models: Sequence[str] = SHAPES_MODELS,
    seed: int = 42,
) -> list[DemoRow]:
    """Train and evaluate each model on ShapesKG (tail prediction for held-out heads); write results under ``output``.

    :param output: folder for each model's PyKEEN results and ``summary.json`` / ``summary.md``
    :param epochs: MKGformer's stage-1 and stage-2 epochs (default 30)
    :param kge_epochs: TransE's and RotatE's epochs (default 25)
    :param models: which of :data:`SHAPES_MODELS` to run
    """
    from .data import ShapesKG

    settings = shapes_model_settings(epochs, kge_epochs)
    unknown = sorted(set(models) - set(settings))
    if unknown:
        raise ValueError(f"Unknown ShapesKG demo models {unknown}; choose from {sorted(settings)}.")
    return _run_table(
        ShapesKG(create_inverse_triples=True),
        {name: settings[name] for name in models},
        output=Path(output),
        device=device,
        seed=seed,
        evaluation_kwargs=dict(batch_size=256, targets=("tail",)),
        side="tail",
    )


def _run_table(
    dataset: Any,
    settings: dict[str, dict[str, Any]],
    *,
    output: Path,
    device: str,
    seed: int,
    evaluation_kwargs: dict[str, Any],
    side: str = "both",
) -> list[DemoRow]:
    """Train, evaluate and save each model; write ``summary.json`` and ``summary.md``."""
    from pykeen.pipeline import pipeline

    from .data.atomic import write_text
    from .kgc.saved_model import save_pipeline_result

    output.mkdir(parents=True, exist_ok=True)
    rows = []
    device_kwargs = training_kwargs_for(device)
    for name, kwargs in settings.items():
        logger.info("training %s on %s", name, dataset)
        kwargs = {
            **kwargs,
            **{key: {**kwargs.get(key, {}), **value} for key, value in device_kwargs.items()},
        }
        result = pipeline(
            dataset=dataset,
            evaluator="rankbased",
            evaluator_kwargs=dict(filtered=True),
            evaluation_kwargs=evaluation_kwargs,
            random_seed=seed,
            device=device,
            **kwargs,
        )
        # PyKEEN's files plus, for MKGformer, the safe model folder mkgformer/ that predict / explain open
        save_pipeline_result(
            result, output / name.replace(" ", "_").replace("(", "").replace(")", ""), overwrite=True, dataset=dataset
        )
        metrics = {m: float(result.metric_results.get_metric(f"{side}.realistic.{m}")) for m in METRICS}
        rows.append(
            DemoRow(
                model=name,
                **metrics,
                train_seconds=result.train_seconds,
                parameters=sum(p.numel() for p in result.model.parameters()),
                epochs=kwargs["training_kwargs"]["num_epochs"],
            )
        )
    write_text(output / "summary.json", json.dumps([asdict(r) for r in rows], indent=2))
    write_text(output / "summary.md", format_table(rows) + "\n")
    return rows


def run_demo(
    *,
    output: Path,
    device: str = "cpu",
    epochs: int | None = None,
    kge_epochs: int | None = None,
    entity_modeling_epochs: int | None = None,
    models: Sequence[str] = ("MKGformer", "TransE", "RotatE"),
    seed: int = 42,
) -> list[DemoRow]:
    """Train and evaluate each model on WN18IMGMini; write every result under ``output``.

    :param output: folder for each model's PyKEEN results and the summary (``summary.json``, ``summary.md``)
    :param device: ``cpu`` or ``cuda``
    :param epochs: MKGformer's stage-2 epochs (default 40)
    :param kge_epochs: TransE's and RotatE's epochs (default 120)
    :param entity_modeling_epochs: MKGformer's stage-1 epochs (default 2)
    :param models: which of the three to run
    :param seed: PyKEEN's random seed, the same for every model
    """
    from .data import WN18IMGMini

    settings = default_model_settings(epochs, kge_epochs, entity_modeling_epochs)
    unknown = sorted(set(models) - set(settings))
    if unknown:
        raise ValueError(f"Unknown demo models {unknown}; choose from {sorted(settings)}.")
    dataset = WN18IMGMini(create_inverse_triples=True)
    with warnings.catch_warnings():
        if "MKGformer" in models and not dataset.training.num_imaged_entities:
            warn_at_caller(TEXT_ONLY_NOTE)
            warnings.filterwarnings("ignore", message="No entity has an image", category=UserWarning)
        return _run_table(
            dataset,
            {name: settings[name] for name in models},
            output=Path(output),
            device=device,
            seed=seed,
            evaluation_kwargs=dict(batch_size=256),
        )


def format_table(rows: Sequence[DemoRow]) -> str:
    """A Markdown table (readable as plain text too)."""
    lines = [
        "| model | MRR | Hits@1 | Hits@3 | Hits@10 | MR | train time (s) | parameters | epochs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.mrr:.3f} | {r.hits_at_1:.3f} | {r.hits_at_3:.3f} | {r.hits_at_10:.3f} | "
            f"{r.mr:.1f} | {r.train_seconds:.0f} | {r.parameters:,} | {r.epochs} |"
        )
    return "\n".join(lines)
