"""MKGformer's options in PyKEEN's own command line (``pykeen train mkgformer ...``).

PyKEEN builds one ``pykeen train MODEL`` command per registered model from the constructor's
``__annotations__`` (:func:`pykeen.models.cli.build_cli_from_cls`), and uses a ready-made option
from ``pykeen.models.cli.options.CLI_OPTIONS`` for a parameter of that name instead. MKGformer's
annotations are strings (``from __future__ import annotations``) and unions (``text_encoder`` is a
name, a folder, a preset or a config), which that builder cannot turn into options: it printed one
warning per parameter on *every* ``pykeen`` command. So the options are given here, derived from
the signature and the docstring (no heavy import): scalars by type, ``Literal`` as choices, booleans
as ``--x/--no-x`` flags, the encoders as strings (Hugging Face name, folder, or preset such as
``tiny``); what cannot be typed on a command line (``image_layout``, the ``*_kwargs`` dicts) gets
no option. None of these names is a parameter of a PyKEEN model, so the entries change nothing else.

PyKEEN offers no supported way to give a model's command its options; :mod:`pykeen_mkgformer.registration`
hands :func:`mkgformer_options` to the one shim (:func:`pykeen_mkgformer._pykeen_shim.add_model_cli_options`).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import click

__all__ = ["mkgformer_options"]

#: parameters handled by PyKEEN itself (or by no option at all)
_PYKEEN_OWN = {"self", "triples_factory", "loss"}

_SCALARS: dict[str, type] = {"int": int, "float": float, "str": str}


def _no_option(command: Any) -> Any:
    """For a parameter that has no command-line form: leave the command as it is."""
    return command


def _help_texts(doc: str | None) -> dict[str, str]:
    """``:param name: text`` entries of a docstring, continuation lines joined."""
    texts: dict[str, str] = {}
    current = None
    for line in (doc or "").splitlines():
        match = re.match(r"\s*:param (\w+):\s*(.*)", line)
        if match:
            current = match.group(1)
            texts[current] = match.group(2).strip()
        elif current and line.strip() and not re.match(r"\s*:(param|raises|returns?|rtype|type)\b", line):
            texts[current] += " " + line.strip()
        else:
            current = None
    return {name: text.replace("``", "") for name, text in texts.items()}


def _option(name: str, annotation: str, default: Any, help_text: str) -> Callable[[Any], Any]:
    """A click option for one constructor parameter (its annotation is a string), or a no-op."""
    flag = f"--{name.replace('_', '-')}"
    annotation = annotation.replace(" ", "")
    if name in ("text_encoder", "vision_encoder"):
        return click.option(flag, name, type=str, default=default, show_default=True, help=help_text)
    if annotation == "bool":
        return click.option(f"{flag}/--no-{flag[2:]}", name, default=default, show_default=True, help=help_text)
    literal = re.fullmatch(r"Literal\[(.*)\]", annotation)
    if literal:
        choices = [choice.strip("'\"") for choice in literal.group(1).split(",")]
        return click.option(flag, name, type=click.Choice(choices), default=default, show_default=True, help=help_text)
    parts = annotation.split("|")
    optional = "None" in parts
    parts = [part for part in parts if part != "None"]
    if len(parts) == 1 and parts[0] in _SCALARS:
        return click.option(flag, name, type=_SCALARS[parts[0]], default=default, show_default=True, help=help_text)
    if optional and set(parts) <= {"str", "Path"}:  # a folder or a name, e.g. image_cache_dir, tokenizer
        return click.option(flag, name, type=str, default=None, help=help_text)
    if optional and set(parts) >= {"str"} and default is None:  # e.g. tokenizer: a name or folder on the command line
        return click.option(flag, name, type=str, default=None, help=help_text)
    return _no_option


def mkgformer_options(model_class: type | None = None) -> dict[str, Callable[[Any], Any]]:
    """One click option (or no-op) per parameter of ``MKGformer.__init__``, keyed by parameter name."""
    if model_class is None:
        from .kgc.model import MKGformer as model_class
    function = model_class.__init__
    help_texts = _help_texts(function.__doc__)
    options: dict[str, Callable[[Any], Any]] = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if name in _PYKEEN_OWN:
            continue
        if parameter.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            options[name] = _no_option
            continue
        annotation = parameter.annotation
        if not isinstance(annotation, str):
            annotation = getattr(annotation, "__name__", None) or str(annotation)
            annotation = annotation.replace("typing.", "")
        default = None if parameter.default is inspect.Parameter.empty else parameter.default
        options[name] = _option(name, annotation, default, help_texts.get(name, ""))
    return options
