"""Readers for the plain-text benchmark files, and the assembly of multimodal splits that share ids.

Every reader names the file and line of malformed input. Files may be plain or gzip-compressed.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import logging
import os
import pathlib
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import pandas
import torch
from pykeen.triples.triples_factory import create_relation_mapping

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


def _read_triple_lines(path: pathlib.Path) -> np.ndarray:
    """Line by line: raise naming the first line that is not ``head<TAB>relation<TAB>tail``."""
    triples = []
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) != 3 or not all(field.strip() for field in fields):
            raise ValueError(f"{path}, line {number}: expected 'head<TAB>relation<TAB>tail', got {line!r}")
        triples.append(fields)
    return np.asarray(triples, dtype=object).reshape(-1, 3)


def read_triples(path: str | pathlib.Path) -> np.ndarray:
    """Read ``head \\t relation \\t tail`` lines into a ``(n, 3)`` array of ``str`` (dtype object).

    Labels are kept as written (as PyKEEN's ``load_triples`` does); blank lines are skipped.

    :raises ValueError: naming the file and line of a line without exactly three non-blank fields
    """
    path = pathlib.Path(path)
    try:  # the fast path: pandas' C parser
        frame = pandas.read_csv(
            path, sep="\t", header=None, dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE, engine="c"
        )
    except (pandas.errors.ParserError, pandas.errors.EmptyDataError):
        frame = None
    if frame is not None and frame.shape[1] == 3:
        triples = frame.to_numpy(dtype=object)
        if not pandas.isna(triples).any() and not any(label.isspace() or not label for label in set(triples.flat)):
            return triples
    # something irregular: the line-by-line reader parses it or names the offending line
    return _read_triple_lines(path)


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


def _map_to_ids(
    triples: np.ndarray, entity_to_id: Mapping[str, int], relation_to_id: Mapping[str, int], path: pathlib.Path
) -> torch.Tensor:
    """Label-based triples -> sorted unique id-based triples (PyKEEN's convention); duplicates are logged."""
    columns = [
        [mapping[label] for label in triples[:, column].tolist()]
        for column, mapping in ((0, entity_to_id), (1, relation_to_id), (2, entity_to_id))
    ]
    mapped = np.unique(np.asarray(columns, dtype=np.int64).T.reshape(-1, 3), axis=0)
    if len(mapped) < len(triples):
        logger.warning("%s: %d duplicate triples counted once", path, len(triples) - len(mapped))
    return torch.as_tensor(mapped, dtype=torch.long)


def load_multimodal_splits(
    files: MultimodalFiles,
    *,
    create_inverse_triples: bool = False,
) -> tuple[MultimodalTriplesFactory, MultimodalTriplesFactory, MultimodalTriplesFactory]:
    """Read training / validation / testing into factories that share ids and attributes.

    The entity and relation maps are built over *all* splits (sorted labels, as PyKEEN does), so
    entities seen only in validation or testing keep their ids (MKGformer can embed them from their
    text) and no triple is dropped.
    """
    paths = (files.training, files.validation, files.testing)
    splits = [read_triples(path) for path in paths]
    all_triples = np.concatenate(splits)
    entity_labels = sorted(set(all_triples[:, 0].tolist()) | set(all_triples[:, 2].tolist()))
    entity_to_id = {label: i for i, label in enumerate(entity_labels)}
    relation_to_id = create_relation_mapping(set(all_triples[:, 1].tolist()))
    training_entities = set(splits[0][:, 0].tolist()) | set(splits[0][:, 2].tolist())
    unseen = len(entity_to_id) - len(training_entities)
    if unseen:
        logger.info(
            "%d entities occur only in validation/testing; they keep their ids (%s)", unseen, files.training.parent
        )

    entity_texts = read_text_table(files.entity_texts)
    descriptions: Mapping[str, str] = entity_texts
    if files.entity_long_texts is not None:
        descriptions = {**entity_texts, **read_text_table(files.entity_long_texts)}
    images: list[tuple[str, ...]] = [()] * len(entity_labels)
    if files.image_root is not None:
        by_folder = list_entity_images(files.image_root)
        images = [by_folder.get(files.image_folder(label), ()) for label in entity_labels]
        unmatched = len(by_folder) - sum(1 for paths in images if paths)
        if unmatched:
            logger.info("%s: %d image folders belong to no entity of this graph", files.image_root, unmatched)
    relation_texts = read_text_table(files.relation_texts)
    relation_labels = sorted(relation_to_id, key=relation_to_id.__getitem__)

    training, validation, testing = (
        MultimodalTriplesFactory(
            mapped_triples=_map_to_ids(triples, entity_to_id, relation_to_id, path),
            entity_to_id=entity_to_id,
            relation_to_id=relation_to_id,
            # PyKEEN's convention: only training creates inverse triples, evaluation handles the rest
            create_inverse_triples=create_inverse_triples and path == files.training,
            metadata={"path": path},
            entity_names=[
                files.name_from_text(entity_texts[label]) if label in entity_texts else label for label in entity_labels
            ],
            entity_descriptions=[descriptions.get(label, "") for label in entity_labels],
            entity_images=images,
            relation_texts=[relation_texts.get(label, label) for label in relation_labels],
        )
        for triples, path in zip(splits, paths, strict=True)
    )
    # one copy of the attribute lists, shared by the three factories
    for factory in (validation, testing):
        for name in ("entity_names", "entity_descriptions", "entity_images", "relation_texts"):
            setattr(factory, name, getattr(training, name))
    return training, validation, testing
