"""A PyKEEN triples factory that also carries entity texts, entity images and relation texts.

The precedent is PyKEEN's :class:`pykeen.triples.TriplesNumericLiteralsFactory`: the extra attributes
are dense per-id lists, shared (not copied) by every factory derived through ``split``,
``new_with_restriction``, ``merge`` or ``clone_and_exchange_triples``, remapped by ``condense``, and
stored next to the triples by ``to_path_binary``.
"""

from __future__ import annotations

import gzip
import json
import logging
import pathlib
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any, ClassVar, TextIO

import pandas
import torch
from pykeen.triples import TriplesFactory
from pykeen.triples.triples_factory import TripleCondenser
from pykeen.typing import LabeledTriples, MappedTriples

__all__ = ["MultimodalTriplesFactory"]

logger = logging.getLogger(__name__)

ImagePaths = tuple[str, ...]


def _dense(
    name: str,
    values: Sequence[Any] | None,
    size: int,
    default: Any,
) -> list[Any]:
    """Validate a per-id list, or build one filled by ``default(i)``."""
    if values is None:
        return [default(i) for i in range(size)]
    values = list(values)
    if len(values) != size:
        raise ValueError(f"{name} has {len(values)} entries, but there are {size} ids")
    return values


def _by_label(
    name: str,
    mapping: Mapping[str, Any] | None,
    label_to_id: Mapping[str, int],
    default: Any,
    convert: Any = lambda x: x,
) -> list[Any] | None:
    """Turn a label-keyed mapping into a dense per-id list; labels without a value get ``default(label)``."""
    if mapping is None:
        return None
    dense: list[Any] = [None] * len(label_to_id)
    for label, idx in label_to_id.items():
        dense[idx] = convert(mapping[label]) if label in mapping else default(label)
    unknown = len(set(mapping).difference(label_to_id))
    if unknown:
        logger.info("%s: %d labels are not in the graph and are not used", name, unknown)
    return dense


class MultimodalTriplesFactory(TriplesFactory):
    """A :class:`pykeen.triples.TriplesFactory` with a name, a description and images per entity.

    All extra attributes are indexed by PyKEEN's ids:

    - ``entity_names[i]``: a short name (e.g. ``"dog"``), by default the entity's label
    - ``entity_descriptions[i]``: the entity's text, ``""`` when there is none
    - ``entity_images[i]``: absolute image paths, possibly empty
    - ``relation_texts[r]``: one text per *real* relation (inverse relations have none), by default
      the relation's label
    """

    file_name_multimodal: ClassVar[str] = "multimodal.json.gz"

    def __init__(
        self,
        mapped_triples: MappedTriples,
        entity_to_id: Mapping[str, int],
        relation_to_id: Mapping[str, int],
        create_inverse_triples: bool = False,
        metadata: Mapping[str, Any] | None = None,
        num_entities: int | None = None,
        num_relations: int | None = None,
        *,
        entity_names: Sequence[str] | None = None,
        entity_descriptions: Sequence[str] | None = None,
        entity_images: Sequence[Sequence[str | pathlib.Path]] | None = None,
        relation_texts: Sequence[str] | None = None,
    ) -> None:
        """Initialize the factory.

        :param mapped_triples: shape: (n, 3), the id-based triples
        :param entity_to_id: entity label -> id
        :param relation_to_id: relation label -> id (real relations only)
        :param create_inverse_triples: PyKEEN's flag
        :param metadata: PyKEEN's free metadata
        :param num_entities: as in :class:`pykeen.triples.TriplesFactory`
        :param num_relations: as in :class:`pykeen.triples.TriplesFactory`
        :param entity_names: one short name per entity id; default: the labels
        :param entity_descriptions: one text per entity id; default: ``""``
        :param entity_images: image paths per entity id; default: none
        :param relation_texts: one text per (real) relation id; default: the labels
        """
        super().__init__(
            mapped_triples=mapped_triples,
            entity_to_id=entity_to_id,
            relation_to_id=relation_to_id,
            create_inverse_triples=create_inverse_triples,
            metadata=metadata,
            num_entities=num_entities,
            num_relations=num_relations,
        )
        entity_labels = self.entity_id_to_label
        relation_labels = self.relation_id_to_label
        self.entity_names: list[str] = _dense(
            "entity_names", entity_names, self.num_entities, lambda i: entity_labels[i]
        )
        self.entity_descriptions: list[str] = _dense(
            "entity_descriptions", entity_descriptions, self.num_entities, lambda i: ""
        )
        self.entity_images: list[ImagePaths] = [
            tuple(str(p) for p in paths)
            for paths in _dense("entity_images", entity_images, self.num_entities, lambda i: ())
        ]
        self.relation_texts: list[str] = _dense(
            "relation_texts", relation_texts, self.real_num_relations, lambda i: relation_labels[i]
        )
        # labels and texts are tokenised and stored as text: refuse lone surrogates up front, by name
        # (image paths may hold them: file names that are not valid UTF-8)
        from .labels import check_labels

        for kind, values in (
            ("entity labels", list(self.entity_to_id)),
            ("relation labels", list(self.relation_to_id)),
            ("entity names", self.entity_names),
            ("entity descriptions", self.entity_descriptions),
            ("relation texts", self.relation_texts),
        ):
            check_labels(kind, values)

    # construction ------------------------------------------------------------------------------

    @classmethod
    def from_labeled_triples(
        cls,
        triples: LabeledTriples,
        *,
        entity_names: Mapping[str, str] | None = None,
        entity_descriptions: Mapping[str, str] | None = None,
        entity_images: Mapping[str, Sequence[str | pathlib.Path]] | None = None,
        relation_texts: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> MultimodalTriplesFactory:
        """Create a factory from label-based triples and label-keyed attributes.

        Labels missing from a mapping get the default (label / ``""`` / no images); mapping keys that
        are not in the graph are ignored (their number is logged).

        :param triples: shape: (n, 3), label-based triples
        :param entity_names: entity label -> short name
        :param entity_descriptions: entity label -> description
        :param entity_images: entity label -> image paths
        :param relation_texts: relation label -> text
        :param kwargs: passed to :meth:`pykeen.triples.TriplesFactory.from_labeled_triples`
        :return: the factory
        """
        base = TriplesFactory.from_labeled_triples(triples=triples, **kwargs)
        entities, relations = base.entity_to_id, base.relation_to_id
        return cls(
            mapped_triples=base.mapped_triples,
            entity_to_id=entities,
            relation_to_id=relations,
            create_inverse_triples=base.create_inverse_triples,
            metadata=base.metadata,
            entity_names=_by_label("entity_names", entity_names, entities, default=lambda label: label),
            entity_descriptions=_by_label("entity_descriptions", entity_descriptions, entities, default=lambda _: ""),
            entity_images=_by_label("entity_images", entity_images, entities, default=lambda _: (), convert=tuple),
            relation_texts=_by_label("relation_texts", relation_texts, relations, default=lambda label: label),
        )

    @classmethod
    def from_triples_factory(
        cls, factory: TriplesFactory, *, attributes_from: MultimodalTriplesFactory
    ) -> MultimodalTriplesFactory:
        """Give a labelled factory the attributes that ``attributes_from`` has for the same labels.

        For PyKEEN operations that return a plain :class:`pykeen.triples.TriplesFactory` with a new
        labelling (e.g. :meth:`pykeen.datasets.Dataset.restrict`).
        """
        entities, relations = attributes_from.entity_to_id, attributes_from.relation_to_id
        entity_labels = [factory.entity_id_to_label[i] for i in range(factory.num_entities)]
        relation_labels = [factory.relation_id_to_label[i] for i in range(factory.real_num_relations)]
        return cls(
            mapped_triples=factory.mapped_triples,
            entity_to_id=factory.entity_to_id,
            relation_to_id=factory.relation_to_id,
            create_inverse_triples=factory.create_inverse_triples,
            metadata=factory.metadata,
            entity_names=[attributes_from.entity_names[entities[label]] for label in entity_labels],
            entity_descriptions=[attributes_from.entity_descriptions[entities[label]] for label in entity_labels],
            entity_images=[attributes_from.entity_images[entities[label]] for label in entity_labels],
            relation_texts=[attributes_from.relation_texts[relations[label]] for label in relation_labels],
        )

    @classmethod
    def from_path(
        cls,
        path: str | pathlib.Path | TextIO,
        **kwargs: Any,
    ) -> MultimodalTriplesFactory:
        """Create a factory from a triples file; see :meth:`from_labeled_triples` for the extra keywords."""
        from pykeen.triples.utils import load_triples

        load_triples_kwargs = kwargs.pop("load_triples_kwargs", None) or {}
        triples = load_triples(path, **load_triples_kwargs)
        if isinstance(path, str | pathlib.Path):
            kwargs["metadata"] = {"path": pathlib.Path(path), **(kwargs.get("metadata") or {})}
        return cls.from_labeled_triples(triples=triples, **kwargs)

    def _multimodal_state(self) -> dict[str, Any]:
        return dict(
            entity_names=self.entity_names,
            entity_descriptions=self.entity_descriptions,
            entity_images=self.entity_images,
            relation_texts=self.relation_texts,
        )

    # everything PyKEEN derives from a factory ----------------------------------------------------

    def clone_and_exchange_triples(
        self,
        mapped_triples: MappedTriples,
        extra_metadata: dict[str, Any] | None = None,
        keep_metadata: bool = True,
        create_inverse_triples: bool | None = None,
    ) -> MultimodalTriplesFactory:  # noqa: D102
        if create_inverse_triples is None:
            create_inverse_triples = self.create_inverse_triples
        return self.__class__(
            mapped_triples=mapped_triples,
            entity_to_id=self.entity_to_id,
            relation_to_id=self.relation_to_id,
            create_inverse_triples=create_inverse_triples,
            metadata={
                **(extra_metadata or {}),
                **(self.metadata if keep_metadata else {}),
            },
            **self._multimodal_state(),
        )

    def apply_condenser(self, condenser: TripleCondenser) -> MultimodalTriplesFactory:  # noqa: D102
        if not condenser:
            return self
        kept_entities = range(self.num_entities)
        if condenser.entities:
            kept_entities = (condenser.entities.condensation >= 0).nonzero().view(-1).tolist()
        kept_relations = range(self.real_num_relations)
        if condenser.relations:
            kept_relations = (condenser.relations.condensation >= 0).nonzero().view(-1).tolist()
        return self.__class__(
            mapped_triples=condenser(self.mapped_triples),
            entity_to_id=condenser.entities.apply_to_map(self.entity_id_to_label),
            relation_to_id=condenser.relations.apply_to_map(self.relation_id_to_label),
            create_inverse_triples=self.create_inverse_triples,
            metadata=self.metadata,
            entity_names=[self.entity_names[i] for i in kept_entities],
            entity_descriptions=[self.entity_descriptions[i] for i in kept_entities],
            entity_images=[self.entity_images[i] for i in kept_entities],
            relation_texts=[self.relation_texts[i] for i in kept_relations],
        )

    def iter_extra_repr(self) -> Iterable[str]:  # noqa: D102
        yield from super().iter_extra_repr()
        yield f"num_described_entities={self.num_described_entities}"
        yield f"num_imaged_entities={self.num_imaged_entities}"
        yield f"num_images={sum(map(len, self.entity_images))}"

    @property
    def num_described_entities(self) -> int:
        """The number of entities with a non-empty description."""
        return sum(1 for text in self.entity_descriptions if text)

    @property
    def num_imaged_entities(self) -> int:
        """The number of entities with at least one image."""
        return sum(1 for paths in self.entity_images if paths)

    # binary storage ------------------------------------------------------------------------------

    def to_path_binary(self, path: str | pathlib.Path | TextIO) -> pathlib.Path:  # noqa: D102
        path = super().to_path_binary(path=path)
        with gzip.open(path.joinpath(self.file_name_multimodal), "wt", encoding="utf-8") as file:
            # ASCII-escaped, so that image paths whose names are not valid UTF-8 (held by Python as
            # lone surrogates) are stored and read back unchanged. The labels and the counts are
            # stored here too (JSON: any label round-trips, tabs and line breaks included), so that
            # reading the folder back needs neither PyKEEN's TSV label files nor its pickled base.pth.
            json.dump(
                {
                    **self._multimodal_state(),
                    "entity_labels": [self.entity_id_to_label[i] for i in range(self.num_entities)],
                    "relation_labels": [self.relation_id_to_label[i] for i in range(self.real_num_relations)],
                    "base": _json_base_state(self),
                },
                file,
                ensure_ascii=True,
            )
        return path

    @classmethod
    def _from_path_binary(cls, path: pathlib.Path) -> MutableMapping[str, Any]:
        file_path = path.joinpath(cls.file_name_multimodal)
        if not file_path.is_file():
            raise FileNotFoundError(
                f"{file_path} is missing: {path} holds a plain TriplesFactory, not a {cls.__name__}"
            )
        with gzip.open(file_path, "rt", encoding="utf-8") as file:
            stored = json.load(file)
        if "base" in stored:  # written by this version: JSON only, no pickle
            data: dict[str, Any] = dict(stored.pop("base"))
            entities, relations = stored.pop("entity_labels"), stored.pop("relation_labels")
            data[cls.file_name_entity_to_id] = {label: i for i, label in enumerate(entities)}
            data[cls.file_name_relation_to_id] = {label: i for i, label in enumerate(relations)}
            data["mapped_triples"] = torch.as_tensor(
                pandas.read_csv(path.joinpath(cls.triples_file_name), sep="\t", dtype=int).values, dtype=torch.long
            ).view(-1, 3)
            data.update(stored)
            return data
        # an older folder: PyKEEN's pickled base.pth (read only when pickles are trusted)
        from .trust import load_pickle

        load_pickle(
            path.joinpath(cls.base_file_name),
            alternative=f"Save the factory again with this version (JSON only), or give --trust-pickles if you made {path} yourself.",
        )
        data = super()._from_path_binary(path)
        # PyKEEN reads the label columns with type inference, which turns labels such as WordNet's
        # "00001740" into integers; read them again as strings
        for name in (cls.file_name_entity_to_id, cls.file_name_relation_to_id):
            df = pandas.read_csv(path.joinpath(f"{name}.tsv.gz"), sep="\t", dtype={"label": str}, keep_default_na=False)
            data[name] = dict(zip(df["label"], df["id"].astype(int), strict=True))
        data.update(stored)
        return data


def _json_base_state(factory: TriplesFactory) -> dict[str, Any]:
    """PyKEEN's binary state (counts, inverse flag, metadata) as JSON values (paths as strings)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(key): plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        return str(value)

    return dict(
        num_entities=factory.num_entities,
        num_relations=factory.real_num_relations,
        create_inverse_triples=factory.create_inverse_triples,
        metadata=plain(dict(factory.metadata or {})),
    )
