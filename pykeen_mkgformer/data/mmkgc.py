"""DB15K, MKG-W and MKG-Y: the multimodal KGC benchmarks of MMRNS, AdaMF-MAT, NativE, MyGO, MoMoK.

This module is a PyKEEN ``pykeen.datasets`` entry point (loaded while ``pykeen/datasets/__init__.py``
runs): it imports only ``pykeen.datasets.base`` (through :mod:`.datasets`) and the triples factory.

The files are OpenKE's (``zjukg/NATIVE`` ``benchmarks/<NAME>/``), plain or ``.gz``:

- ``entity2id.txt`` / ``relation2id.txt``: a count line, then ``label<TAB or space>id`` per line;
- ``train2id.txt`` / ``valid2id.txt`` / ``test2id.txt``: a count line, then ``head tail relation`` ids.

Where they are found (first match), like :class:`~.datasets.WN18IMG`: the ``path=`` argument (the
dataset folder itself, or a folder holding ``mmkgc/<NAME>/`` or ``<NAME>/``), else
``$PYKEEN_MKGFORMER_DATA``, else PyKEEN's data home (``$PYSTOW_HOME/pykeen/datasets/mkgformer``).
Nothing is ever downloaded.

The id maps come from ``entity2id`` / ``relation2id`` (not from the training split), so every id
keeps the number the papers use, including entities and relations that occur only in validation or
testing. The files' quirks are counted and reported (:attr:`MMKGCDataset.quirks`, a log warning):

- lines repeated inside a split (DB15K's validation has 9,904 lines but 7,481 distinct triples);
  by default each distinct triple is kept once (``keep_duplicates=True`` keeps every line);
- validation triples that are also test triples (DB15K: 824), kept as the benchmark ships them;
- test (and validation) triples whose entity or relation never occurs in training.

Images and features are optional: ``image_root`` holds ``<folder>/<images>`` per entity (the folder
name is the entity's short name, see :func:`entity_short_name`), ``feature_root`` the papers'
``<NAME>-visual.pth`` / ``<NAME>-textual.pth`` (or this package's ``visual.safetensors`` /
``textual.safetensors`` from ``pykeen-mkgformer features``); their paths are in
:attr:`MMKGCDataset.feature_files` and are read by :mod:`pykeen_mkgformer.baselines.features`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import re
import urllib.parse
from typing import Any, ClassVar

import numpy as np
import torch

from .datasets import MissingDataError, MultimodalDataset, _find, data_root
from .errors import DataError, MalformedLineError
from .files import file_problem
from .multimodal import MultimodalTriplesFactory
from .readers import list_entity_images
from .textfiles import BadLines, content_lines, paused_gc

__all__ = [
    "MMKGCDataset",
    "DB15K",
    "MKGW",
    "MKGY",
    "OpenKEFiles",
    "read_openke_ids",
    "read_openke_triples",
    "entity_short_name",
    "FEATURE_FILE_NAMES",
]

logger = logging.getLogger(__name__)

SPLITS = ("training", "validation", "testing")
#: modality -> candidate file names in ``feature_root`` (``{name}`` is the dataset's folder name)
FEATURE_FILE_NAMES = {
    "visual": ("visual.safetensors", "{name}-visual.pth"),
    "textual": ("textual.safetensors", "{name}-textual.pth"),
}


def read_openke_ids(path: str | pathlib.Path) -> dict[str, int]:
    """Read an OpenKE ``entity2id`` / ``relation2id`` file: a count line, then ``label id`` lines.

    The label may contain spaces (the id is the last whitespace-separated field).

    :raises MalformedLineError: naming ``file:line`` of a line without an integer id, of a repeated
        label or id, or when the count line disagrees with the number of lines
    :raises DataError: when the ids are not exactly ``0 .. n-1``
    """
    mapping: dict[str, int] = {}
    declared: int | None = None
    seen: set[int] = set()
    with paused_gc():
        for number, line in content_lines(path, BadLines()):
            if declared is None:
                declared = _count_line(path, number, line)
                continue
            fields = line.rstrip().rsplit(None, 1)
            if len(fields) != 2 or not fields[1].isdigit():
                raise MalformedLineError(path, number, f"expected 'label<TAB>id', got {line[:200]!r}")
            label, idx = fields[0].strip(), int(fields[1])
            if label in mapping:
                raise MalformedLineError(path, number, f"label {label!r} repeated (first id {mapping[label]})")
            if idx in seen:
                raise MalformedLineError(path, number, f"id {idx} repeated")
            mapping[label] = idx
            seen.add(idx)
    if declared is None:
        raise DataError(path, "empty file (expected a count line, then 'label id' lines)")
    if declared != len(mapping):
        raise MalformedLineError(path, 1, f"the count line says {declared:,}, but {len(mapping):,} lines follow")
    if seen != set(range(len(mapping))):
        raise DataError(path, f"ids are not 0..{len(mapping) - 1}")
    return mapping


def read_openke_triples(path: str | pathlib.Path, *, num_entities: int, num_relations: int) -> np.ndarray:
    """Read an OpenKE ``*2id.txt`` split (a count line, then ``head tail relation``) as ``(n, 3)`` h, r, t ids.

    Every line is kept (duplicates included); the count line must match.

    :raises MalformedLineError: naming ``file:line`` of a line that is not three integers, of an id
        out of range, or of a count line that disagrees with the number of lines
    """
    rows: list[tuple[int, int, int]] = []
    declared: int | None = None
    with paused_gc():
        for number, line in content_lines(path, BadLines()):
            if declared is None:
                declared = _count_line(path, number, line)
                continue
            fields = line.split()
            if len(fields) != 3 or not all(field.isdigit() for field in fields):
                raise MalformedLineError(path, number, f"expected 'head_id tail_id relation_id', got {line[:200]!r}")
            head, tail, relation = map(int, fields)
            if head >= num_entities or tail >= num_entities:
                raise MalformedLineError(path, number, f"entity id out of range (there are {num_entities:,} entities)")
            if relation >= num_relations:
                raise MalformedLineError(path, number, f"relation id {relation} out of range ({num_relations:,})")
            rows.append((head, relation, tail))
    if declared is None:
        raise DataError(path, "empty file (expected a count line, then 'head tail relation' lines)")
    if declared != len(rows):
        raise MalformedLineError(path, 1, f"the count line says {declared:,}, but {len(rows):,} triples follow")
    if not rows:
        raise DataError(path, "no triples")
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def _count_line(path: str | os.PathLike, number: int, line: str) -> int:
    text = line.strip()
    if not text.isdigit():
        raise MalformedLineError(path, number, f"expected OpenKE's count line (one integer), got {line[:200]!r}")
    return int(text)


_DBPEDIA = re.compile(r"^<?https?://dbpedia\.org/resource/(?P<name>.+?)>?$")
_WIKIDATA = re.compile(r"^<?https?://www\.wikidata\.org/entity/(?P<name>[QP]\d+)>?$")
_URI = re.compile(r"^<?https?://[^>]*?(?P<name>[^/#>]+)>?$")


def entity_short_name(label: str) -> str:
    """The name an id carries: a DBpedia resource (``Anarchism``), a Wikidata id (``Q370252``), a YAGO name.

    ``<http://dbpedia.org/resource/New_York_City>`` -> ``New_York_City`` (percent-escapes decoded);
    ``http://www.wikidata.org/entity/Q370252`` -> ``Q370252``; ``Gilles_Mbang_Ondo`` unchanged. This is
    also the entity's image folder name under ``image_root``.
    """
    for pattern in (_DBPEDIA, _WIKIDATA, _URI):
        match = pattern.match(label)
        if match:
            return urllib.parse.unquote(match.group("name"))
    return label


def _readable(short_name: str) -> str:
    """``New_York_City`` -> ``New York City`` (what a text encoder reads)."""
    return short_name.replace("_", " ")


@dataclasses.dataclass(frozen=True)
class OpenKEFiles:
    """Where one OpenKE-format benchmark's files are."""

    folder: pathlib.Path
    entity_ids: pathlib.Path
    relation_ids: pathlib.Path
    training: pathlib.Path
    validation: pathlib.Path
    testing: pathlib.Path
    image_root: pathlib.Path | None = None
    feature_root: pathlib.Path | None = None

    def fingerprint(self) -> list[tuple[str, int, int]]:
        """(path, size, mtime) of every file and folder: changes when the data changes."""
        paths = [self.entity_ids, self.relation_ids, self.training, self.validation, self.testing]
        for path in paths:
            problem = file_problem(path)
            if problem is not None:
                raise DataError(path, problem)
        paths += [p for p in (self.image_root, self.feature_root) if p is not None]
        return [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]


def _split_quirks(splits: dict[str, np.ndarray]) -> dict[str, Any]:
    """Count repeated lines, overlaps between splits and test / validation items unseen in training."""
    distinct = {name: {tuple(row) for row in triples.tolist()} for name, triples in splits.items()}
    training = splits["training"]
    seen_entities = set(training[:, 0].tolist()) | set(training[:, 2].tolist())
    seen_relations = set(training[:, 1].tolist())
    quirks: dict[str, Any] = {
        "lines": {name: len(triples) for name, triples in splits.items()},
        "distinct": {name: len(triples) for name, triples in distinct.items()},
        "duplicate_lines": {name: len(splits[name]) - len(distinct[name]) for name in splits},
        "validation_in_testing": len(distinct["validation"] & distinct["testing"]),
        "training_in_testing": len(distinct["training"] & distinct["testing"]),
        "training_in_validation": len(distinct["training"] & distinct["validation"]),
    }
    for name in ("validation", "testing"):
        rows = np.asarray(sorted(distinct[name]), dtype=np.int64).reshape(-1, 3)
        unseen_entity = ~(np.isin(rows[:, 0], list(seen_entities)) & np.isin(rows[:, 2], list(seen_entities)))
        unseen_relation = ~np.isin(rows[:, 1], list(seen_relations))
        quirks[f"{name}_unseen_entity"] = int(unseen_entity.sum())
        quirks[f"{name}_unseen_relation"] = int(unseen_relation.sum())
        quirks[f"{name}_unseen_any"] = int((unseen_entity | unseen_relation).sum())
    return quirks


def _describe(name: str, quirks: dict[str, Any], deduplicated: bool) -> str:
    parts = []
    for split, count in quirks["duplicate_lines"].items():
        if count:
            action = "counted once" if deduplicated else "kept"
            parts.append(f"{split}: {count:,} repeated lines ({action})")
    for key, text in (
        ("validation_in_testing", "validation triples also in testing"),
        ("training_in_testing", "training triples also in testing"),
        ("training_in_validation", "training triples also in validation"),
        ("testing_unseen_any", "test triples with an entity or relation unseen in training"),
        ("validation_unseen_any", "validation triples with an entity or relation unseen in training"),
    ):
        if quirks[key]:
            parts.append(f"{quirks[key]:,} {text}")
    return f"{name}: " + "; ".join(parts) if parts else ""


class MMKGCDataset(MultimodalDataset):
    """A benchmark in OpenKE's id format (DB15K, MKG-W, MKG-Y); ids exactly as in ``entity2id`` / ``relation2id``.

    Entity names (:attr:`MultimodalTriplesFactory.entity_names`) are the names the ids carry
    (``Anarchism``, ``Q370252``, ``Gilles Mbang Ondo``), also used as the entity's description when no
    other text exists; relation texts are the relation ids' last path segment (``country``, ``P161``,
    ``wasBornIn``).
    """

    #: the dataset's folder name (``DB15K``) and the prefix of the papers' feature files
    folder_name: ClassVar[str]
    #: the dataset's size as shipped: entities, relations (documentation and a check in the tests)
    num_entities_expected: ClassVar[int]
    num_relations_expected: ClassVar[int]

    def __init__(
        self,
        path: str | pathlib.Path | None = None,
        *,
        image_root: str | pathlib.Path | None = None,
        feature_root: str | pathlib.Path | None = None,
        keep_duplicates: bool = False,
        create_inverse_triples: bool = False,
    ) -> None:
        """Find the files (raising :class:`~.datasets.MissingDataError` when absent); loading happens on first use.

        :param path: the dataset folder, or a folder holding ``mmkgc/<NAME>/`` or ``<NAME>/``
            (default: ``$PYKEEN_MKGFORMER_DATA``, else PyKEEN's data home)
        :param image_root: a folder of ``<entity short name>/<images>`` (default: ``<dataset folder>/images``
            when it exists)
        :param feature_root: a folder with ``<NAME>-visual.pth`` / ``-textual.pth`` or ``visual.safetensors`` /
            ``textual.safetensors`` (default: the dataset folder)
        :param keep_duplicates: keep repeated lines of a split as separate triples (default: counted once)
        :param create_inverse_triples: PyKEEN's flag
        """
        self.keep_duplicates = keep_duplicates
        self.quirks: dict[str, Any] = {}
        super().__init__(
            path=None if path is None else str(path),
            image_root=None if image_root is None else str(image_root),
            feature_root=None if feature_root is None else str(feature_root),
            keep_duplicates=keep_duplicates,
            create_inverse_triples=create_inverse_triples,
        )

    def _folder(self, path: str | None) -> pathlib.Path:
        root = data_root(path)
        candidates = [root, root.joinpath("mmkgc", self.folder_name), root.joinpath(self.folder_name)]
        for folder in candidates:
            if _find(folder, "entity2id.txt") and _find(folder, "train2id.txt"):
                return folder
        expected = "\n".join(
            f"  {folder}/{{entity2id,relation2id,train2id,valid2id,test2id}}.txt[.gz]" for folder in candidates[1:]
        )
        raise MissingDataError(
            f"{self.folder_name} not found under {root}; expected one of:\n{expected}\n"
            f"Get the files from zjukg/NATIVE (benchmarks/{self.folder_name}) or zjukg/MyGO, then pass path=... "
            "or set $PYKEEN_MKGFORMER_DATA (nothing is downloaded)."
        )

    def _files(  # type: ignore[override]
        self, path: str | None, image_root: str | None, feature_root: str | None, keep_duplicates: bool
    ) -> OpenKEFiles:
        folder = self._folder(path)
        found = {}
        for role, name in (
            ("entity_ids", "entity2id.txt"),
            ("relation_ids", "relation2id.txt"),
            ("training", "train2id.txt"),
            ("validation", "valid2id.txt"),
            ("testing", "test2id.txt"),
        ):
            file = _find(folder, name)
            if file is None:
                raise MissingDataError(f"{folder.joinpath(name)}[.gz] is missing ({self.folder_name})")
            found[role] = file
        images = pathlib.Path(image_root) if image_root else folder.joinpath("images")
        if not images.is_dir():
            if image_root:
                logger.warning("no image folder at %s: entities have no images", images)
            images = None
        features = pathlib.Path(feature_root) if feature_root else folder
        return OpenKEFiles(folder=folder, image_root=images, feature_root=features, **found)

    @property
    def feature_files(self) -> dict[str, pathlib.Path]:
        """modality (``visual`` / ``textual``) -> the feature file found in ``feature_root`` (absent modalities left out)."""
        found = {}
        root = self.files.feature_root
        if root is None or not root.is_dir():
            return found
        for modality, names in FEATURE_FILE_NAMES.items():
            for name in names:
                candidate = root.joinpath(name.format(name=self.folder_name))
                if candidate.is_file():
                    found[modality] = candidate
                    break
        return found

    def _load(self) -> None:
        files: OpenKEFiles = self.files  # type: ignore[assignment]
        entity_to_id = read_openke_ids(files.entity_ids)
        relation_to_id = read_openke_ids(files.relation_ids)
        splits = {
            name: read_openke_triples(
                getattr(files, name), num_entities=len(entity_to_id), num_relations=len(relation_to_id)
            )
            for name in SPLITS
        }
        self.quirks = _split_quirks(splits)
        message = _describe(self.folder_name, self.quirks, deduplicated=not self.keep_duplicates)
        if message:
            logger.warning("%s", message)

        entity_labels = sorted(entity_to_id, key=entity_to_id.__getitem__)
        short_names = [entity_short_name(label) for label in entity_labels]
        names = [_readable(name) for name in short_names]
        images: list[tuple[str, ...]] = [()] * len(entity_labels)
        if files.image_root is not None:
            by_folder = list_entity_images(files.image_root)
            images = [by_folder.get(name, ()) for name in short_names]
        relation_labels = sorted(relation_to_id, key=relation_to_id.__getitem__)
        relation_texts = [_readable(entity_short_name(label)) for label in relation_labels]

        factories = []
        for name in SPLITS:
            triples = splits[name]
            if not self.keep_duplicates:
                triples = np.unique(triples, axis=0)
            factories.append(
                MultimodalTriplesFactory(
                    mapped_triples=torch.as_tensor(triples, dtype=torch.long),
                    entity_to_id=entity_to_id,
                    relation_to_id=relation_to_id,
                    create_inverse_triples=self._create_inverse_triples and name == "training",
                    # the quirks travel with the training factory (PyKEEN's binary cache keeps its metadata)
                    metadata={"path": getattr(files, name), **({"quirks": self.quirks} if name == "training" else {})},
                    entity_names=names,
                    entity_descriptions=names,
                    entity_images=images,
                    relation_texts=relation_texts,
                )
            )
        training, validation, testing = factories
        for factory in (validation, testing):
            for attribute in ("entity_names", "entity_descriptions", "entity_images", "relation_texts"):
                setattr(factory, attribute, getattr(training, attribute))
        self._training, self._validation, self._testing = training, validation, testing

    def __repr__(self) -> str:  # noqa: D105
        return f"{self.__class__.__name__}(folder={self.files.folder})"


class DB15K(MMKGCDataset):
    """DB15K (Liu et al., ESWC 2019, "MMKG"; the split of MMRNS / NativE / MyGO): 12,842 DBpedia entities, 279 relations.

    79,222 training, 9,904 validation lines (7,481 distinct, 824 also in testing) and 9,902 test triples.
    """

    folder_name = "DB15K"
    num_entities_expected, num_relations_expected = 12_842, 279


class MKGW(MMKGCDataset):
    """MKG-W (Xu et al., ACM MM 2022, MMKRL / OTKGE line): 15,000 Wikidata entities, 169 relations.

    34,196 training, 4,276 validation and 4,274 test triples; the ids carry only Wikidata Q-numbers.
    """

    folder_name = "MKG-W"
    num_entities_expected, num_relations_expected = 15_000, 169


class MKGY(MMKGCDataset):
    """MKG-Y (Xu et al., ACM MM 2022): 15,000 YAGO entities, 28 relations (``wasBornIn``, ``playsFor``...).

    21,310 training, 2,665 validation and 2,663 test triples.
    """

    folder_name = "MKG-Y"
    num_entities_expected, num_relations_expected = 15_000, 28
