"""Readers for the plain-text benchmark files, and the assembly of multimodal splits that share ids.

Every reader names the file and line of malformed input. Files may be plain or gzip-compressed.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import os
import pathlib
from collections.abc import Callable, Iterator, Mapping

import numpy as np
from pykeen.triples.triples_factory import create_entity_mapping, create_relation_mapping

from .multimodal import MultimodalTriplesFactory

__all__ = [
    "read_triples",
    "read_text_table",
    "list_entity_images",
    "MultimodalFiles",
    "load_multimodal_splits",
    "IMAGE_SUFFIXES",
]

logger = logging.getLogger(__name__)

#: file name suffixes read as images (case-insensitive)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})


def _lines(path: pathlib.Path) -> Iterator[tuple[int, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            line = line.rstrip("\r\n")
            if line.strip():
                yield number, line


def read_triples(path: str | pathlib.Path) -> np.ndarray:
    """Read ``head \\t relation \\t tail`` lines into a ``(n, 3)`` string array.

    :raises ValueError: naming the file and line of a line without exactly three fields
    """
    path = pathlib.Path(path)
    triples = []
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) != 3 or not all(field.strip() for field in fields):
            raise ValueError(f"{path}, line {number}: expected 'head<TAB>relation<TAB>tail', got {line!r}")
        triples.append([field.strip() for field in fields])
    return np.asarray(triples, dtype=str).reshape(-1, 3)


def read_text_table(path: str | pathlib.Path) -> dict[str, str]:
    """Read ``key \\t text`` lines (the text may be empty).

    :raises ValueError: naming the file and line of a line without a tab, or of a repeated key
    """
    path = pathlib.Path(path)
    table: dict[str, str] = {}
    for number, line in _lines(path):
        key, sep, text = line.partition("\t")
        if not sep or not key.strip():
            raise ValueError(f"{path}, line {number}: expected 'key<TAB>text', got {line!r}")
        key = key.strip()
        if key in table:
            raise ValueError(f"{path}, line {number}: key {key!r} appears a second time")
        table[key] = text.strip()
    return table


def list_entity_images(root: pathlib.Path) -> dict[str, tuple[str, ...]]:
    """List ``root/<folder>/<image files>``: folder name -> sorted absolute image paths.

    Files whose suffix is not an image suffix (e.g. ``index.tsv``) are not images; their number is logged.
    """
    images: dict[str, tuple[str, ...]] = {}
    ignored = 0
    with os.scandir(root) as folders:
        for folder in folders:
            if not folder.is_dir():
                continue
            files = []
            with os.scandir(folder.path) as entries:
                for entry in entries:
                    if entry.is_file() and pathlib.Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                        files.append(os.path.abspath(entry.path))
                    else:
                        ignored += 1
            if files:
                images[folder.name] = tuple(sorted(files))
    if ignored:
        logger.info("%s: %d entries in entity folders are not image files and were ignored", root, ignored)
    return images


@dataclasses.dataclass(frozen=True)
class MultimodalFiles:
    """Where one multimodal KG's files are."""

    training: pathlib.Path
    validation: pathlib.Path
    testing: pathlib.Path
    #: ``entity \t text`` (short texts, e.g. "Jeremy Irons" or "dog, a member of the genus Canis")
    entity_texts: pathlib.Path
    #: ``relation \t text``
    relation_texts: pathlib.Path
    #: ``entity \t long description``, when there is one (preferred as the description)
    entity_long_texts: pathlib.Path | None = None
    #: ``<image_root>/<image_folder(entity)>/*.jpg``; None: no images
    image_root: pathlib.Path | None = None
    #: entity label -> its image folder's name
    image_folder: Callable[[str], str] = str
    #: entity text -> the entity's short name
    name_from_text: Callable[[str], str] = str

    def fingerprint(self) -> list[tuple[str, int, int]]:
        """(path, size, mtime) of every file and folder: changes when the data changes."""
        paths = [self.training, self.validation, self.testing, self.entity_texts, self.relation_texts]
        paths += [p for p in (self.entity_long_texts, self.image_root) if p is not None]
        return [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]


def load_multimodal_splits(
    files: MultimodalFiles,
    *,
    create_inverse_triples: bool = False,
) -> tuple[MultimodalTriplesFactory, MultimodalTriplesFactory, MultimodalTriplesFactory]:
    """Read training / validation / testing into factories that share ids and attributes.

    The entity and relation maps are built over *all* splits, so entities seen only in validation or
    testing keep their ids (MKGformer can embed them from their text) and no triple is dropped.
    """
    splits = [read_triples(path) for path in (files.training, files.validation, files.testing)]
    all_triples = np.concatenate(splits)
    entity_to_id = create_entity_mapping(all_triples)
    relation_to_id = create_relation_mapping(all_triples[:, 1])
    training_entities = set(splits[0][:, 0]).union(splits[0][:, 2])
    unseen = len(entity_to_id) - len(training_entities)
    if unseen:
        logger.info(
            "%d entities occur only in validation/testing; they keep their ids (%s)", unseen, files.training.parent
        )

    entity_texts = read_text_table(files.entity_texts)
    descriptions: Mapping[str, str] = entity_texts
    if files.entity_long_texts is not None:
        descriptions = {**entity_texts, **read_text_table(files.entity_long_texts)}
    entity_images = None
    if files.image_root is not None:
        by_folder = list_entity_images(files.image_root)
        entity_images = {label: by_folder[files.image_folder(label)] for label in entity_to_id if files.image_folder(label) in by_folder}
        unmatched = len(by_folder) - len(entity_images)
        if unmatched:
            logger.info("%s: %d image folders belong to no entity of this graph", files.image_root, unmatched)

    training = MultimodalTriplesFactory.from_labeled_triples(
        splits[0],
        entity_to_id=entity_to_id,
        relation_to_id=relation_to_id,
        create_inverse_triples=create_inverse_triples,
        entity_names={label: files.name_from_text(text) for label, text in entity_texts.items()},
        entity_descriptions=descriptions,
        entity_images=entity_images,
        relation_texts=read_text_table(files.relation_texts),
        metadata={"path": files.training},
    )
    validation, testing = (
        training.clone_and_exchange_triples(
            training.map_triples(triples), create_inverse_triples=False, extra_metadata={"path": path}, keep_metadata=False
        )
        for triples, path in zip(splits[1:], (files.validation, files.testing), strict=True)
    )
    return training, validation, testing
