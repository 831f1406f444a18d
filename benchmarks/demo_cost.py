"""What the demo's ShapesKG table costs, against what trimming TransE/RotatE from 150 to 125 epochs saves.

The brief for the ShapesKG table: keep the whole demo within its time on 2 cores. A full timing of
the old and the new demo needs a quiet machine (about 5 minutes each); on a shared machine the two
parts that differ are measured back to back instead, in wall and CPU seconds (one thread):

- the ShapesKG table, all of it (generation, pixel cache, four trainings, evaluation, saving);
- the WN18IMGMini TransE and RotatE pipelines at 1 + 30 epochs minus the same at 1 epoch: 30 epochs
  each, the part the trim (150 -> 120) removes (the 1-epoch run also pays the first dataset load, so the
  difference underestimates the saving).

    PYKEEN_MKGFORMER_DATA=../shared/data flock /work/bench.lock python benchmarks/demo_cost.py --output /tmp/demo_cost

``--newcomer`` instead times the README's first command as a newcomer gets it (issue 23): the console
script ``pykeen-mkgformer demo`` with its defaults, in a new process, without ``PYKEEN_MKGFORMER_DATA``
(a fresh machine: WN18IMGMini text-only) and without thread variables (the command's own policy), once
on the machine as it is (``--condition quiet``) and once beside one busy single-threaded PyTorch loop
(``--condition busy``); each call adds its row to ``OUTPUT/newcomer.json`` and rewrites the section:

    python benchmarks/demo_cost.py --newcomer --condition quiet --output /tmp/demo_newcomer
    python benchmarks/demo_cost.py --newcomer --condition busy --output /tmp/demo_newcomer
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

SECTION = "Demo: the ShapesKG table and the demo's time"
NEWCOMER_SECTION = "Demo: the newcomer's time"


def measure(label, fn) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    out = dict(label=label, wall=time.perf_counter() - wall, cpu=time.process_time() - cpu)
    print(json.dumps(out), flush=True)
    return dict(out, result=result)


def newcomer(output: Path, condition: str, write: bool) -> None:
    """Time ``pykeen-mkgformer demo`` (defaults) in a new process, quiet or beside a busy process; add the row."""
    import os
    import subprocess

    from cpu_threads import Busy

    env = {k: v for k, v in os.environ.items() if k not in ("PYKEEN_MKGFORMER_DATA", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    folder = output / condition
    command = [str(Path(sys.executable).with_name("pykeen-mkgformer")), "demo", "--output", str(folder)]
    load_before = "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())

    def run():
        start = time.perf_counter()
        process = subprocess.run(command, env=env, capture_output=True, text=True)
        if process.returncode:
            raise RuntimeError(process.stderr[-3000:])
        return time.perf_counter() - start, process

    if condition == "busy":
        with Busy():
            wall, process = run()
    else:
        wall, process = run()
    summary = {row["model"]: row for row in json.loads((folder / "summary.json").read_text())}
    shapes = json.loads((folder / "ShapesKG" / "summary.json").read_text())
    row = dict(
        wall=wall, mkgformer=summary["MKGformer"]["train_seconds"], transe=summary["TransE"]["train_seconds"],
        rotate=summary["RotatE"]["train_seconds"], shapes=sum(r["train_seconds"] for r in shapes),
        load_before=load_before, load_after="{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg()),
        warnings=[line for line in process.stderr.splitlines() if "Warning:" in line or "WARNING:" in line],
    )
    print(json.dumps(row), flush=True)
    store = output / "newcomer.json"
    rows = json.loads(store.read_text()) if store.exists() else {}
    rows[condition] = row
    store.write_text(json.dumps(rows, indent=1))
    lines = [
        "| condition | whole demo (s) | MKGformer training, WN18IMGMini (s) | TransE (s) | RotatE (s) | ShapesKG table, training (s) "
        "| load average before | after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {"quiet": "the machine as it was (shared: see the load)", "busy": "beside one busy single-threaded PyTorch loop"}
    for key in ("quiet", "busy"):
        if key in rows:
            r = rows[key]
            lines.append(f"| {names[key]} | {r['wall']:.0f} | {r['mkgformer']:.0f} | {r['transe']:.0f} | {r['rotate']:.0f} | "
                         f"{r['shapes']:.0f} | {r['load_before']} | {r['load_after']} |")
    body = "\n".join(lines) + (
        "\n\n`pykeen-mkgformer demo` with its defaults in a new process: no `PYKEEN_MKGFORMER_DATA` (WN18IMGMini text-only, "
        "as on a fresh machine), no thread variables (the command's default: 1 thread). Warning lines printed: "
        + "; ".join(f"{key}: {len(rows[key]['warnings'])}" for key in rows) + ".\n"
    )
    print(body)
    if write:
        write_section(NEWCOMER_SECTION, body, command="python benchmarks/demo_cost.py --newcomer "
                      "--condition quiet|busy --output OUT")


def main() -> None:
    import torch

    from pykeen_mkgformer.demo import format_table, run_demo, run_shapes_demo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--newcomer", action="store_true", help="Time the README's `pykeen-mkgformer demo` instead.")
    parser.add_argument("--condition", choices=["quiet", "busy"], default="quiet")
    args = parser.parse_args()
    if args.newcomer:
        newcomer(args.output.resolve(), args.condition, not args.no_write)
        return
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    one = measure("kge 1 epoch", lambda: run_demo(output=args.output / "k1", kge_epochs=1, models=("TransE", "RotatE")))
    shapes = measure("shapes table", lambda: run_shapes_demo(output=args.output / "shapes"))
    more = measure("kge 31 epochs", lambda: run_demo(output=args.output / "k31", kge_epochs=31, models=("TransE", "RotatE")))
    saved = {key: more[key] - one[key] for key in ("wall", "cpu")}
    body = (
        "| part of the demo | wall (s) | CPU (s) |\n|---|---|---|\n"
        f"| added: the ShapesKG table (4 models, everything included) | {shapes['wall']:.0f} | {shapes['cpu']:.0f} |\n"
        f"| removed: 30 of 150 epochs of TransE and of RotatE on WN18IMGMini | {saved['wall']:.0f} | {saved['cpu']:.0f} |\n\n"
        "ShapesKG table (seed 42, filtered `RankBasedEvaluator`, tail prediction for the held-out test heads, "
        "realistic ranks; train times from this one-thread run):\n\n" + format_table(shapes["result"])
    )
    print(body)
    if not args.no_write:
        write_section(SECTION, body, command=f"PYKEEN_MKGFORMER_DATA=../shared/data flock /work/bench.lock python benchmarks/demo_cost.py --output {args.output}")


if __name__ == "__main__":
    main()
