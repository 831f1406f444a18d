"""Readers for the plain-text benchmark files, and the assembly of multimodal splits that share ids.

Every reader gets its lines from :func:`pykeen_mkgformer.data.textfiles.read_lines` (plain or
gzip, UTF-8 with or without BOM, any newline) and names ``file:line`` of malformed input with a
:class:`~pykeen_mkgformer.data.errors.MalformedLineError`; with a ``bad_lines`` collector that
skips (:class:`~pykeen_mkgformer.data.textfiles.BadLines`), such lines are counted instead.
Every non-blank line is either read or reported: nothing is dropped without a word.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import warnings
from collections.abc import Callable, Mapping

import numpy as np
import torch
from pykeen.triples.triples_factory import create_relation_mapping

from .errors import DataError, MalformedLineError
from .files import file_problem
from .multimodal import MultimodalTriplesFactory
from .textfiles import BadLines, content_lines, paused_gc, require_records

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


def read_triples(path: str | pathlib.Path, *, bad_lines: BadLines | None = None) -> np.ndarray:
    """Read ``head \t relation \t tail`` lines into a ``(n, 3)`` array of ``str`` (dtype object).

    Labels are kept as written (as PyKEEN's ``load_triples`` does); blank (or whitespace-only)
    lines are skipped.

    :param bad_lines: where malformed lines go; by default the first one raises
    :raises MalformedLineError: naming the file and line of a line without exactly three non-blank
        tab-separated fields, or one that is not UTF-8 (unless ``bad_lines`` skips)
    :raises DataError: for a file that cannot be read at all (see :func:`~.textfiles.read_lines`)
    """
    bad_lines = bad_lines if bad_lines is not None else BadLines()
    triples = []
    with paused_gc():
        for number, line in content_lines(path, bad_lines):
            fields = line.split("\t")
            if len(fields) == 3 and fields[0].strip() and fields[1].strip() and fields[2].strip():
                triples.append(fields)
            else:
                bad_lines.report(
                    MalformedLineError(path, number, f"expected 'head<TAB>relation<TAB>tail', got {_shorten(line)!r}")
                )
        return np.asarray(triples, dtype=object).reshape(-1, 3)


def read_text_table(path: str | pathlib.Path, *, bad_lines: BadLines | None = None) -> dict[str, str]:
    """Read ``key \t text`` lines (the text may be empty; keys and texts are stripped).

    :param bad_lines: where malformed lines go; by default the first one raises (when skipping, the
        first of repeated keys is kept)
    :raises MalformedLineError: naming the file and line of a line without a tab, of a repeated key,
        or of a line that is not UTF-8 (unless ``bad_lines`` skips)
    :raises DataError: for a file that cannot be read at all
    """
    bad_lines = bad_lines if bad_lines is not None else BadLines()
    table: dict[str, str] = {}
    with paused_gc():
        for number, line in content_lines(path, bad_lines):
            key, sep, text = line.partition("\t")
            key = key.strip()
            if not sep or not key:
                bad_lines.report(MalformedLineError(path, number, f"expected 'key<TAB>text', got {_shorten(line)!r}"))
            elif key in table:
                bad_lines.report(MalformedLineError(path, number, f"key {key!r} appears a second time"))
            else:
                table[key] = text.strip()
    return table


def _shorten(line: str, limit: int = 200) -> str:
    return line if len(line) <= limit else f"{line[:limit]}... ({len(line):,} characters)"


def list_entity_images(
    root: pathlib.Path, *, problems: list[tuple[str, str]] | None = None
) -> dict[str, tuple[str, ...]]:
    """List ``root/<folder>/<image files>``: folder name -> sorted absolute image paths.

    Every entry of an entity folder whose name has an image suffix is listed, whatever it is (a
    directory named ``x.jpg``, a symlink loop, a dangling symlink): the image decoder refuses those
    with a reason, and the pixel cache names and counts them (``PixelCache.skipped``). Entries
    without an image suffix (e.g. ``index.tsv``) are not images; their number is logged. An entity
    folder that cannot be listed (a symlink loop, permission denied), and a folder or image that is
    a symlink leading outside ``root`` (treated like a ``../`` name: never read), is refused: all
    such problems are appended to ``problems`` as ``(path, reason)`` and warned about once, as a
    count with a few examples.
    """
    images: dict[str, tuple[str, ...]] = {}
    ignored = 0
    found: list[tuple[str, str]] = []
    real_root = os.path.realpath(root)

    def inside(path: str) -> bool:
        real = os.path.realpath(path)
        return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)

    def problem(path: str, reason: str) -> None:
        found.append((path, reason))

    with os.scandir(root) as folders:
        for folder in folders:
            try:
                is_folder = folder.is_dir()
            except OSError as error:  # a symlink loop, a broken mount...
                problem(folder.path, f"cannot be read ({error.strerror or error})")
                continue
            if not is_folder:
                if not os.path.exists(folder.path) and os.path.islink(folder.path):
                    problem(folder.path, f"dangling symlink (to {os.readlink(folder.path)!r})")
                continue
            if folder.is_symlink() and not inside(folder.path):
                problem(folder.path, f"a symlink leading outside {root} (to {os.readlink(folder.path)!r})")
                continue
            files = []
            try:
                with os.scandir(folder.path) as entries:
                    for entry in entries:
                        if pathlib.Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                            if entry.is_symlink() and os.path.lexists(entry.path) and not inside(entry.path):
                                problem(entry.path, f"a symlink leading outside {root} (to {os.readlink(entry.path)!r})")
                                continue
                            files.append(os.path.abspath(entry.path))
                        else:
                            ignored += 1
            except OSError as error:
                problem(folder.path, f"cannot be listed ({error.strerror or error})")
                continue
            if files:
                images[folder.name] = tuple(sorted(files))
    if found:
        from .labels import summarize

        warnings.warn(
            f"{root}: " + summarize([f"{path}: {reason}" for path, reason in found], "image entries refused"), stacklevel=2
        )
        if problems is not None:
            problems.extend(found)
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
        """(path, size, mtime) of every file and folder: changes when the data changes.

        :raises DataError: naming a text file that is not a regular file (a directory, a dangling
            symlink, a symlink loop, a FIFO...)
        """
        paths = [self.training, self.validation, self.testing, self.entity_texts, self.relation_texts]
        if self.entity_long_texts is not None:
            paths.append(self.entity_long_texts)
        for path in paths:
            problem = file_problem(path)
            if problem is not None:
                raise DataError(path, problem)
        if self.image_root is not None:
            paths.append(self.image_root)
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


def _read_texts(path: pathlib.Path, bad_lines: BadLines) -> dict[str, str]:
    """A text table; an empty one is allowed (its items fall back to their labels) but said."""
    table = read_text_table(path, bad_lines=bad_lines)
    if not table:
        warnings.warn(f"{path} holds no text: every item falls back to its label", stacklevel=3)
    return table


def _refuse_near_duplicates(files: MultimodalFiles, labels: list[str], kind: str) -> None:
    """Labels that only Unicode normalisation (NFC) or surrounding white space tell apart are an error:
    they would silently become two entities (or relations)."""
    from .labels import near_duplicates, summarize

    groups = near_duplicates(labels)
    if groups:
        raise DataError(
            files.training.parent,
            summarize([" = ".join(map(ascii, group)) for group in groups], f"groups of {kind} labels in the triples "
                      "differ only by Unicode normalisation or surrounding white space (write each label one way)"),
        )


def text_coverage(
    files: MultimodalFiles,
    entity_labels: list[str],
    relation_labels: list[str],
    entity_texts: Mapping[str, str],
    descriptions: Mapping[str, str],
    relation_texts: Mapping[str, str],
    *,
    examples: int = 5,
) -> dict[str, object]:
    """Entities / relations of the triples without any text, and text keys that name no entity / relation.

    Items without text fall back to their label; each kind is warned about once (a count and the
    first few labels) and returned for the factories' metadata (``metadata["text_coverage"]``).
    """
    from .labels import summarize

    entities_without = [label for label in entity_labels if label not in entity_texts and label not in descriptions]
    relations_without = [label for label in relation_labels if label not in relation_texts]
    known_entities, known_relations = set(entity_labels), set(relation_labels)
    unused_entity_keys = sorted(set(entity_texts).union(descriptions) - known_entities)
    unused_relation_keys = sorted(set(relation_texts) - known_relations)
    for items, what in (
        (entities_without, f"entities of the triples have no text in {files.entity_texts} (their label is used)"),
        (relations_without, f"relations of the triples have no text in {files.relation_texts} (their label is used)"),
    ):
        if items:
            warnings.warn(summarize(items, what, examples=examples), stacklevel=3)
    for items, what in ((unused_entity_keys, f"keys of {files.entity_texts} name no entity of the triples"),
                        (unused_relation_keys, f"keys of {files.relation_texts} name no relation of the triples")):
        if items:
            logger.info(summarize(items, what, examples=examples))
    return {
        "entities_without_text": len(entities_without),
        "entities_without_text_examples": entities_without[:examples],
        "relations_without_text": len(relations_without),
        "relations_without_text_examples": relations_without[:examples],
        "unused_entity_text_keys": len(unused_entity_keys),
        "unused_relation_text_keys": len(unused_relation_keys),
    }


def load_multimodal_splits(
    files: MultimodalFiles,
    *,
    create_inverse_triples: bool = False,
    bad_lines: BadLines | None = None,
    entities: str = "triples",
) -> tuple[MultimodalTriplesFactory, MultimodalTriplesFactory, MultimodalTriplesFactory]:
    """Read training / validation / testing into factories that share ids and attributes.

    The entity and relation maps are built over *all* splits (sorted labels, as PyKEEN does), so
    entities seen only in validation or testing keep their ids (MKGformer can embed them from their
    text) and no triple is dropped.

    Every file is read and checked before a factory exists (so before any training): a split
    without a triple is an error naming its file.

    :param bad_lines: where malformed lines go; by default the first one raises
    :param entities: ``"triples"``: the entities of the triples; ``"entity2text"``: also every entity of the
        entity text table (the official code ranks all of them, e.g. 14,951 on FB15k-237 for 14,541 in triples)
    :raises DataError: naming the file (and line) of the first problem
    """
    if entities not in ("triples", "entity2text"):
        raise ValueError(f"entities must be 'triples' or 'entity2text', got {entities!r}.")
    bad_lines = bad_lines if bad_lines is not None else BadLines()
    paths = (files.training, files.validation, files.testing)
    splits = []
    for path in paths:
        skipped_before = len(bad_lines.errors)
        triples = read_triples(path, bad_lines=bad_lines)
        require_records(path, list(triples[:1]), skipped=len(bad_lines.errors) - skipped_before, what="triples")
        splits.append(triples)
    all_triples = np.concatenate(splits)
    entity_texts = _read_texts(files.entity_texts, bad_lines)
    entity_labels = sorted(
        set(all_triples[:, 0].tolist()) | set(all_triples[:, 2].tolist()) | (set(entity_texts) if entities == "entity2text" else set())
    )
    _refuse_near_duplicates(files, entity_labels, "entity")
    _refuse_near_duplicates(files, sorted(set(all_triples[:, 1].tolist())), "relation")
    entity_to_id = {label: i for i, label in enumerate(entity_labels)}
    relation_to_id = create_relation_mapping(set(all_triples[:, 1].tolist()))
    training_entities = set(splits[0][:, 0].tolist()) | set(splits[0][:, 2].tolist())
    unseen = len(entity_to_id) - len(training_entities)
    if unseen:
        logger.info(
            "%d entities occur only in validation/testing; they keep their ids (%s)", unseen, files.training.parent
        )

    descriptions: Mapping[str, str] = entity_texts
    if files.entity_long_texts is not None:
        descriptions = {**entity_texts, **_read_texts(files.entity_long_texts, bad_lines)}
    images: list[tuple[str, ...]] = [()] * len(entity_labels)
    if files.image_root is not None:
        by_folder = list_entity_images(files.image_root)
        images = [by_folder.get(files.image_folder(label), ()) for label in entity_labels]
        unmatched = len(by_folder) - sum(1 for paths in images if paths)
        if unmatched:
            logger.info("%s: %d image folders belong to no entity of this graph", files.image_root, unmatched)
    relation_texts = _read_texts(files.relation_texts, bad_lines)
    relation_labels = sorted(relation_to_id, key=relation_to_id.__getitem__)
    report = text_coverage(files, entity_labels, relation_labels, entity_texts, descriptions, relation_texts)

    training, validation, testing = (
        MultimodalTriplesFactory(
            mapped_triples=_map_to_ids(triples, entity_to_id, relation_to_id, path),
            entity_to_id=entity_to_id,
            relation_to_id=relation_to_id,
            # PyKEEN's convention: only training creates inverse triples, evaluation handles the rest
            create_inverse_triples=create_inverse_triples and path == files.training,
            metadata={"path": path, "text_coverage": report},
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
