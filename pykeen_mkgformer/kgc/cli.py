"""The ``pykeen-mkgformer predict`` command."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

__all__ = ["predict_command"]


@click.command(name="predict")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="A PyKEEN results folder (save_to_directory, the demo, --save of this command) or an experiment folder.")
@click.option("--head", default=None, help="Head entity (label or unique name): predict the tail.")
@click.option("--relation", required=True, help="Relation (label or text).")
@click.option("--tail", default=None, help="Tail entity: predict the head; with --head, report this tail's rank.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Answers to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--add-entities", "entities_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="JSON Lines, one new entity a line: {\"label\": ..., \"description\": ..., \"images\": [paths], \"name\": ...}; "
                   "relative image paths are read from the file's folder.")
@click.option("--entity-modeling-epochs", type=click.IntRange(min=0), default=0, show_default=True,
              help="Stage-1 epochs on the new entities' rows only (other weights frozen).")
@click.option("--save", "save_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the extended model here (trained_model.pkl, training_triples/).")
@click.option("--replicate", type=click.IntRange(min=0), default=None, help="Replicate of an experiment folder [default: the first].")
@click.option("--device", default="cpu", show_default=True)
def predict_command(model_dir: Path, head, relation, tail, top: int, as_json: bool, entities_file: Path | None,
                    entity_modeling_epochs: int, save_dir: Path | None, replicate, device: str) -> None:
    """Rank the answers of (HEAD, RELATION, ?) or (?, RELATION, TAIL) with a saved MKGformer.

    \b
    Tail prediction:  --model DIR --head H --relation R [--top 10] [--json]
    Head prediction:  --model DIR --tail T --relation R
    New entities:     --add-entities new.jsonl [--entity-modeling-epochs 5] [--save DIR2]
    """
    from .new_entities import NewEntityError, read_new_entities
    from .prediction import load_model, predict, save_model

    try:
        model = load_model(model_dir, device=device, replicate=replicate)
        added: dict[str, int] = {}
        if entities_file is not None:
            entities = read_new_entities(entities_file)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                added = model.add_entities(
                    entities["labels"], entities["descriptions"], entities["images"], names=entities["names"],
                    entity_modeling_epochs=entity_modeling_epochs,
                )
            for warning in caught:
                if "images of the new entities" in str(warning.message) or "without images" in str(warning.message):
                    click.echo(f"warning: {warning.message}", err=True)
            click.echo(f"added {len(added)} entities: {', '.join(added)}", err=True)
        if save_dir is not None:
            click.echo(f"saved the model to {save_model(model, save_dir, source=model_dir)}", err=True)
        result = predict(model, relation=relation, head=head, tail=tail, top=top, new_entities=added)
    except (ValueError, FileNotFoundError, TypeError, NewEntityError) as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(result.to_json())
        return
    click.echo(f"({', '.join(result.query)}), {result.side} prediction:")
    click.echo("| rank | label | name | score | new |")
    click.echo("|---|---|---|---|---|")
    for p in result.predictions:
        click.echo(f"| {p.rank} | {p.label} | {p.name} | {p.score:.4f} | {'yes' if p.new else ''} |")
    if result.target is not None:
        click.echo(f"{result.target}: rank {result.target_rank} of {model.num_entities} (unfiltered)")
