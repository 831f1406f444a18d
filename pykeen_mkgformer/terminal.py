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

import logging
import sys
import warnings

__all__ = ["configure_terminal", "warn_at_caller", "CpuMemoryNoticeFilter"]

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


def configure_terminal(*, verbose: bool = False) -> None:
    """Set up logging and warnings for a command (idempotent; the last call wins)."""
    level = logging.INFO if verbose else logging.WARNING
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        root.addHandler(handler)
    for handler in root.handlers:
        if type(handler) is logging.StreamHandler:
            handler.setLevel(level)
    root.setLevel(level)
    memory = logging.getLogger(_MEMORY_LOGGER)
    for existing in [f for f in memory.filters if isinstance(f, CpuMemoryNoticeFilter)]:
        memory.removeFilter(existing)
    if verbose:
        warnings.simplefilter("default")
        warnings.showwarning = _SHOWWARNING
    else:
        memory.addFilter(CpuMemoryNoticeFilter())
        warnings.showwarning = _one_line



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
