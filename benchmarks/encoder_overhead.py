"""Fusion overhead: the hybrid encoder against the same two HF backbones run separately.

Forward + backward (+ AdamW step) with the same sizes and batch, in one process, alternating the two
so that both see the same machine state. Random weights of the named architectures (no download).

    python benchmarks/encoder_overhead.py --preset minilm-vitsmall --batch 16
    python benchmarks/encoder_overhead.py --preset base --batch 256 --device cuda --dtype bf16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from transformers import BertConfig, BertModel, CLIPVisionConfig, CLIPVisionModel, ViTConfig, ViTModel

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

from pykeen_mkgformer.encoder import HybridConfig, HybridTransformer  # noqa: E402

PRESETS = {
    # BERT-base + CLIP ViT-B/32, the paper's pairing
    "base": (
        BertConfig(),
        CLIPVisionConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                         image_size=224, patch_size=32),
    ),
    # MiniLM-L6 (384 wide) + a ViT-small (384 wide, 12 layers, patch 16 at 224 px)
    "minilm-vitsmall": (
        BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
        ViTConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536,
                  image_size=224, patch_size=16),
    ),
    # tiny towers: the overhead of the Python orchestration itself
    "tiny": (
        BertConfig(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128),
        CLIPVisionConfig(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128,
                         image_size=64, patch_size=16),
    ),
}


class SeparateTowers(nn.Module):
    """The baseline: transformers' own two models, nothing shared."""

    def __init__(self, text_config, vision_config):
        super().__init__()
        self.text = BertModel(text_config)
        self.vision = (CLIPVisionModel if vision_config.model_type == "clip_vision_model" else ViTModel)(vision_config)

    def forward(self, input_ids, attention_mask, pixel_values):
        text = self.text(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        vision = self.vision(pixel_values=pixel_values[:, 0]).last_hidden_state
        return text, vision


def time_steps(step, n_warmup: int, n_steps: int, sync) -> list[float]:
    for _ in range(n_warmup):
        step()
    times = []
    for _ in range(n_steps):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="minilm-vitsmall")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--fusion-layers", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device(args.device)
    text_config, vision_config = PRESETS[args.preset]
    size = vision_config.image_size
    ids = torch.randint(1000, 2000 if text_config.vocab_size > 2000 else text_config.vocab_size, (args.batch, args.seq), device=device)
    mask = torch.ones_like(ids)
    pixels = torch.randn(args.batch, 1, 3, size, size, device=device)
    image_mask = torch.ones(args.batch, 1, dtype=torch.bool, device=device)

    hybrid = HybridTransformer(HybridConfig(text=text_config, vision=vision_config, fusion_layers=args.fusion_layers)).to(device)
    separate = SeparateTowers(text_config, vision_config).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    def make_step(model, run):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def step():
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                text, vision = run(model)
                loss = text.float().pow(2).mean() + vision.float().pow(2).mean()
            loss.backward()
            optimizer.step()

        return step

    hybrid_step = make_step(
        hybrid,
        lambda m: (lambda o: (o.text_last_hidden_state, o.vision_last_hidden_state))(
            m(ids, mask, pixel_values=pixels, image_mask=image_mask)
        ),
    )
    separate_step = make_step(separate, lambda m: m(ids, mask, pixels))
    rounds = {"hybrid": [], "separate": []}
    for _ in range(3):  # alternate, so drift in the machine's speed hits both
        rounds["separate"] += time_steps(separate_step, args.warmup, args.steps, sync)
        rounds["hybrid"] += time_steps(hybrid_step, args.warmup, args.steps, sync)
    median = {k: statistics.median(v) for k, v in rounds.items()}
    ratio = median["hybrid"] / median["separate"]
    row = (
        f"| {args.preset} | {args.device} {args.dtype} | {args.batch} | {args.seq} | {args.fusion_layers} | "
        f"{args.batch / median['separate']:.1f} | {args.batch / median['hybrid']:.1f} | {100 * (ratio - 1):+.1f}% |"
    )
    print(row)
    if not args.no_write:
        header = (
            "Forward + backward + AdamW step, one 224 px image (or the preset's size) per item, median of 3x"
            f"{args.steps} steps after warm-up. Target: fusion overhead at most 15%.\n\n"
            "| preset | device | batch | text tokens | M | separate towers (samples/s) | hybrid (samples/s) | overhead |\n"
            "|---|---|---|---|---|---|---|---|\n"
        )
        write_section(
            f"Encoder fusion overhead ({args.preset}, {args.device} {args.dtype})",
            header + row,
        )


if __name__ == "__main__":
    main()
