"""Entities and relations named on the command line: by label, or by their unique name / text.

Shared by ``pykeen-mkgformer explain`` and ``pykeen-mkgformer predict``. A given string is first
looked up as a label, then (case-insensitively) among the entities' names or the relations'
texts; an ambiguous name lists the labels it could mean, an unknown one suggests close spellings.

Labels come from data files and are shown on terminals: :func:`printable` escapes control
characters (terminal escape sequences, carriage returns, line separators) before a label is
printed; :func:`near_duplicates` finds labels that only Unicode normalisation or surrounding space
tell apart; :func:`summarize` turns a long list of problems into a count with a few examples.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "resolve_label", "resolve_entity", "resolve_relation", "printable", "near_duplicates", "summarize", "label_key",
    "check_labels",
]


def check_labels(kind: str, labels: Sequence[str]) -> None:
    """Refuse labels (or texts) that cannot be stored or tokenised as text: not strings, or holding a lone
    surrogate (what Python makes of undecodable bytes).

    :raises ValueError: naming the first offending ones (ASCII-escaped)
    """
    try:
        "".join(labels).encode("utf-8")
        return
    except TypeError:
        pass
    except UnicodeEncodeError:
        pass
    bad = [label for label in labels if not isinstance(label, str) or _has_surrogate(label)]
    if bad:
        raise ValueError(
            f"{len(bad)} {kind} cannot be stored (each must be text without lone surrogates, e.g. from undecodable "
            f"bytes): {', '.join(map(ascii, bad[:5]))}."
        )


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def printable(value: Any) -> str:
    """``value`` as text safe to print on a terminal: control and format characters (ESC, CR, tabs,
    U+2028/2029, bidirectional overrides, lone surrogates) as ``\\x1b``-style escapes, the rest unchanged."""
    text = str(value)
    out = []
    for character in text:
        category = unicodedata.category(character)
        if category in ("Cc", "Cf", "Cs", "Zl", "Zp") or character == "\\":
            out.append(character.encode("unicode_escape", "backslashreplace").decode("ascii") if character != "\\" else "\\\\")
        else:
            out.append(character)
    return "".join(out)


def label_key(label: str) -> str:
    """The form in which two labels count as the same: Unicode NFC, surrounding white space removed."""
    return unicodedata.normalize("NFC", label).strip()


def near_duplicates(labels: Iterable[str]) -> list[tuple[str, ...]]:
    """Groups of different labels that are equal after :func:`label_key` (each group sorted)."""
    groups: dict[str, set[str]] = {}
    for label in labels:
        groups.setdefault(label_key(label), set()).add(label)
    return sorted(tuple(sorted(group)) for group in groups.values() if len(group) > 1)


def summarize(items: Sequence[Any], what: str, *, examples: int = 5) -> str:
    """``"N what: a, b, c (and N-3 more)"`` with the examples escaped by :func:`printable`."""
    shown = ", ".join(f"'{printable(item)}'" if isinstance(item, str) else printable(item) for item in items[:examples])
    more = f" (and {len(items) - examples:,} more)" if len(items) > examples else ""
    return f"{len(items):,} {what}: {shown}{more}"


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
