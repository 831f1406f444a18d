"""The demo's comparison (MKGformer vs TransE vs RotatE on WN18IMGMini), written into RESULTS.md.

Runs :func:`pykeen_mkgformer.demo.run_demo` with its defaults (or reads a finished run's
``summary.json`` with ``--reuse``) and rewrites the "Link prediction quality" section: the table,
which model wins, and the published figures to set beside it.

    PYKEEN_MKGFORMER_DATA=../shared/data python benchmarks/wn18img_mini_quality.py --output benchmarks/output/demo
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

SECTION = "Link prediction quality: WN18IMGMini, MKGformer vs TransE vs RotatE (CPU)"

PUBLISHED = (
    "Published figures use pretrained BERT-base + CLIP ViT-B/32 and full image sets: MKGformer WN18-IMG "
    "Hits@1 .935, Hits@10 .970, MR 25; FB15k-237-IMG Hits@1/3/10 .256/.367/.504, MR 221 (the authors' "
    "corrected figures); RotatE FB15k-237 MRR .338, Hits@10 .533. The WN18IMG / FB15k237IMG rows with the "
    "paper's configurations (benchmarks/configs/) need a GPU and pretrained weights; see \"GPU rows\"."
)


def describe(rows: list[dict]) -> str:
    """Who wins, in words, from the numbers."""
    ranked = sorted(rows, key=lambda r: r["mrr"], reverse=True)
    best, rest = ranked[0], ranked[1:]
    text = f"**{best['model']} has the best MRR ({best['mrr']:.3f})**, then " + ", then ".join(
        f"{r['model']} ({r['mrr']:.3f})" for r in rest
    )
    by_metric = {
        label: max(rows, key=lambda r: r[key])["model"]
        for label, key in (("Hits@1", "hits_at_1"), ("Hits@10", "hits_at_10"))
    }
    by_metric["MR"] = min(rows, key=lambda r: r["mr"])["model"]
    return text + "; best " + ", ".join(f"{label}: {model}" for label, model in by_metric.items()) + "."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "output" / "demo")
    parser.add_argument("--reuse", action="store_true", help="read output/summary.json instead of training")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from pykeen_mkgformer.demo import DemoRow, format_table, run_demo

    summary = args.output / "summary.json"
    if args.reuse:
        rows = [DemoRow(**row) for row in json.loads(summary.read_text())]
    else:
        rows = run_demo(output=args.output, device=args.device)
    records = [vars(row) for row in rows]
    body = (
        format_table(rows)
        + "\n\nSame WN18IMGMini splits (4,177 / 522 / 522 triples, 2,199 entities, 461 with real images from "
        "`$PYKEEN_MKGFORMER_DATA/wn18_images`), same PyKEEN filtered `RankBasedEvaluator` (realistic ranks, "
        "both sides), seed 42, CPU; the demo's default epochs give each model roughly the same training time. "
        "MKGformer is the demo's small configuration (random 2-layer BERT + 2-layer CLIP-vision towers, one "
        "fused layer, one 32 px image per known entity, 2 stage-1 epochs, cross-entropy); no pretrained "
        "weights, since none can be fetched offline. "
        + describe(records)
        + "\n\n"
        + PUBLISHED
    )
    data = f"PYKEEN_MKGFORMER_DATA={os.environ['PYKEEN_MKGFORMER_DATA']} " if os.environ.get("PYKEEN_MKGFORMER_DATA") else ""
    command = f"{data}python benchmarks/wn18img_mini_quality.py --output {args.output}"
    if args.reuse:  # the figures came from an earlier demo run into the same folder
        command = f"{data}pykeen-mkgformer demo --output {args.output}`, tabulated by `{command} --reuse"
    write_section(SECTION, body, command=command)


if __name__ == "__main__":
    main()
