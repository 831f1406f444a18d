"""The ``pykeen-mkgformer`` command."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from .explain.cli import explain_command
from .kgc.cli import predict_command
from .ner.train import NamedEntityRecognition
from .re.train import RelationExtraction
from .tasks.cli import task_command

__all__ = ["main"]


def run_options(command: click.Command) -> click.Command:
    """Give ``command`` the options every command shares, ``--threads`` and ``--verbose``, and apply them
    (the thread policy of :mod:`pykeen_mkgformer.threads`, the terminal of :mod:`pykeen_mkgformer.terminal`)
    before it runs: the one place where both are set."""
    if any(parameter.name == "threads" for parameter in command.params) or command.callback is None:
        return command
    command.params.extend([
        click.Option(["--threads"], type=click.IntRange(min=1), default=None,
                     help="PyTorch's CPU threads [default: OMP_NUM_THREADS when set, else 1: a second thread buys "
                          "little for these models and loses much beside another busy program, see RESULTS.md]."),
        click.Option(["--verbose"], is_flag=True, help="Print every log line and warning, with its origin."),
    ])
    callback = command.callback

    @functools.wraps(callback)
    def configured(*args, threads: int | None, verbose: bool, **kwargs):
        from .terminal import terminal
        from .threads import thread_policy

        with terminal(verbose=verbose), thread_policy(threads) as choice:
            if verbose:
                click.echo(f"using {choice.describe()}", err=True)
            return callback(*args, **kwargs)

    command.callback = configured
    return command


class _Commands(click.Group):
    """The command group: every sub-command, whichever module adds it, gets :func:`run_options`."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(run_options(cmd), name)


@click.group(cls=_Commands)
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
              show_default=True, help="Folder for every model's PyKEEN results and the summary tables.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--epochs", type=int, default=None, help="MKGformer's training epochs on WN18IMGMini (default 40).")
@click.option("--kge-epochs", type=int, default=None,
              help="TransE's and RotatE's epochs (default 120 on WN18IMGMini, 25 on ShapesKG).")
@click.option("--entity-modeling-epochs", type=int, default=None, help="MKGformer's stage-1 epochs on WN18IMGMini (default 2).")
@click.option("--model", "models", multiple=True, type=click.Choice(["MKGformer", "TransE", "RotatE"]),
              help="Run only these models (repeatable; default all three; MKGformer includes its no-images row on ShapesKG).")
@click.option("--shapes/--no-shapes", default=True, show_default=True,
              help="Also the ShapesKG table (rendered images: what the images buy).")
@click.option("--shapes-epochs", type=int, default=None, help="MKGformer's stage-1 and stage-2 epochs on ShapesKG (default 30).")
@click.option("--seed", type=int, default=42, show_default=True)
def demo(output: Path, device: str, epochs: int | None, kge_epochs: int | None,
         entity_modeling_epochs: int | None, models: tuple[str, ...], shapes: bool, shapes_epochs: int | None,
         seed: int) -> None:
    """MKGformer vs TransE vs RotatE on the bundled WN18IMGMini, one filtered evaluator, one table;
    then MKGformer with and without images vs TransE and RotatE on the bundled ShapesKG.

    Real WN18 images are used when PYKEEN_MKGFORMER_DATA points at the benchmark data.
    """
    from .demo import SHAPES_MODELS, format_table, run_demo, run_shapes_demo

    models = models or ("MKGformer", "TransE", "RotatE")
    rows = run_demo(
        output=output,
        device=device,
        epochs=epochs,
        kge_epochs=kge_epochs,
        entity_modeling_epochs=entity_modeling_epochs,
        models=models,
        seed=seed,
    )
    click.echo("\nWN18IMGMini, filtered rank-based evaluation (both sides, realistic ranks), test split:\n")
    click.echo(format_table(rows))
    if shapes:
        shapes_rows = run_shapes_demo(
            output=output / "ShapesKG",
            device=device,
            epochs=shapes_epochs,
            kge_epochs=kge_epochs,
            models=[name for name in SHAPES_MODELS if name.split(" ")[0] in models],
            seed=seed,
        )
        click.echo(
            "\nShapesKG (bundled, rendered images; test heads never occur in training, their tails show only in "
            "their pictures), filtered rank-based evaluation (tail, realistic ranks), test split:\n"
        )
        click.echo(format_table(shapes_rows))
    click.echo(f"\nFull results (one PyKEEN results folder per model, summary.json, summary.md): {output.resolve()}")


@main.command()
@click.option("--dataset", required=True, help="A PyKEEN dataset name (WN18IMGMini, ShapesKG, DB15K, ...).")
@click.option("--dataset-kwargs", default="{}", show_default=True, help="JSON keyword arguments of the dataset.")
@click.option("--vision", default=None,
              help="Vision tower: a Hugging Face name or folder (CLIP, ViT...) or efficientnet-lite0 (offline). Default: none.")
@click.option("--text", default=None,
              help="Text tower: a Hugging Face name or folder (BERT, CLIP...) or minilm (offline). Default: none.")
@click.option("--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for visual.safetensors, textual.safetensors and features.json.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Per-item vector cache keyed by file content (default OUTPUT/cache); reruns resume from it.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def features(dataset: str, dataset_kwargs: str, vision: str | None, text: str | None, output: Path,
             cache_dir: Path | None, batch_size: int, device: str) -> None:
    """One visual (mean over the entity's images, with the count) and one textual vector per entity, from frozen towers."""
    import json

    from pykeen.datasets import get_dataset

    from .baselines.features import features_for_dataset

    if vision is None and text is None:
        raise click.UsageError("give --vision and/or --text")
    loaded = get_dataset(dataset=dataset, dataset_kwargs=json.loads(dataset_kwargs))
    result = features_for_dataset(loaded, output=output, vision=vision, text=text, cache_dir=cache_dir,
                                  batch_size=batch_size, device=device)
    click.echo(json.dumps(result.metadata, indent=2))
    click.echo(f"written to {output.resolve()}")
