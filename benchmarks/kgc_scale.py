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


# ---------------------------------------------------------------------- Wikidata5M size (head-level)
#: Wikidata5M (transductive): entities, relations, training triples
WIKIDATA5M = dict(entities=4_594_485, relations=822, triples=20_614_279)


def wikidata5m_graph(num_entities: int, num_relations: int, num_triples: int, *, alpha: float = 1.0, seed: int = 0):
    """Synthetic triples with Wikidata5M's sizes and a heavy-tailed degree distribution.

    Entity popularity follows Zipf's law, :math:`P(e) \propto \mathrm{rank}(e)^{-\alpha}` (heads and tails
    drawn independently from it, ids shuffled), relations too (:math:`\alpha = 1`): a few hub entities
    with degrees in the hundreds of thousands, most entities with a handful of triples, as in Wikidata.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)

    def zipf(n: int, size: int) -> torch.Tensor:
        cdf = torch.cumsum(torch.arange(1, n + 1, dtype=torch.float64).pow(-alpha), 0)
        cdf /= cdf[-1].clone()
        draws = torch.searchsorted(cdf, torch.rand(size, generator=generator, dtype=torch.float64))
        return torch.randperm(n, generator=generator)[draws.clamp(max=n - 1)]

    heads = zipf(num_entities, num_triples)
    relations = zipf(num_relations, num_triples)
    tails = zipf(num_entities, num_triples)
    return torch.stack([heads, relations, tails], 1)


def _degree_summary(mapped, num_entities: int) -> dict:
    import torch

    degree = torch.bincount(torch.cat([mapped[:, 0], mapped[:, 2]]), minlength=num_entities).double()
    top = torch.topk(degree, max(1, num_entities // 100)).values.sum() / degree.sum()
    return dict(
        max_degree=int(degree.max()), median_degree=float(degree.median()), isolated=int((degree == 0).sum()),
        top1pct_share=float(top),
    )


class StandInEncoder:
    """Query states of ``(known entity, directed relation)`` at a cost independent of N (replaces the towers here).

    A hashed embedding of the known entity (65,536 buckets) and an embedding of the directed relation,
    concatenated, a linear layer and tanh: what the tiny towers cost per query is measured by the
    rows above (``score_t`` at 10^4..10^6); this benchmark measures what grows with N.
    """

    def __new__(cls, num_relations: int, dim: int, seed: int = 0):
        import torch
        from torch import nn

        torch.manual_seed(seed)

        class _Encoder(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.entities = nn.Embedding(65_536, dim)
                self.relations = nn.Embedding(2 * num_relations + 1, dim)
                self.linear = nn.Linear(2 * dim, dim)

            def forward(self, known, relations):
                state = torch.cat([self.entities(known % 65_536), self.relations(relations)], -1)
                return torch.tanh(self.linear(state))

        return _Encoder()


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _median_time(step, count: int, warmup: int = 1) -> float:
    import torch

    sync = torch.cuda.synchronize if torch.cuda.is_available() and torch.cuda.is_initialized() else (lambda: None)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(count):
        sync()
        begin = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def head_worker(args: argparse.Namespace, rank: int = 0, world: int = 1, port: int = 0) -> dict:
    """One process of the Wikidata5M-size benchmark (``--objective dense|sampled``, or ``vocab`` on rank ``rank``)."""
    import os

    import torch

    from pykeen_mkgformer.kgc.parallel import FilterIndex, ShardedEntityRows, VocabParallelEntityHead
    from pykeen_mkgformer.kgc.sampled import CandidateSampler, SparseDenseAdam, candidate_scores, sampled_softmax_loss

    torch.set_num_threads(args.threads)
    device = torch.device("cpu") if args.device == "cpu" else torch.device("cuda", rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, rank=rank, world_size=world, device_id=device if device.type == "cuda" else None)
    n, r, dim, batch = args.entities[0], args.relations, args.dim, args.batch
    result: dict = dict(objective=args.objective, processes=world, entities=n, relations=r, dim=dim, batch=batch)
    begin = time.perf_counter()
    mapped = wikidata5m_graph(n, r, args.triples, alpha=args.alpha)
    result["graph_s"] = time.perf_counter() - begin
    if rank == 0:
        result.update(_degree_summary(mapped, n))
    num_triples = mapped.shape[0]
    begin = time.perf_counter()
    # directed queries as MKGformer's inverse triples: (h, 2r, t) and (t, 2r + 1, h)
    queries = torch.cat([torch.stack([mapped[:, 0], 2 * mapped[:, 1], mapped[:, 2]], 1),
                         torch.stack([mapped[:, 2], 2 * mapped[:, 1] + 1, mapped[:, 0]], 1)])
    del mapped
    index = FilterIndex(queries, num_relations=2 * r)
    del queries  # the index holds every directed triple: batches are drawn from it
    index.to(device)
    result["filter_index_s"] = time.perf_counter() - begin
    num_queries = index.keys.numel()
    encoder = StandInEncoder(r, dim).to(device)
    generator = torch.Generator().manual_seed(1 + rank)
    stage1_relation = torch.full((batch,), 2 * r, device=device)  # the stage-1 query "[MASK] is <e text>"

    def stage2_batch():
        rows = torch.randint(num_queries, (batch,), generator=generator).to(device)
        keys = index.keys[rows]
        return torch.stack([keys // (2 * r), keys % (2 * r), index.answers[rows]], 1)

    if args.objective == "vocab":
        head = VocabParallelEntityHead(num_entities=n)
        rows = ShardedEntityRows(num_entities=n, embedding_dim=dim).to(device)
        module = torch.nn.ModuleDict(dict(encoder=encoder, rows=rows))
        if world > 1:
            torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
                module, rows.ddp_ignore("rows")
            )
            ddp = torch.nn.parallel.DistributedDataParallel(module.encoder)
        else:
            ddp = encoder
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
        result["rows_per_process"] = rows.stop - rows.start
        losses = []

        def stage2_step():
            triples = stage2_batch()
            optimizer.zero_grad(set_to_none=True)
            pairs = torch.stack([torch.arange(batch, device=device), triples[:, 2]], 1)
            loss = head.loss(ddp(triples[:, 0], triples[:, 1]), rows.weight, rows.bias, pairs, loss="bce")
            loss.backward()
            optimizer.step()
            losses.append(loss.item())

        def stage1_step():
            entities = torch.randint(n, (batch,), generator=generator).to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = head.loss(ddp(entities, stage1_relation), rows.weight, rows.bias, entities, loss="softmax")
            loss.backward()
            optimizer.step()

        def evaluate():
            triples = stage2_batch()
            with torch.no_grad():
                head.ranks(encoder(triples[:, 0], triples[:, 1]), rows.weight, rows.bias, triples[:, 2],
                           keys=index.key(triples[:, 0], triples[:, 1]), filter_index=index)

        queries_per_eval = batch * world
    else:
        weight = torch.nn.Parameter(torch.randn(n, dim, device=device) * 0.02)
        bias = torch.nn.Parameter(torch.zeros(n, device=device))
        sampled = args.objective == "sampled"
        if sampled:
            optimizer = SparseDenseAdam([*encoder.parameters(), weight, bias], lr=1e-3)
            sampler = CandidateSampler(num_entities=n, num_negatives=args.negatives,
                                       frequencies=torch.bincount(index.answers.cpu(), minlength=n) + 1)
        else:
            optimizer = torch.optim.Adam([*encoder.parameters(), weight, bias], lr=1e-3)

        def scores_and_loss(states, answers, softmax: bool):
            if sampled:
                candidates = sampler(answers)
                scores = candidate_scores(states, candidates.ids, weight, bias)
                return sampled_softmax_loss(scores, candidates), scores.numel()
            scores = states @ weight.t() + bias
            if softmax:
                return torch.nn.functional.cross_entropy(scores, answers), scores.numel()
            labels = torch.zeros_like(scores)  # PyKEEN's LCWA: a dense (batch, N) label matrix
            labels[torch.arange(len(answers), device=device), answers] = 1.0
            return torch.nn.functional.binary_cross_entropy_with_logits(scores, labels), scores.numel()

        def stage2_step():
            triples = stage2_batch()
            optimizer.zero_grad(set_to_none=True)
            loss, result["stage2_scores_per_step"] = scores_and_loss(encoder(triples[:, 0], triples[:, 1]), triples[:, 2], False)
            loss.backward()
            optimizer.step()

        def stage1_step():
            entities = torch.randint(n, (batch,), generator=generator).to(device)
            optimizer.zero_grad(set_to_none=True)
            loss, _ = scores_and_loss(encoder(entities, stage1_relation), entities, True)
            loss.backward()
            optimizer.step()

        def evaluate():
            from pykeen_mkgformer.kgc.parallel import sharded_filtered_ranks

            triples = stage2_batch()
            with torch.no_grad():
                scores = encoder(triples[:, 0], triples[:, 1]) @ weight.t() + bias
                sharded_filtered_ranks(scores, triples[:, 2], index.positives(index.key(triples[:, 0], triples[:, 1])))

        queries_per_eval = batch
    result["build_s"] = time.perf_counter() - begin + result["graph_s"]
    if args.full_stage1_epoch:
        result.update(_full_stage1_epoch(args, n, encoder, scores_and_loss, optimizer, device, generator))
        result["peak_rss_gib"] = _rss_gib()
        return result
    result["stage2_step_s"] = _median_time(stage2_step, args.steps)
    result["stage1_step_s"] = _median_time(stage1_step, args.steps)
    result["eval_qps"] = queries_per_eval / _median_time(evaluate, args.steps)
    result["stage1_epoch_h"] = result["stage1_step_s"] * n / (batch * world) / 3600
    result["stage2_epoch_h"] = result["stage2_step_s"] * 2 * num_triples / (batch * world) / 3600
    if args.objective == "vocab" and args.long_steps:
        losses.clear()
        begin = time.perf_counter()
        for _ in range(args.long_steps):
            stage2_step()
        result["long_steps"] = args.long_steps
        result["long_s"] = time.perf_counter() - begin
        result["long_first_last_loss"] = (losses[0], losses[-1])
    result["peak_rss_gib"] = _rss_gib()
    if device.type == "cuda":
        result["peak_gpu_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    if world > 1:
        gathered = [None] * world
        torch.distributed.all_gather_object(gathered, result["peak_rss_gib"])
        result["peak_rss_gib_per_process"] = gathered
        torch.distributed.destroy_process_group()
    return result


def _full_stage1_epoch(args, n, encoder, scores_and_loss, optimizer, device, generator) -> dict:
    """One whole stage-1 epoch, measured: every entity once, in a random order, ``--full-stage1-epoch`` per step."""
    import torch
    from tqdm.auto import tqdm

    if args.objective != "sampled":
        raise SystemExit("--full-stage1-epoch runs the sampled objective (a dense epoch is 155 h here)")
    batch = args.full_stage1_epoch
    order = torch.randperm(n, generator=generator)
    losses = []
    begin = time.perf_counter()
    for start in tqdm(range(0, n, batch), desc="stage-1 epoch", unit="step", mininterval=30):
        entities = order[start : start + batch].to(device)
        relation = torch.full((entities.numel(),), 2 * args.relations, device=device)
        optimizer.zero_grad(set_to_none=True)
        loss, _ = scores_and_loss(encoder(entities, relation), entities, True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return dict(full_epoch_s=time.perf_counter() - begin, full_epoch_steps=len(losses), full_epoch_batch=batch,
                full_epoch_first_last_loss=(losses[0], sum(losses[-20:]) / len(losses[-20:])))


def _spawned(rank: int, world: int, port: int, args: argparse.Namespace) -> None:
    result = head_worker(args, rank, world, port)
    if rank == 0:
        Path(args.result).write_text(json.dumps(result))


def wikidata5m_rows(args: argparse.Namespace) -> list[dict]:
    """Each objective in a fresh process (or 2 for ``vocab``), so that peak RSS is per configuration."""
    rows = []
    for objective in args.objectives:
        world = args.processes if objective == "vocab" else 1
        with tempfile.TemporaryDirectory() as folder:
            result = Path(folder) / "result.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--wikidata5m-worker", f"--result={result}",
                       f"--objective={objective}", f"--processes={world}", f"--entities={args.entities[0]}",
                       f"--relations={args.relations}", f"--triples={args.triples}", f"--dim={args.dim}",
                       f"--batch={args.batch}", f"--negatives={args.negatives}", f"--steps={args.steps}",
                       f"--threads={args.threads}", f"--alpha={args.alpha}", f"--long-steps={args.long_steps}",
                       f"--device={args.device}", f"--full-stage1-epoch={args.full_stage1_epoch}"]
            begin = time.perf_counter()
            subprocess.run(command, check=True)
            row = json.loads(result.read_text())
            row["wall_s"] = time.perf_counter() - begin
        rows.append(row)
        print(row, flush=True)
    return rows


def wikidata5m_table(rows: list[dict], args: argparse.Namespace) -> str:
    first = rows[0]
    header = (
        f"Synthetic graph of Wikidata5M's size: {first['entities']:,} entities, {args.relations} relations, "
        f"{args.triples:,} training triples (x2 directed queries with inverse triples), Zipf-distributed "
        f"entities and relations (alpha {args.alpha}): max degree {first.get('max_degree', 0):,}, median "
        f"{first.get('median_degree', 0):.0f}, {first.get('isolated', 0):,} entities without a triple, the top 1% "
        f"of entities in {100 * first.get('top1pct_share', 0):.0f}% of the triple ends. d = {args.dim}, batch "
        f"{args.batch} per process, {args.device} ({'nccl' if args.device != 'cpu' else f'gloo, {args.threads} thread(s) per process'}), fp32, the N-independent stand-in encoder "
        f"(`StandInEncoder`) instead of the towers. Step times: medians of {args.steps} steps after one warm-up; "
        "**epochs are extrapolated from the measured steps** (stage 1: N queries, stage 2: 2 x triples queries). "
        f"Sampled: the batch's answers + {args.negatives} uniform candidates, log-Q corrected, SparseAdam on the "
        "touched rows. Vocab-parallel: each process holds N/W rows, full 1-N softmax / BCE from (batch,)-sized "
        "all-reduces (gloo). Eval: filtered ranking (FilterIndex, no dense mask), queries/s over all processes.\n\n"
        "| objective | processes | rows per process | build: graph + filter index (s) | stage-2 step (ms) | stage-2 epoch (h) | "
        "stage-1 step (ms) | stage-1 epoch (h) | eval queries/s | peak RSS per process (GiB) | peak GPU memory (GiB) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for row in rows:
        rss = row.get("peak_rss_gib_per_process") or [row["peak_rss_gib"]]
        gpu = f"{row['peak_gpu_gib']:.1f} (rank 0)" if "peak_gpu_gib" in row else "n/a"
        lines.append(
            f"| {row['objective']} | {row['processes']} | {row.get('rows_per_process', row['entities']):,} | "
            f"{row['build_s']:.0f} | {1000 * row['stage2_step_s']:.0f} | {row['stage2_epoch_h']:.1f} | "
            f"{1000 * row['stage1_step_s']:.0f} | {row['stage1_epoch_h']:.2f} | {row['eval_qps']:.0f} | "
            f"{' / '.join(f'{x:.2f}' for x in rss)} | {gpu} |"
        )
    long = [row for row in rows if row.get("long_steps")]
    footer = ""
    for row in long:
        footer += (
            f"\n\nThe {row['processes']}-process vocab-parallel run of {row['long_steps']} stage-2 steps (BCE over all "
            f"{row['entities']:,} entities, global batch {row['batch'] * row['processes']}) completed in "
            f"{row['long_s']:.0f} s; loss {row['long_first_last_loss'][0]:.4f} -> {row['long_first_last_loss'][1]:.4f}."
        )
    return header + "\n".join(lines) + footer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--preset", choices=["tiny", "minilm-vitsmall", "base"], default="tiny")
    parser.add_argument("--batch", type=int, default=64, help="per process (--wikidata5m: 32 keeps it under 8 GB)")
    parser.add_argument("--stage1-batch", type=int, default=64)
    parser.add_argument("--seq", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--wikidata5m", action="store_true",
                        help="the head-level benchmark at Wikidata5M size (dense vs sampled vs vocab-parallel)")
    parser.add_argument("--objectives", nargs="+", default=["dense", "sampled", "vocab"])
    parser.add_argument("--objective", default="dense", help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=2, help="processes of the vocab-parallel rows")
    parser.add_argument("--relations", type=int, default=WIKIDATA5M["relations"])
    parser.add_argument("--triples", type=int, default=WIKIDATA5M["triples"])
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--negatives", type=int, default=1024)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--long-steps", type=int, default=0, help="vocab-parallel: then run this many stage-2 steps")
    parser.add_argument("--full-stage1-epoch", type=int, default=0, metavar="BATCH",
                        help="--wikidata5m: measure one whole sampled stage-1 epoch at this batch size instead")
    parser.add_argument("--device", default="cpu", help="--wikidata5m: cpu (gloo) or cuda (one GPU per process, nccl)")
    parser.add_argument("--wikidata5m-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.wikidata5m_worker:
        if args.processes > 1:
            import socket

            import torch

            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            torch.multiprocessing.spawn(_spawned, args=(args.processes, port, args), nprocs=args.processes, join=True)
        else:
            Path(args.result).write_text(json.dumps(head_worker(args)))
        return
    if args.wikidata5m and args.full_stage1_epoch:
        args.objectives = ["sampled"]
        row = wikidata5m_rows(args)[0]
        table = (
            f"One whole stage-1 epoch, measured: all {row['entities']:,} entities once, in a random order, "
            f"{row['full_epoch_batch']:,} per step ({row['full_epoch_steps']:,} steps), each against the batch's "
            f"entities + {args.negatives} uniform candidates (log-Q corrected sampled softmax, SparseDenseAdam on the "
            f"touched rows), d = {args.dim}, the stand-in encoder, one process, {args.threads} thread(s), {args.device}.\n\n"
            "| entities | steps | batch | epoch (s) | loss: first step -> mean of the last 20 | build (s) | peak RSS (GiB) |\n"
            "|---|---|---|---|---|---|---|\n"
            f"| {row['entities']:,} | {row['full_epoch_steps']:,} | {row['full_epoch_batch']:,} | {row['full_epoch_s']:.0f} | "
            f"{row['full_epoch_first_last_loss'][0]:.3f} -> {row['full_epoch_first_last_loss'][1]:.3f} | "
            f"{row['build_s']:.0f} | {row['peak_rss_gib']:.2f} |"
        )
        print(table)
        if not args.no_write:
            from _results import write_section

            write_section(f"Scale: Wikidata5M size, one whole sampled stage-1 epoch ({args.device}, d = {args.dim})", table)
        return
    if args.wikidata5m:
        rows = wikidata5m_rows(args)
        table = wikidata5m_table(rows, args)
        print(table)
        if not args.no_write:
            from _results import write_section

            write_section(f"Scale: Wikidata5M size (head-level, {args.device}, d = {args.dim})", table)
        return
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
