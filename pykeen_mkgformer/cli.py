"""The ``pykeen-mkgformer`` command."""

from __future__ import annotations

from pathlib import Path

import click

from .explain.cli import explain_command
from .kgc.cli import predict_command
from .ner.train import NamedEntityRecognition
from .re.train import RelationExtraction
from .tasks.cli import task_command

__all__ = ["main"]


@click.group()
@click.version_option(package_name="pykeen-mkgformer")
def main() -> None:
    """MKGformer for PyKEEN: multimodal link prediction, relation extraction and NER."""


main.add_command(explain_command)
main.add_command(predict_command)
task_command(
    main,
    RelationExtraction,
    "Multimodal relation extraction (MNRE): fine-tune the hybrid encoder with entity markers, evaluate, write OUT.",
)
task_command(
    main,
    NamedEntityRecognition,
    "Multimodal NER (Twitter-2017, CoNLL with IMGID lines): fine-tune the hybrid encoder with a CRF, evaluate, write OUT.",
)


@main.command()
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=Path("mkgformer-demo"),
              show_default=True, help="Folder for every model's PyKEEN results and the summary table.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--epochs", type=int, default=None, help="MKGformer's training epochs (default 40).")
@click.option("--kge-epochs", type=int, default=None, help="TransE's and RotatE's epochs (default 150).")
@click.option("--entity-modeling-epochs", type=int, default=None, help="MKGformer's stage-1 epochs (default 2).")
@click.option("--model", "models", multiple=True, type=click.Choice(["MKGformer", "TransE", "RotatE"]),
              help="Run only these models (repeatable; default all three).")
@click.option("--seed", type=int, default=42, show_default=True)
def demo(output: Path, device: str, epochs: int | None, kge_epochs: int | None,
         entity_modeling_epochs: int | None, models: tuple[str, ...], seed: int) -> None:
    """MKGformer vs TransE vs RotatE on the bundled WN18IMGMini, one filtered evaluator, one table.

    Real images are used when PYKEEN_MKGFORMER_DATA points at the benchmark data.
    """
    from .demo import format_table, run_demo

    rows = run_demo(
        output=output,
        device=device,
        epochs=epochs,
        kge_epochs=kge_epochs,
        entity_modeling_epochs=entity_modeling_epochs,
        models=models or ("MKGformer", "TransE", "RotatE"),
        seed=seed,
    )
    click.echo("\nWN18IMGMini, filtered rank-based evaluation (both sides, realistic ranks), test split:\n")
    click.echo(format_table(rows))
    click.echo(f"\nFull results (one PyKEEN results folder per model, summary.json, summary.md): {output.resolve()}")
