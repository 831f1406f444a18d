"""Quality cost of the sampled objectives against the exact 1-N ones on WN18IMGMini, at equal epochs.

The demo's MKGformer (``pykeen_mkgformer.demo.default_model_settings``: tiny random towers, cross-entropy,
Adam 3e-3, batch 64) trained for ``--epochs`` stage-2 epochs in three ways, same seed, same PyKEEN
filtered evaluator (realistic ranks, both sides, test split):

- **exact**: stage 1 over all N, stage 2 PyKEEN's LCWA (1-N cross-entropy);
- **sampled**: stage 1 ``entity_modeling_objective="sampled"``, stage 2
  :class:`~pykeen_mkgformer.kgc.sampled.SampledSoftmaxTrainingLoop` (in-batch + ``--negatives`` uniform
  candidates, log-Q corrected), dense Adam;
- **sampled + sparse**: the same with sparse entity-row gradients and
  :class:`~pykeen_mkgformer.kgc.sampled.SparseDenseAdam`.

    PYKEEN_MKGFORMER_DATA=../shared/data python benchmarks/sampled_quality.py --epochs 20
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--negatives", type=int, default=256)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--variants", nargs="+", default=["exact", "sampled", "sampled+sparse"])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import torch
    from pykeen.pipeline import pipeline

    from pykeen_mkgformer.demo import default_model_settings
    from pykeen_mkgformer.kgc.sampled import SampledSoftmaxTrainingLoop, SparseDenseAdam

    torch.set_num_threads(1)
    rows = []
    for variant in args.variants:
        settings = default_model_settings(epochs=args.epochs)["MKGformer"]
        settings["model_kwargs"] = dict(settings["model_kwargs"], progress=False)
        if variant != "exact":
            settings["model_kwargs"].update(entity_modeling_objective="sampled", entity_modeling_negatives=args.negatives)
            settings["training_loop"] = SampledSoftmaxTrainingLoop
            settings["training_loop_kwargs"] = dict(num_negatives=args.negatives, sparse=variant.endswith("sparse"))
            if variant.endswith("sparse"):
                settings["optimizer"] = SparseDenseAdam
        begin = time.perf_counter()
        result = pipeline(
            dataset="WN18IMGMini",
            dataset_kwargs=dict(create_inverse_triples=True),
            evaluator="rankbased",
            evaluator_kwargs=dict(filtered=True),
            evaluation_kwargs=dict(batch_size=256),
            random_seed=args.seed,
            **settings,
        )
        metrics = {m: float(result.metric_results.get_metric(f"both.realistic.{m}"))
                   for m in ("inverse_harmonic_mean_rank", "hits_at_1", "hits_at_10", "arithmetic_mean_rank")}
        rows.append(dict(variant=variant, train_s=result.train_seconds, total_s=time.perf_counter() - begin, **metrics))
        print(rows[-1], flush=True)
    table = (
        f"WN18IMGMini (2,199 entities), the demo's MKGformer, {args.epochs} stage-2 epochs and 2 stage-1 epochs in "
        f"every variant, seed {args.seed}, {args.negatives} uniform candidates + the batch's answers per step "
        "(sampled), PyKEEN's filtered evaluator (realistic, both sides, test). One CPU thread.\n\n"
        "| variant | MRR | Hits@1 | Hits@10 | MR | train time (s) |\n|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {r['variant']} | {r['inverse_harmonic_mean_rank']:.3f} | {r['hits_at_1']:.3f} | {r['hits_at_10']:.3f} | "
            f"{r['arithmetic_mean_rank']:.1f} | {r['train_s']:.0f} |"
            for r in rows
        )
    )
    print(table)
    if not args.no_write:
        from _results import write_section

        write_section("Sampled vs exact objectives: WN18IMGMini quality (tiny, cpu)", table)


if __name__ == "__main__":
    main()
