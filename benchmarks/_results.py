"""Shared bits of the benchmark scripts: the machine, library versions, and RESULTS.md sections."""

from __future__ import annotations

import datetime
import platform
import re
import sys
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    """CPU model and core count, plus the GPU name when one is used."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        text += f"; GPU {torch.cuda.get_device_name()}"
    return text


def versions() -> str:
    """The library versions that matter for the figures."""
    import pykeen
    import torch
    import transformers

    return f"python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, pykeen {pykeen.get_version()}"


def write_section(name: str, body: str, *, command: str | None = None) -> None:
    """Replace (or add) the section ``name`` of RESULTS.md, stamped with command, machine, versions and date.

    :param command: how the figures were made; default: the running script with its arguments
    """
    if command is None:
        command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    stamp = (
        f"Command: `{command}`  \nMachine: {machine()}  \nVersions: {versions()}  \n"
        f"Date: {datetime.date.today().isoformat()}\n\n"
    )
    block = f"<!-- BEGIN {name} -->\n{stamp}{body.strip()}\n<!-- END {name} -->"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + f"\n\n## {name}\n\n{block}\n"
    RESULTS.write_text(text)
