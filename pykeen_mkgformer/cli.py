"""The ``pykeen-mkgformer`` command."""

from __future__ import annotations

import click

__all__ = ["main"]


@click.group()
@click.version_option(package_name="pykeen-mkgformer")
def main() -> None:
    """MKGformer for PyKEEN: multimodal link prediction, relation extraction and NER."""
