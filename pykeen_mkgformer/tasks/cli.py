"""The click options that ``pykeen-mkgformer re`` and ``pykeen-mkgformer ner`` share."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .runner import RunOptions, run_task
from .task import Task

__all__ = ["task_command"]


def task_command(group: click.Group, task_class: type[Task], help_text: str, default_lr: float = 5e-5) -> click.Command:
    """Add the sub-command ``task_class.name`` to ``group``: train, evaluate, write OUT, resume."""

    @group.command(name=task_class.name, help=help_text)
    @click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Dataset folder.")
    @click.option("--output", type=click.Path(file_okay=False, path_type=Path), required=True,
                  help="Folder for metrics.json, predictions.jsonl, model/ and the checkpoint to resume from.")
    @click.option("--text-encoder", required=True, help="BERT-family checkpoint (Hugging Face name or folder) with its tokenizer.")
    @click.option("--vision-encoder", default="tiny", show_default=True,
                  help="ViT/CLIP checkpoint, a JSON vision config (random tower), or 'tiny' (random 2-layer CLIP tower).")
    @click.option("--fusion-layers", type=click.IntRange(min=0), default=None, help="Fused last layers M [default: min(3, depths)].")
    @click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
    @click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
    @click.option("--lr", type=float, default=default_lr, show_default=True, help="Peak learning rate (AdamW, linear warm-up/decay).")
    @click.option("--head-lr", type=float, default=None, help="Learning rate of the task head (classifier, CRF) [default: --lr].")
    @click.option("--limit", type=click.IntRange(min=1), default=None, help="Use at most N instances of each split.")
    @click.option("--seed", type=int, default=42, show_default=True)
    @click.option("--max-length", type=click.IntRange(min=8), default=128, show_default=True, help="Maximal sub-tokens per instance.")
    @click.option("--train-fraction", type=click.FloatRange(min=0, max=1, min_open=True), default=None,
                  help="Low resource: train on this random fraction of the training split.")
    @click.option("--shots", type=click.IntRange(min=1), default=None, help="Low resource: K training instances per class.")
    @click.option("--skip-bad-lines", is_flag=True, help="Count and report malformed lines instead of stopping at the first.")
    @click.option("--images", type=click.Path(file_okay=False, path_type=Path), default=None, help="Image folder [default: DATA/images].")
    @click.option("--crops", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                  help="Folder of object crops <image stem>_<n>.jpg, used as extra images.")
    @click.option("--fusion-variant", type=click.Choice(["paper", "official"]), default="paper", show_default=True,
                  help="'paper': the equations as written; 'official': the official MRE/MNER encoder, whose vision "
                       "input is a class token and the object crops (--crops) at 4 and 2 patches a side.")
    @click.option("--small-crops", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                  help="Official variant: folder of the small crops (the official rcnn crops) [default: --crops].")
    @click.option("--device", default="cpu", show_default=True)
    def command(**kwargs) -> None:
        try:
            metrics = run_task(task_class, RunOptions(**kwargs))
        except (ValueError, FileNotFoundError) as error:
            raise click.ClickException(str(error)) from error
        report = {key: metrics[key] for key in ("precision", "recall", "f1")}
        click.echo(json.dumps({"task": task_class.name, "test": report, "best_epoch": metrics["best_epoch"]}))
        _echo_counts(metrics)

    return command


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
