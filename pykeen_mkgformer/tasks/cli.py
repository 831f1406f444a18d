"""The click options that ``pykeen-mkgformer re`` and ``pykeen-mkgformer ner`` share."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import click

from .runner import RunOptions, run_task
from .recipe import TaskRecipe
from .task import Task

__all__ = ["task_command"]


#: help of the recipe fields on the command line
_FIELD_HELP = {
    "fusion_variant": "'paper': the equations as written; 'official': the official MRE/MNER encoder, whose vision "
                      "input is a class token and the object crops (--crops, --small-crops) at 4 and 2 patches a side.",
    "padding": "'longest': pad each batch to its longest instance; 'max_length': every instance to --max-length (official).",
    "max_length": "Maximal sub-tokens per instance (official: 80 MNRE, 128 Twitter-2017).",
    "missing_images": "'masked': absent images/crops are left out of attention; 'zeros': zero images, attended (official).",
    "crop_source": "'stem': crops are <image stem>_<n> files; 'index': listed in the crops folders' index.json (official).",
    "epochs": "Training epochs.",
    "batch_size": "Batch size.",
    "lr": "Peak learning rate of the text tower (AdamW, linear warm-up/decay).",
    "vision_lr": "Learning rate of the vision tower [default: --lr].",
    "head_lr": "Learning rate of the task head (classifier, CRF) [default: --lr].",
    "weight_decay": "AdamW weight decay.",
    "decay_all": "Decay every parameter (official), not only matrices.",
    "warmup_ratio": "Share of all steps spent warming the learning rate up.",
    "max_grad_norm": "Gradient-norm clipping (0: none, official).",
    "marker_init": "New marker rows: 'transformers' (mean, padding_idx kept) or 'official' (N(0, 0.02), no padding_idx).",
    "marker_placement": "'nested' markers, or 'official' (every marker before a word; none after a final span).",
    "head_dropout": "Dropout before the head [default: the text tower's; official RE: 0 (defined, never applied)].",
    "train_classifier": "Train the RE classifier (the official optimizer never updates it: --no-train-classifier).",
    "crf_scope": "'words': CRF over first pieces, BIO tags; 'pieces': official CRF over every piece with its 13 tags.",
}


def _recipe_options(recipe_class: type[TaskRecipe]) -> list:
    """One click option per recipe field (default None: the recipe's value)."""
    hints = typing.get_type_hints(recipe_class)
    options = []
    for field in dataclasses.fields(recipe_class):
        hint = hints[field.name]
        flag = "--" + field.name.replace("_", "-")
        help_text = _FIELD_HELP.get(field.name, field.name.replace("_", " "))
        arguments = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
        kind = arguments[0]
        if typing.get_origin(hint) is typing.Literal:
            options.append(click.option(flag, type=click.Choice(list(typing.get_args(hint))), default=None, help=help_text))
        elif kind is bool:
            options.append(click.option(f"{flag}/--no-{flag[2:]}", default=None, help=help_text))
        elif typing.get_origin(kind) is typing.Literal:
            options.append(click.option(flag, type=click.Choice(list(typing.get_args(kind))), default=None, help=help_text))
        else:
            options.append(click.option(flag, type=kind, default=None, help=help_text))
    return options


def task_command(group: click.Group, task_class: type[Task], help_text: str) -> click.Command:
    """Add the sub-command ``task_class.name`` to ``group``: train, evaluate, write OUT, resume.

    Every field of the task's recipe is an option; ``--recipe`` picks the base (``paper`` or ``official``)."""
    recipe_fields = task_class.recipe_class.field_names()

    def command(**kwargs) -> None:
        overrides = {key: kwargs.pop(key) for key in list(kwargs) if key in recipe_fields}
        try:
            recipe = task_class.recipe_class.named(kwargs.pop("recipe"), **overrides)
            if recipe.max_grad_norm is not None and recipe.max_grad_norm <= 0:
                recipe = recipe.replace(max_grad_norm=None)
            metrics = run_task(task_class, RunOptions(recipe=recipe, **kwargs))
        except (ValueError, FileNotFoundError) as error:
            raise click.ClickException(str(error)) from error
        report = {key: metrics[key] for key in ("precision", "recall", "f1")}
        click.echo(json.dumps({"task": task_class.name, "test": report, "best_epoch": metrics["best_epoch"]}))
        _echo_counts(metrics)

    options = [
        click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Dataset folder."),
        click.option("--output", type=click.Path(file_okay=False, path_type=Path), required=True,
                     help="Folder for metrics.json, predictions.jsonl, model/ and the checkpoint to resume from."),
        click.option("--text-encoder", required=True, help="BERT-family checkpoint (Hugging Face name or folder) with its tokenizer."),
        click.option("--vision-encoder", default="tiny", show_default=True,
                     help="ViT/CLIP checkpoint, a JSON vision config (random tower), or 'tiny' (random 2-layer CLIP tower)."),
        click.option("--fusion-layers", type=click.IntRange(min=0), default=None, help="Fused last layers M [default: min(3, depths)]."),
        click.option("--recipe", type=click.Choice(["paper", "official"]), default="paper", show_default=True,
                     help="Base recipe: 'official' is the official script's pipeline and numbers (README: Fidelity); "
                          "the options below override single fields."),
        click.option("--limit", type=click.IntRange(min=1), default=None, help="Use at most N instances of each split."),
        click.option("--seed", type=int, default=42, show_default=True),
        click.option("--train-fraction", type=click.FloatRange(min=0, max=1, min_open=True), default=None,
                     help="Low resource: train on this random fraction of the training split."),
        click.option("--shots", type=click.IntRange(min=1), default=None, help="Low resource: K training instances per class."),
        click.option("--skip-bad-lines", is_flag=True, help="Count and report malformed lines instead of stopping at the first."),
        click.option("--images", type=click.Path(file_okay=False, path_type=Path), default=None, help="Image folder [default: DATA/images]."),
        click.option("--crops", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                     help="Folder of object crops (<image stem>_<n>.jpg, or listed in its index.json with --crop-source index)."),
        click.option("--small-crops", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                     help="Official variant: folder of the small crops (the official detector crops); never --crops."),
        click.option("--device", default="cpu", show_default=True),
        *_recipe_options(task_class.recipe_class),
    ]
    for option in reversed(options):
        command = option(command)
    return group.command(name=task_class.name, help=help_text)(command)


def _echo_counts(metrics: dict) -> None:
    """Say what was left out: skipped lines, text-only instances, truncations."""
    if metrics["bad_lines"]["skipped"]:
        click.echo(f"skipped {metrics['bad_lines']['skipped']} malformed lines (listed in metrics.json)", err=True)
    for kind, where in metrics["bad_lines"].get("notices", {}).items():
        click.echo(f"ignored {len(where)} x {kind} (listed in metrics.json)", err=True)
    skipped_images = metrics["image_files"].get("skipped", [])
    if skipped_images:
        click.echo(f"skipped {len(skipped_images)} unusable image files (listed with reasons in metrics.json)", err=True)
    text_only = {split: info["text_only"] for split, info in metrics["images"].items()}
    click.echo(f"instances without an image (text-only): {text_only}", err=True)
    if any(metrics["truncated"].values()):
        click.echo(f"instances cut at --max-length: {metrics['truncated']}", err=True)
