"""The ``pykeen-mkgformer predict`` command."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

__all__ = ["predict_command", "TRUST_PICKLES_HELP"]

TRUST_PICKLES_HELP = (
    "Also open PyKEEN's pickled trained_model.pkl / training_triples/base.pth. A pickle runs any code it holds: "
    "only for folders you made yourself or fully trust. Folders with mkgformer/ (safetensors + JSON) need no trust."
)


@click.command(name="predict")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="A saved model (a folder with mkgformer/: save_pipeline_result, the demo, --save of this command); "
                   "with --trust-pickles also a PyKEEN results or experiment folder.")
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
              help="Write the (extended) model here as a safe folder (mkgformer/: safetensors + JSON); never over --model.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --save folder.")
@click.option("--trust-pickles", is_flag=True, help=TRUST_PICKLES_HELP)
@click.option("--replicate", type=click.IntRange(min=0), default=None, help="Replicate of an experiment folder [default: the first].")
@click.option("--device", default="cpu", show_default=True)
def predict_command(model_dir: Path, head, relation, tail, top: int, as_json: bool, entities_file: Path | None,
                    entity_modeling_epochs: int, save_dir: Path | None, overwrite: bool, trust_pickles: bool, replicate,
                    device: str) -> None:
    """Rank the answers of (HEAD, RELATION, ?) or (?, RELATION, TAIL) with a saved MKGformer.

    \b
    Tail prediction:  --model DIR --head H --relation R [--top 10] [--json]
    Head prediction:  --model DIR --tail T --relation R
    New entities:     --add-entities new.jsonl [--entity-modeling-epochs 5] [--save DIR2]
    Convert your own PyKEEN folder to the safe format once: --model DIR --trust-pickles --save DIR2 ...
    """
    from ..data.atomic import OutputError, check_output
    from ..data.errors import DataError
    from ..data.labels import printable
    from ..data.trust import UnsafeFileError
    from .new_entities import NewEntityError, read_new_entities
    from .prediction import predict, save_model
    from .saved_model import load_trained_model

    try:
        if save_dir is not None:  # before any work: never over an input, never over an old output unasked
            check_output(save_dir, {"--model": model_dir, "--add-entities": entities_file}, option="--save", overwrite=overwrite)
        run = load_trained_model(
            model_dir, device=device, replicate=replicate, trust_pickles=trust_pickles, dataset_from_folder=False
        )
        model = run.model
        if not hasattr(model, "add_entities"):
            raise TypeError(f"{model_dir} holds a {type(model).__name__}, not an MKGformer.")
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
                    click.echo(f"warning: {printable(warning.message)}", err=True)
            click.echo(f"added {len(added)} entities: {', '.join(map(printable, added))}", err=True)
        if save_dir is not None:
            path = save_model(model, save_dir, known_triples=run.known_triples, overwrite=overwrite)
            click.echo(f"saved the model to {printable(path)}", err=True)
        result = predict(model, relation=relation, head=head, tail=tail, top=top, new_entities=added)
    except (ValueError, FileNotFoundError, TypeError, NewEntityError, DataError, UnsafeFileError, OutputError) as error:
        raise click.ClickException(printable(error)) from error
    if as_json:
        click.echo(result.to_json())
        return
    query = ", ".join(map(printable, result.query))
    click.echo(f"({query}), {result.side} prediction:")
    click.echo("| rank | label | name | score | new |")
    click.echo("|---|---|---|---|---|")
    for p in result.predictions:
        click.echo(f"| {p.rank} | {printable(p.label)} | {printable(p.name)} | {p.score:.4f} | {'yes' if p.new else ''} |")
    if result.target is not None:
        click.echo(f"{printable(result.target)}: rank {result.target_rank} of {model.num_entities} (unfiltered)")
