"""The ``pykeen-mkgformer`` command."""

from __future__ import annotations

import click

from .ner.train import NamedEntityRecognition
from .re.train import RelationExtraction
from .tasks.cli import task_command

__all__ = ["main"]


@click.group()
@click.version_option(package_name="pykeen-mkgformer")
def main() -> None:
    """MKGformer for PyKEEN: multimodal link prediction, relation extraction and NER."""


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
