"""What the demo's ShapesKG table costs, against what trimming TransE/RotatE from 150 to 125 epochs saves.

The brief for the ShapesKG table: keep the whole demo within its time on 2 cores. A full timing of
the old and the new demo needs a quiet machine (about 5 minutes each); on a shared machine the two
parts that differ are measured back to back instead, in wall and CPU seconds (one thread):

- the ShapesKG table, all of it (generation, pixel cache, four trainings, evaluation, saving);
- the WN18IMGMini TransE and RotatE pipelines at 1 + 30 epochs minus the same at 1 epoch: 30 epochs
  each, the part the trim (150 -> 120) removes (the 1-epoch run also pays the first dataset load, so the
  difference underestimates the saving).

    PYKEEN_MKGFORMER_DATA=../shared/data flock /work/bench.lock python benchmarks/demo_cost.py --output /tmp/demo_cost
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


def measure(label, fn) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    out = dict(label=label, wall=time.perf_counter() - wall, cpu=time.process_time() - cpu)
    print(json.dumps(out), flush=True)
    return dict(out, result=result)


def main() -> None:
    import torch

    from pykeen_mkgformer.demo import format_table, run_demo, run_shapes_demo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
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
