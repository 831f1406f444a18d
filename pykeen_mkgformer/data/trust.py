"""Files that can run code when read (pickles) are read only when the user says so.

``torch.load(..., weights_only=False)`` and :mod:`pickle` execute whatever the file asks for: opening
someone else's ``trained_model.pkl`` is running their program. The package therefore reads

- tensors from safetensors and everything else from JSON (its own folders), and
- ``.pt`` files it writes itself (checkpoints) with ``torch.load(weights_only=True)``;

PyKEEN's pickled ``trained_model.pkl`` and ``training_triples/base.pth`` are read only with an
explicit opt-in, named after Hugging Face's ``trust_remote_code``: ``trust_pickles=True`` in Python,
``--trust-pickles`` on the command line, or inside :func:`trusting_pickles`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["UnsafeFileError", "trusting_pickles", "pickles_trusted", "load_pickle", "load_weights_only"]

logger = logging.getLogger(__name__)

_TRUSTED: contextvars.ContextVar[bool] = contextvars.ContextVar("pykeen_mkgformer_trust_pickles", default=False)


class UnsafeFileError(ValueError):
    """A file that could run code when read, refused because pickles are not trusted."""


@contextlib.contextmanager
def trusting_pickles(trust: bool = True) -> Iterator[None]:
    """Within the block, pickled files of PyKEEN (``trained_model.pkl``, ``base.pth``) may be read."""
    token = _TRUSTED.set(bool(trust) or _TRUSTED.get())
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def pickles_trusted() -> bool:
    """Whether the caller opted in to reading pickles (see :func:`trusting_pickles`)."""
    return _TRUSTED.get()


def load_pickle(path: str | os.PathLike, *, trust: bool | None = None, alternative: str = "", map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=False)``, only when trusted.

    :param trust: the opt-in (None: the one of :func:`trusting_pickles`)
    :param alternative: what to do instead, for the refusal message
    :raises UnsafeFileError: naming the file and the safe alternative, when not trusted
    """
    import torch

    path = Path(path)
    trusted = pickles_trusted() if trust is None else trust
    if not trusted:
        raise UnsafeFileError(
            f"{path} is a pickle: reading it runs any code it holds, so it is only read with --trust-pickles "
            f"(trust_pickles=True), for files you made yourself or fully trust. {alternative}".rstrip()
        )
    logger.warning(
        "reading the pickle %s because pickles are trusted (--trust-pickles): a pickle runs any code it holds; "
        "use it only for files you made yourself or fully trust",
        path,
    )
    return torch.load(path, map_location=map_location, weights_only=False)


def load_weights_only(path: str | os.PathLike, *, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` (tensors, numbers, strings, lists and dicts only: no code runs).

    :raises ValueError: naming the file when it holds anything else (or is damaged)
    """
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"{path} holds more than tensors and plain values, and is not read ({error}).") from error
