"""How MKGformer's costs grow with the number of entities N: the 1-N head, its optimizer state, stage 1, evaluation.

For each N, a synthetic graph of ``kgc_speed.py --dataset synthetic:N`` (4 triples per entity, 24-word
descriptions, images) and a MKGformer of ``--preset`` are built in a fresh process, then measured:

- **head memory** (exact, from tensor sizes): the entity rows of the tied word embeddings plus the
  biases, :math:`N (d + 1)` floats, and what training adds to them: their gradient and Adam's two
  moments (4 copies in all);
- **dense 1-N tensors of a LCWA step**: PyKEEN's LCWA step materialises ``(batch, N)`` scores, labels
  and the scores' gradient (3 x batch x N floats, measured as the sizes of those tensors);
- **LCWA step** time (score_t against all N, BCE, backward, Adam), median of ``--steps``;
- **stage 1**: time of one entity-modeling step (``--stage1-batch`` entities, each scored against all
  N), and an epoch = N / batch such steps;
- **evaluation**: ``score_t`` queries/s in inference mode; a rank-based evaluation of T test triples
  needs 2T such queries;
- build time (tokenisation of all texts, pixel cache, text-initialised token rows) and peak RSS.

    python benchmarks/kgc_scale.py --entities 10000 100000 1000000

The extrapolation to Wikidata5M-sized graphs is in RESULTS.md (section "Scale: entities").
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def worker(args: argparse.Namespace) -> dict:
    import torch

    from kgc_speed import preset_kwargs, synthetic_training
    from pykeen_mkgformer.kgc import MKGformer

    torch.set_num_threads(args.threads)
    n = args.entities[0]
    start = time.perf_counter()
    training = synthetic_training(n, HERE / "output" / "synthetic_pictures")
    model = MKGformer(
        triples_factory=training, random_seed=0, entity_modeling_epochs=1, entity_modeling_batch_size=args.stage1_batch,
        max_seq_length=args.seq, progress=False, **preset_kwargs(args.preset),
    )
    build = time.perf_counter() - start
    dim = model.entity_representation.word_embeddings.embedding_dim
    head_bytes = n * (dim + 1) * 4
    optimizer = torch.optim.Adam(model.get_grad_params(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)

    def queries() -> torch.Tensor:
        rows = torch.randint(training.num_triples, (args.batch,), generator=generator)
        return training.mapped_triples[rows][:, :2]

    dense_bytes = 0

    def lcwa_step() -> None:
        nonlocal dense_bytes
        hr = queries()
        optimizer.zero_grad(set_to_none=True)
        scores = model.score_t(hr)
        scores.retain_grad()
        labels = torch.zeros_like(scores)
        labels[torch.arange(len(hr)), torch.randint(n, (len(hr),), generator=generator)] = 1.0
        loss = torch.nn.functional.binary_cross_entropy_with_logits(scores, labels)
        loss.backward()
        optimizer.step()
        dense_bytes = sum(t.numel() * t.element_size() for t in (scores, labels, scores.grad))

    # stage 1 is due on a fresh model: run it for a few steps only, timing them
    model.entity_modeling_done.fill_(True)
    model._entity_modeling_pending = False
    model.train()
    lcwa_step()  # warm-up, creates Adam's state
    state_bytes = sum(
        value.numel() * value.element_size()
        for p in (model.entity_representation.word_embeddings.weight, model.entity_representation.bias)
        for value in optimizer.state[p].values()
        if torch.is_tensor(value) and value.dim() > 0
    )
    vocab_rows = model.entity_representation.word_embeddings.num_embeddings
    # Adam's moments of the entity part only (the word-embedding matrix also holds the text vocabulary)
    head_state_bytes = state_bytes * (n * (dim + 1)) / (vocab_rows * dim + n)
    step_times = []
    for _ in range(args.steps):
        begin = time.perf_counter()
        lcwa_step()
        step_times.append(time.perf_counter() - begin)

    em = model.entity_modeling
    stage1_optimizer = torch.optim.Adam([model.entity_representation.word_embeddings.weight], lr=em.lr)
    stage1_times = []
    for k in range(args.steps + 1):
        entities = torch.randint(n, (args.stage1_batch,), generator=generator)
        begin = time.perf_counter()
        stage1_optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(em.logits(model, entities), entities)
        loss.backward()
        stage1_optimizer.step()
        if k:
            stage1_times.append(time.perf_counter() - begin)

    model.eval()
    eval_times = []
    with torch.inference_mode():
        model.score_t(queries())
        for _ in range(args.steps):
            hr = queries()
            begin = time.perf_counter()
            model.score_t(hr)
            eval_times.append(time.perf_counter() - begin)

    step = statistics.median(step_times)
    stage1_step = statistics.median(stage1_times)
    return dict(
        entities=n,
        dim=dim,
        build_s=build,
        head_mib=head_bytes / 2**20,
        head_training_mib=(2 * head_bytes + head_state_bytes) / 2**20,
        dense_mib=dense_bytes / 2**20,
        step_s=step,
        stage1_step_s=stage1_step,
        stage1_epoch_s=stage1_step * n / args.stage1_batch,
        eval_qps=args.batch / statistics.median(eval_times),
        peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--preset", choices=["tiny", "minilm-vitsmall", "base"], default="tiny")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--stage1-batch", type=int, default=64)
    parser.add_argument("--seq", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        Path(args.result).write_text(json.dumps(worker(args)))
        return

    rows = []
    for n in args.entities:
        with tempfile.TemporaryDirectory() as folder:
            result = Path(folder) / "result.json"
            subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--worker", f"--result={result}", f"--entities={n}",
                 f"--preset={args.preset}", f"--batch={args.batch}", f"--stage1-batch={args.stage1_batch}",
                 f"--seq={args.seq}", f"--steps={args.steps}", f"--threads={args.threads}"],
                check=True,
            )
            row = json.loads(result.read_text())
        rows.append(row)
        print(row, flush=True)
    lines = [
        f"| {r['entities']:,} | {r['dim']} | {r['build_s']:.0f} | {r['head_mib']:.1f} | {r['head_training_mib']:.1f} | "
        f"{r['dense_mib']:.1f} | {1000 * r['step_s']:.0f} | {1000 * r['stage1_step_s']:.0f} | {r['stage1_epoch_s']:.0f} | "
        f"{r['eval_qps']:.0f} | {r['peak_rss_gib']:.2f} |"
        for r in rows
    ]
    print("\n".join(lines))
    if not args.no_write:
        from _results import write_section

        header = (
            f"Preset {args.preset}, CPU fp32, {args.threads} thread(s), LCWA batch {args.batch}, stage-1 batch "
            f"{args.stage1_batch}; times are medians of {args.steps} steps. Head: entity rows + biases, N(d+1) "
            "floats; with training: + gradient + Adam's two moments. Dense 1-N: the (batch, N) scores, labels and "
            "score gradient of one LCWA step. Stage-1 epoch = N / batch measured steps.\n\n"
            "| entities N | d | build (s) | head (MiB) | head + grad + Adam (MiB) | dense 1-N tensors per step (MiB) | "
            "LCWA step (ms) | stage-1 step (ms) | stage-1 epoch (s) | eval queries/s | peak RSS (GiB) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n"
        )
        write_section(f"Scale: entities ({args.preset}, cpu)", header + "\n".join(lines))


if __name__ == "__main__":
    main()
