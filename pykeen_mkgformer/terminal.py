"""What the commands print: progress bars, tables and the warnings that concern the run; ``--verbose``: everything.

Library warnings that do not apply to a run are avoided where they arise (``pin_memory`` only with an
accelerator, no memory probing on a CPU: see :func:`pykeen_mkgformer.demo.training_kwargs_for`); what
cannot be avoided by an option is filtered at its source logger, in the default mode only:

- ``torch_max_mem`` warns, on every evaluation on a CPU, that it cannot size batches there safely; the
  commands pass explicit evaluation batch sizes, so the note does not concern them.

The default mode also keeps PyKEEN's INFO lines (it sets its logger to INFO) off the terminal and prints
each warning as one line, ``UserWarning: message``; ``--verbose`` prints INFO logs and every warning with
its file and line, as Python does.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from typing import Iterator

__all__ = ["terminal", "warn_at_caller", "CpuMemoryNoticeFilter"]

#: top-level packages whose frames a warning of the plugin skips to reach the user's code
INTERNAL_PACKAGES = frozenset({"pykeen_mkgformer", "pykeen", "class_resolver", "torch", "click"})
_MEMORY_LOGGER = "torch_max_mem.api"
#: Python's own ``showwarning`` (file:line, category, message, source line), restored by ``--verbose``
_SHOWWARNING = warnings.showwarning


class CpuMemoryNoticeFilter(logging.Filter):
    """Drop ``torch_max_mem``'s note that automatic memory maximisation meets CPU tensors (explicit batch sizes here)."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003
        return not (record.name == _MEMORY_LOGGER and "device_types={'cpu'}" in record.getMessage())


def _one_line(message, category, filename, lineno, file=None, line=None) -> None:
    """``showwarning`` of the default mode: the category and the message, without the code location."""
    stream = sys.stderr if file is None else file
    try:
        stream.write(f"{category.__name__}: {message}\n")
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def terminal(*, verbose: bool = False) -> Iterator[None]:
    """Logging and warnings for the duration of a command; everything is restored afterwards (for callers
    that run commands in-process, such as tests)."""
    level = logging.INFO if verbose else logging.WARNING
    root = logging.getLogger()
    memory = logging.getLogger(_MEMORY_LOGGER)
    added = None
    if not root.handlers:
        added = logging.StreamHandler()
        added.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        root.addHandler(added)
    handlers = {handler: handler.level for handler in root.handlers if type(handler) is logging.StreamHandler}
    root_level = root.level
    notice = None if verbose else CpuMemoryNoticeFilter()
    with warnings.catch_warnings():
        for handler in handlers:
            handler.setLevel(level)
        root.setLevel(level)
        if verbose:
            warnings.simplefilter("default")
            warnings.showwarning = _SHOWWARNING
        else:
            memory.addFilter(notice)
            warnings.showwarning = _one_line
        try:
            yield
        finally:
            if notice is not None:
                memory.removeFilter(notice)
            root.setLevel(root_level)
            for handler, handler_level in handlers.items():
                handler.setLevel(handler_level)
            if added is not None:
                root.removeHandler(added)


def warn_at_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn, attributed to the first frame outside the plugin and the libraries it runs through
    (:data:`INTERNAL_PACKAGES`): the user's line, whether the call came through PyKEEN's pipeline,
    class-resolver or the command line."""
    frame = sys._getframe(1)
    level = 2
    while frame.f_back is not None and frame.f_globals.get("__name__", "").split(".")[0] in INTERNAL_PACKAGES:
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
