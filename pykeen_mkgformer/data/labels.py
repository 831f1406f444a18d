"""Entities and relations named on the command line: by label, or by their unique name / text.

Shared by ``pykeen-mkgformer explain`` and ``pykeen-mkgformer predict``. A given string is first
looked up as a label, then (case-insensitively) among the entities' names or the relations'
texts; an ambiguous name lists the labels it could mean, an unknown one suggests close spellings.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["resolve_label", "resolve_entity", "resolve_relation"]


def resolve_label(kind: str, given: str, label_to_id: Mapping[str, int], texts: Sequence[str]) -> int:
    """An id from a label, else from a unique (case-insensitive) name/text.

    :param kind: ``"entity"`` or ``"relation"`` (for the messages)
    :param given: what the user typed
    :param label_to_id: label -> id
    :param texts: the name/text of each id
    :raises ValueError: for an ambiguous name (listing its labels) or an unknown one (suggesting close ones)
    """
    if given in label_to_id:
        return label_to_id[given]
    matches = [i for i, text in enumerate(texts) if text.strip().lower() == given.strip().lower()]
    if len(matches) == 1:
        return matches[0]
    id_to_label = {i: label for label, i in label_to_id.items()}
    if len(matches) > 1:
        options = ", ".join(f"{id_to_label[i]!r}" for i in matches[:10])
        raise ValueError(f"The {kind} name {given!r} is ambiguous: {len(matches)} {kind}s are named so ({options}); give a label.")
    close = difflib.get_close_matches(given, [*label_to_id, *texts], n=5)
    hint = f" Close: {', '.join(map(repr, close))}." if close else ""
    raise ValueError(f"Unknown {kind} {given!r}: neither a label nor the name of one of the {len(label_to_id)} {kind}s.{hint}")


def resolve_entity(factory: Any, given: str) -> int:
    """The id of an entity given by label or by its (unique) name (a :class:`~pykeen_mkgformer.data.MultimodalTriplesFactory`)."""
    return resolve_label("entity", given, factory.entity_to_id, factory.entity_names)


def resolve_relation(factory: Any, given: str) -> int:
    """The id of a (real) relation given by label or by its (unique) text."""
    return resolve_label("relation", given, factory.relation_to_id, factory.relation_texts)
