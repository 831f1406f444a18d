"""Inductive link prediction: entities held out of training, added afterwards from their text and images.

For each dataset and seed, MKGformer is trained on the graph without the held-out entities (they
have no id); then the held-out entities are added to copies of the trained model
(:meth:`pykeen_mkgformer.kgc.MKGformer.add_entities`) in five ways, and their triples are scored
with PyKEEN's filtered ``RankBasedEvaluator`` (:func:`pykeen_mkgformer.kgc.inductive.evaluate_new_entities`):

- ``random rows``: new token rows from the text tower's random init (images read);
- ``text rows``: rows initialised from their text, as at construction (images read);
- ``text rows + stage 1``: then stage 1 on the new rows only (images read);
- ``text rows, no images`` and ``text rows + stage 1, no images``: the same without their images.

The transductive row is the same trained model on the seen entities' test triples (ShapesKG: the
validation heads, which had ids but no triples). TransE and RotatE cannot embed an entity that was
not trained: no number.

Datasets: ``ShapesKG`` (held out: its 6 test heads; the configuration of ``tests/kgc/test_kgc_quality.py``)
and ``WN18IMGMini`` (held out: 10% of the entities with images and triples, seed 0; the demo's
MKGformer configuration; images from ``$PYKEEN_MKGFORMER_DATA/wn18_images``).

    PYKEEN_MKGFORMER_DATA=../shared/data python benchmarks/inductive.py --jobs 2
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

SECTION = "Inductive link prediction"
#: add_entities keyword arguments of each variant (images: whether the new entities' images are given)
VARIANTS: dict[str, dict[str, Any]] = {
    "random rows": dict(initialization="random"),
    "text rows": dict(),
    "text rows + stage 1": dict(entity_modeling_epochs=30, entity_modeling_lr=1e-2),
    "text rows, no images": dict(images=False),
    "text rows + stage 1, no images": dict(images=False, entity_modeling_epochs=30, entity_modeling_lr=1e-2),
}
DATASETS = ("ShapesKG", "WN18IMGMini")
METRICS = ("mrr", "hits_at_1", "hits_at_10")


def split_and_settings(dataset: str):
    """The inductive split and the pipeline keyword arguments for one dataset."""
    import numpy as np

    from pykeen_mkgformer.data import ShapesKG, WN18IMGMini
    from pykeen_mkgformer.data.inductive import hold_out_entities, sample_imaged_entities, shapes_inductive_split
    from pykeen_mkgformer.demo import default_model_settings, shapes_model_settings

    if dataset == "ShapesKG":
        split = shapes_inductive_split(ShapesKG(create_inverse_triples=True))
        settings = copy.deepcopy(shapes_model_settings()["MKGformer"])  # the ShapesKG table's MKGformer
        settings["model_kwargs"]["progress"] = False
        settings["evaluation_kwargs"] = dict(batch_size=64, targets=("tail",))
        return split, settings
    source = WN18IMGMini(create_inverse_triples=True)
    triples = [np.asarray(f.triples) for f in (source.training, source.validation, source.testing)]
    split = hold_out_entities(source, sample_imaged_entities(source.training, 0.1, seed=0, triples=triples))
    settings = copy.deepcopy(default_model_settings()["MKGformer"])
    settings["model_kwargs"]["progress"] = False
    settings["evaluation_kwargs"] = dict(batch_size=256)
    return split, settings


def run_one(dataset: str, seed: int, output: str) -> dict[str, Any]:
    """Train once, add the held-out entities in every variant, evaluate; cached as JSON."""
    import torch

    torch.set_num_threads(1)
    path = Path(output, f"{dataset}-seed{seed}.json")
    if path.is_file():
        return json.loads(path.read_text())
    import warnings

    from pykeen.pipeline import pipeline

    from pykeen_mkgformer.kgc.inductive import evaluate_new_entities

    warnings.filterwarnings("ignore")
    split, settings = split_and_settings(dataset)
    settings["training_kwargs"] = dict(settings["training_kwargs"], use_tqdm=False)
    settings["evaluation_kwargs"] = dict(settings["evaluation_kwargs"], use_tqdm=False)
    start = time.perf_counter()
    result = pipeline(dataset=split.dataset(), random_seed=seed, **settings)
    train_seconds = time.perf_counter() - start
    side = "tail" if dataset == "ShapesKG" else "both"
    record: dict[str, Any] = dict(
        dataset=dataset,
        seed=seed,
        train_seconds=train_seconds,
        seen_entities=split.training.num_entities,
        new_entities=len(split.new_labels),
        new_triples=len(split.new_triples),
        new_with_images=sum(1 for images in split.new_images if images),
        transductive={
            "mrr": float(result.metric_results.get_metric(f"{side}.realistic.inverse_harmonic_mean_rank")),
            "hits_at_1": float(result.metric_results.get_metric(f"{side}.realistic.hits_at_1")),
            "hits_at_10": float(result.metric_results.get_metric(f"{side}.realistic.hits_at_10")),
        },
        variants={},
    )
    for name, kwargs in VARIANTS.items():
        kwargs = dict(kwargs)
        images = kwargs.pop("images", True)
        model = copy.deepcopy(result.model)
        torch.manual_seed(seed)
        start = time.perf_counter()
        model.add_entities(**split.new_entity_kwargs(images=images), **kwargs)
        add_seconds = time.perf_counter() - start
        metrics = evaluate_new_entities(model, split, batch_size=256)
        record["variants"][name] = dict(metrics, add_seconds=add_seconds)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    return record


def summarise(records: list[dict[str, Any]], seeds: list[int]) -> str:
    """The Markdown table: mean ± standard deviation over seeds, new entities as query / as answer."""

    def stat(values: list[float]) -> str:
        if len(values) == 1:
            return f"{values[0]:.3f}"
        return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"

    lines = [
        "| dataset | model / new rows | images of new entities | MRR as query | Hits@10 as query | MRR as answer "
        "| Hits@10 as answer | MRR (both) | MRR as answer per seed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for dataset in DATASETS:
        rows = [r for r in records if r["dataset"] == dataset]
        if not rows:
            continue
        first = rows[0]
        notes.append(
            f"{dataset}: {first['new_entities']} held-out entities ({first['new_with_images']} with images), "
            f"{first['new_triples']} triples touching them, {first['seen_entities']} seen entities; "
            f"training {statistics.mean(r['train_seconds'] for r in rows):.0f} s per seed"
        )
        for name, settings in VARIANTS.items():
            values = [r["variants"][name] for r in rows]
            per_seed = " / ".join(f"{v['answer']['mrr']:.3f}" for v in values)
            lines.append(
                f"| {dataset} | MKGformer, {name.replace(', no images', '')} | {'no' if 'no images' in name else 'yes'} "
                f"| {stat([v['query']['mrr'] for v in values])} | {stat([v['query']['hits_at_10'] for v in values])} "
                f"| {stat([v['answer']['mrr'] for v in values])} | {stat([v['answer']['hits_at_10'] for v in values])} "
                f"| {stat([v['both']['mrr'] for v in values])} | {per_seed} |"
            )
        scale = "validation heads (ids at training, no triples), tail" if dataset == "ShapesKG" else "test triples, both sides"
        lines.append(
            f"| {dataset} | MKGformer, transductive: seen entities ({scale}) | yes | | | | | "
            f"{stat([r['transductive']['mrr'] for r in rows])} | |"
        )
        lines.append(
            f"| {dataset} | TransE, RotatE | | not applicable: an entity without training triples has no embedding | | | | | |"
        )
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {note}" for note in notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--wn18-seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--output", default="benchmarks/output/inductive")
    parser.add_argument("--no-write", action="store_true", help="Print the table only.")
    args = parser.parse_args()
    jobs = [
        (dataset, seed)
        for dataset in args.datasets
        for seed in (args.wn18_seeds if dataset == "WN18IMGMini" else args.seeds)
    ]
    # WN18IMGMini first: the longest runs start first
    jobs.sort(key=lambda job: job[0] != "WN18IMGMini")
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        records = list(pool.map(run_one, *zip(*jobs), [args.output] * len(jobs)))
    table = summarise(records, args.seeds)
    print(table)
    if not args.no_write:
        seeds = f"ShapesKG seeds {' '.join(map(str, args.seeds))}, WN18IMGMini seeds {' '.join(map(str, args.wn18_seeds))}"
        body = (
            "Held-out entities have no id during training; afterwards they are added with "
            "`MKGformer.add_entities` (their description and images) and scored with PyKEEN's filtered "
            "`RankBasedEvaluator` (realistic ranks) over all entities, old and new, filtered with every known triple. "
            "*As query*: the held-out entity is the known entity of the query; *as answer*: it is the entity to find. "
            f"Mean ± standard deviation over seeds ({seeds}); one thread per run, two runs at a time on a shared "
            "2-core machine (other jobs were running: times are rough). Tiny random towers (no pretrained weights). "
            "Stage 1 on the new rows: 30 epochs, lr 0.01, every other weight frozen.\n\n" + table
        )
        write_section(SECTION, body, command="PYKEEN_MKGFORMER_DATA=../shared/data python benchmarks/inductive.py --jobs 2")


if __name__ == "__main__":
    main()
