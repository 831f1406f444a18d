"""The ``pykeen-mkgformer explain`` command."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..kgc.cli import TRUST_PICKLES_HELP

__all__ = ["explain_command"]


def _token_indices(explanation, given: tuple[str, ...]) -> list[int] | None:
    """``--png-token`` values (an index, or a token's text as shown on the page) as token indices."""
    if not given:
        return None
    texts = [token.text for token in explanation.tokens]
    indices = []
    for value in given:
        if value.isdigit():
            indices.append(int(value))
        elif value in texts:
            indices.append(texts.index(value))
        else:
            raise click.BadParameter(f"{value!r} is neither a token index nor one of the tokens {texts}.", param_hint="--png-token")
    return indices


@click.command(name="explain")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="A saved model (a folder with mkgformer/: save_pipeline_result, the demo, predict --save), an output "
                   "folder of 'pykeen-mkgformer re', or with --trust-pickles a PyKEEN results / experiment folder.")
@click.option("--head", default=None, help="Head entity (label or unique name): predict the tail.")
@click.option("--relation", default=None, help="Relation (label or text).")
@click.option("--tail", default=None, help="Tail entity: predict the head, or the true answer's rank with --head.")
@click.option("--predict", "side", type=click.Choice(["tail", "head"]), default=None,
              help="Which side to predict when both --head and --tail are given [default: tail].")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Answers to list.")
@click.option("--dataset", default=None, help="PyKEEN dataset name [default: found from the folder].")
@click.option("--dataset-kwargs", default=None, help='JSON keyword arguments of the dataset, e.g. \'{"create_inverse_triples": true}\'.')
@click.option("--replicate", type=click.IntRange(min=0), default=None, help="Replicate of an experiment folder [default: the first].")
@click.option("--instance", type=click.IntRange(min=0), default=None, help="Relation extraction: the instance (0-based, file order).")
@click.option("--split", type=click.Choice(["train", "dev", "test"]), default="test", show_default=True,
              help="Relation extraction: the split of --instance.")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Relation extraction: the data folder [default: the run's].")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The HTML page to write.")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the heatmaps as a PNG.")
@click.option("--png-token", multiple=True, help="Tokens of the PNG (index or text; repeatable) [default: the first three of the selector].")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output / --png file.")
@click.option("--trust-pickles", is_flag=True, help=TRUST_PICKLES_HELP)
@click.option("--device", default="cpu", show_default=True)
def explain_command(model_dir: Path, head, relation, tail, side, top, dataset, dataset_kwargs, replicate, instance, split,
                    data, output: Path, png: Path | None, png_token: tuple[str, ...], overwrite: bool, trust_pickles: bool,
                    device: str) -> None:
    """Case analysis of one query: a self-contained HTML page with the input tokens, the images, the CAF
    token-to-patch heatmaps and PGI attention of every fused layer, and the ranked answers.

    \b
    Link prediction:     --model DIR --head H --relation R [--tail T] [--top 10]
    Head prediction:     --model DIR --tail T --relation R
    Relation extraction: --model RE_OUTPUT --instance N [--split test]
    """
    from ..data.atomic import OutputError, check_output
    from ..data.errors import DataError
    from ..data.labels import printable
    from ..data.trust import UnsafeFileError
    from .api import explain
    from .figure import write_png
    from .html import write_html

    try:
        kwargs = json.loads(dataset_kwargs) if dataset_kwargs else None
    except (json.JSONDecodeError, RecursionError) as error:
        raise click.BadParameter(f"not valid JSON: {error}", param_hint="--dataset-kwargs") from error
    inputs = {"--model": model_dir, "--data": data}
    try:
        check_output(output, inputs, option="--output", overwrite=overwrite)
        if png is not None:
            check_output(png, {**inputs, "--output": output}, option="--png", overwrite=overwrite)
        explanation = explain(
            model_dir, head=head, relation=relation, tail=tail, side=side, top=top, dataset=dataset, dataset_kwargs=kwargs,
            replicate=replicate, instance=instance, split=split, data=data, device=device, trust_pickles=trust_pickles,
        )
    except (ValueError, FileNotFoundError, TypeError, DataError, UnsafeFileError, OutputError) as error:
        raise click.ClickException(printable(error)) from error
    path = write_html(explanation, output)
    click.echo(f"{printable(explanation.query)}: wrote {printable(path)}")
    if explanation.target is not None and explanation.target_rank is not None:
        click.echo(f"true answer {printable(explanation.target)}: filtered realistic rank {explanation.target_rank:g}")
    for note in explanation.notes:
        click.echo(f"note: {printable(note)}", err=True)
    if png is not None:
        try:
            click.echo(f"wrote {write_png(explanation, png, _token_indices(explanation, png_token))}")
        except ValueError as error:
            raise click.ClickException(f"--png: {error}") from error
