"""How many CPU threads the package's commands give PyTorch: one policy, applied in one place.

PyTorch starts one intra-op thread per physical core. Beside another busy program that loses: on
2 cores, the demo's MKGformer epoch took 4.5 s with 2 threads and 4.9 s with 1 on a quiet machine,
but 15.1 s with 2 threads and 5.0 s with 1 beside one busy single-threaded process (issue 23; the
table per command is in ``benchmarks/RESULTS.md``, "CPU threads"). The models of the commands are
small enough that a second thread buys little; a thread that waits for a busy core costs a lot.

The policy, in order:

1. ``--threads N`` (or ``threads=N``) wins;
2. else ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``, when set, which PyTorch has already read: left as is;
3. else :data:`DEFAULT_THREADS`.

Python users who call the library (``run_demo`` and friends) keep whatever they set with
:func:`torch.set_num_threads`; only the command line applies the default.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator, Literal, Mapping

import torch

__all__ = ["DEFAULT_THREADS", "ENV_VARIABLES", "ThreadChoice", "choose_threads", "apply_thread_policy", "thread_policy"]

#: intra-op threads when neither ``--threads`` nor the environment says otherwise (chosen from the measurements)
DEFAULT_THREADS = 1
#: the environment variables PyTorch reads for its intra-op thread count, in its order
ENV_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

Source = Literal["--threads", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "default"]


@dataclass(frozen=True)
class ThreadChoice:
    """How many intra-op threads, and who said so."""

    threads: int
    source: Source

    def describe(self) -> str:
        """One line for the terminal, e.g. ``1 CPU thread (default; --threads N to change)``."""
        unit = "thread" if self.threads == 1 else "threads"
        if self.source == "default":
            return f"{self.threads} CPU {unit} (default; --threads N or OMP_NUM_THREADS to change)"
        return f"{self.threads} CPU {unit} ({self.source})"


def _positive(value: str) -> int | None:
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number > 0 else None


def choose_threads(requested: int | None = None, environ: Mapping[str, str] | None = None) -> ThreadChoice:
    """Decide the intra-op thread count (see the module's docstring); changes nothing.

    :param requested: ``--threads``, or None
    :param environ: the environment (default :data:`os.environ`)
    :raises ValueError: if ``requested`` is below 1
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads must be at least 1, not {requested}")
        return ThreadChoice(requested, "--threads")
    environ = os.environ if environ is None else environ
    for name in ENV_VARIABLES:
        number = _positive(environ.get(name, ""))
        if number is not None:
            return ThreadChoice(number, name)  # type: ignore[arg-type]
    return ThreadChoice(DEFAULT_THREADS, "default")


def apply_thread_policy(requested: int | None = None) -> ThreadChoice:
    """Choose the thread count and give it to PyTorch; an explicit choice is exported to ``OMP_NUM_THREADS``
    too, so that processes the command starts (data-parallel workers) follow it.

    An environment variable is left to PyTorch, which read it at start-up.
    """
    choice = choose_threads(requested)
    if choice.source in ("--threads", "default"):
        torch.set_num_threads(choice.threads)
        os.environ["OMP_NUM_THREADS"] = str(choice.threads)
        return choice
    # PyTorch caps the variable at the core count
    return ThreadChoice(torch.get_num_threads(), choice.source)


@contextlib.contextmanager
def thread_policy(requested: int | None = None) -> Iterator[ThreadChoice]:
    """:func:`apply_thread_policy` for the duration of a command; PyTorch's count and ``OMP_NUM_THREADS`` are
    restored afterwards (for callers that run commands in-process, such as tests)."""
    threads, variable = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    try:
        yield apply_thread_policy(requested)
    finally:
        torch.set_num_threads(threads)
        if variable is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = variable
