"""Ablations in the paper's spirit: what PGI, CAF and the images each contribute.

Variants (everything else held fixed, including the seed, the splits and PyKEEN's filtered
rank-based evaluator):

- ``full``: PGI and CAF in the last M layers, images of the known entity;
- ``no-pgi``: CAF only (the vision tower reads the images without the text prefix);
- ``no-caf``: PGI only (visual states never flow into the text tower);
- ``no-images``: both fusions built, but every entity without images (CAF then adds exactly 0);
- ``text-only``: the text tower alone (M = 0, no images).

Datasets (tiny random towers, so the whole grid fits a 2-core CPU):

- ``ShapesKG``: test heads never occur in training and their text says nothing; the answers are
  visible only in their pictures (tail prediction, as the dataset prescribes);
- ``WN18IMGMini``: the demo's MKGformer configuration (both sides); 461 of its 2,199 entities have
  real images, read from ``$PYKEEN_MKGFORMER_DATA/wn18_images`` (required here).

``--fusion-variant official`` runs the same grid with the fused layers computing what the official
code computes (``MKGformer(fusion_variant="official")``); its table gets a section of its own.
``--fusion-variant both`` runs both and writes one comparison table (a ``fusion`` column);
``--stored-only`` summarises the runs already stored and starts none (for a grid cut short).

Every run's metrics are stored under ``--output`` as JSON, named by dataset, variant, seed and a hash
of the full configuration; a rerun skips the runs already there (an interrupted grid resumes where
it stopped) and never reuses a run made with other settings.

    PYKEEN_MKGFORMER_DATA=../shared/data python benchmarks/ablations.py --jobs 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

#: model keyword arguments that turn the full model into each variant
VARIANTS: dict[str, dict[str, Any]] = {
    "full": dict(),
    "no-pgi": dict(use_pgi=False),
    "no-caf": dict(use_caf=False),
    "no-images": dict(max_images=0),
    "text-only": dict(fusion_layers=0, max_images=0),
}
DATASETS = ("ShapesKG", "WN18IMGMini")
METRICS = {"mrr": "inverse_harmonic_mean_rank", "hits_at_1": "hits_at_1", "hits_at_10": "hits_at_10"}


def pipeline_kwargs(dataset: str, variant: str, fusion_variant: str = "paper") -> dict[str, Any]:
    """The full pipeline configuration of one grid cell."""
    from pykeen_mkgformer.demo import default_model_settings, shapes_model_settings

    if dataset == "ShapesKG":  # the ShapesKG table's MKGformer, as in tests/kgc/test_kgc_quality.py
        kwargs = shapes_model_settings()["MKGformer"]
        kwargs["evaluation_kwargs"] = dict(batch_size=64, targets=("tail",))
    elif dataset == "WN18IMGMini":  # the demo's configuration
        kwargs = default_model_settings()["MKGformer"]
        kwargs["evaluation_kwargs"] = dict(batch_size=256)
    else:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {DATASETS}")
    kwargs["model_kwargs"] = {**kwargs["model_kwargs"], **VARIANTS[variant], "progress": False}
    if fusion_variant != "paper":  # the paper variant is the default: its cells keep their hashes
        kwargs["model_kwargs"]["fusion_variant"] = fusion_variant
    kwargs["training_kwargs"] = {**kwargs["training_kwargs"], "use_tqdm": False}
    kwargs["evaluation_kwargs"] = {**kwargs["evaluation_kwargs"], "use_tqdm": False}
    return kwargs


def load_dataset(name: str):
    """The dataset with inverse triples (MKGformer predicts heads through inverse relations)."""
    from pykeen_mkgformer.data import ShapesKG, WN18IMGMini

    if name == "ShapesKG":
        return ShapesKG(create_inverse_triples=True)
    dataset = WN18IMGMini(create_inverse_triples=True)
    if not any(dataset.training.entity_images):
        raise SystemExit(
            "WN18IMGMini has no images here: set PYKEEN_MKGFORMER_DATA to the benchmark data folder "
            "(its wn18_images/ holds them); without images every variant is text-only."
        )
    return dataset


def cell_path(dataset_name: str, variant: str, seed: int, output: Path, fusion_variant: str = "paper") -> Path:
    """Where the record of one cell is stored (named by a hash of its full configuration)."""
    kwargs = pipeline_kwargs(dataset_name, variant, fusion_variant)
    digest = hashlib.sha256(json.dumps(kwargs, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return output / f"{dataset_name}__{variant}__seed{seed}__{digest}.json"


def run_one(dataset_name: str, variant: str, seed: int, output: Path, fusion_variant: str = "paper") -> dict[str, Any]:
    """Train and evaluate one cell (one thread: tiny models are dominated by per-op overhead)."""
    import torch
    from pykeen.pipeline import pipeline

    torch.set_num_threads(1)
    kwargs = pipeline_kwargs(dataset_name, variant, fusion_variant)
    path = cell_path(dataset_name, variant, seed, output, fusion_variant)
    if path.exists():
        return {"fusion_variant": fusion_variant, **json.loads(path.read_text())}
    dataset = load_dataset(dataset_name)
    start = time.perf_counter()
    result = pipeline(dataset=dataset, random_seed=seed, **kwargs)
    record = dict(
        dataset=dataset_name,
        variant=variant,
        fusion_variant=fusion_variant,
        seed=seed,
        **{key: float(result.metric_results.get_metric(name)) for key, name in METRICS.items()},
        train_seconds=result.train_seconds,
        total_seconds=time.perf_counter() - start,
        parameters=sum(p.numel() for p in result.model.parameters()),
    )
    path.write_text(json.dumps(record, indent=2))
    print(json.dumps(record), flush=True)
    return record


def summarise(
    records: list[dict[str, Any]], datasets: list[str], variants: list[str], fusion_variants: list[str] | None = None
) -> str:
    """Markdown table: mean ± standard deviation over seeds, plus each seed's MRR (a ``fusion`` column when given)."""
    fusion_column = fusion_variants is not None
    lines = [
        "| dataset | variant |" + (" fusion |" if fusion_column else "")
        + " MRR | Hits@1 | Hits@10 | MRR per seed | train time (s) | parameters |",
        "|---|---|---|---|---|---|---|---|" + ("---|" if fusion_column else ""),
    ]
    for dataset, variant, fusion in (
        (d, v, f) for d in datasets for v in variants for f in (fusion_variants or [None])
    ):
        cell = sorted(
            (
                r
                for r in records
                if r["dataset"] == dataset
                and r["variant"] == variant
                and (fusion is None or r.get("fusion_variant", "paper") == fusion)
            ),
            key=lambda r: r["seed"],
        )
        if not cell:
            continue

        def spread(key: str) -> str:
            values = [r[key] for r in cell]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.3f} ± {sd:.3f}"

        per_seed = " / ".join(f"{r['mrr']:.3f}" for r in cell)
        train = statistics.mean(r["train_seconds"] for r in cell)
        lines.append(
            f"| {dataset} | {variant} |" + (f" {fusion} |" if fusion_column else "") + f" {spread('mrr')} | {spread('hits_at_1')} | {spread('hits_at_10')} | "
            f"{per_seed} | {train:.0f} | {cell[0]['parameters']:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=DATASETS, action="append", help="repeatable; default: both")
    parser.add_argument("--variant", choices=list(VARIANTS), action="append", help="repeatable; default: all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel, one thread each")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "output" / "ablations")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument(
        "--fusion-variant", choices=("paper", "official", "both"), default="paper", help="what the fused layers compute"
    )
    parser.add_argument("--stored-only", action="store_true", help="summarise stored runs only; start none")
    args = parser.parse_args()

    datasets = args.dataset or list(DATASETS)
    variants = args.variant or list(VARIANTS)
    args.output.mkdir(parents=True, exist_ok=True)
    for name in datasets:  # fail early (missing images) and build the datasets' caches once
        load_dataset(name)
    fusion_variants = ["paper", "official"] if args.fusion_variant == "both" else [args.fusion_variant]
    cells = [(d, v, s, args.output, f) for d in datasets for v in variants for f in fusion_variants for s in args.seeds]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.stored_only:
        cells = [cell for cell in cells if cell_path(*cell).exists()]
        records = [run_one(*cell) for cell in cells]
    elif args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            records = list(pool.map(run_one, *zip(*cells)))
    else:
        records = [run_one(*cell) for cell in cells]

    table = summarise(records, datasets, variants, fusion_variants if args.fusion_variant == "both" else None)
    print(table)
    if not args.no_write:
        body = (
            "Tiny random towers (2 layers, 32 wide; 32 px images), CPU, one thread per run; mean ± standard "
            f"deviation over seeds {', '.join(map(str, args.seeds))}. Filtered, realistic ranks from PyKEEN's "
            "`RankBasedEvaluator`. ShapesKG: the configuration of `tests/kgc/test_kgc_quality.py` (M = 2, 30 + 30 "
            "epochs, BCE), tail prediction for held-out heads. WN18IMGMini: the demo's MKGformer (M = 1, 2 + 40 "
            "epochs, cross-entropy), both sides.\n\n" + table
        )
        if args.stored_only:
            body = "Summarised from the stored runs (`--stored-only`; seeds per row as listed). " + body
        if args.fusion_variant == "both":
            body = "Both fusion variants, same cells and seeds (everything else as above). " + body
            write_section("Ablations: paper vs official fusion variant (tiny, CPU)", body)
        elif args.fusion_variant == "paper":
            write_section("Ablations: PGI, CAF, images (tiny, CPU)", body)
        else:
            body = f"Fusion variant: `{args.fusion_variant}` (everything else as above). " + body
            write_section(f"Ablations, {args.fusion_variant} fusion variant (tiny, CPU)", body)


if __name__ == "__main__":
    main()
