"""Speed of the pixel cache on WN18IMG's real images (CPU): preprocessing once, reopening, lookups.

Usage::

    PYKEEN_MKGFORMER_DATA=../shared/data python benchmarks/pixel_cache_speed.py [--batch-size 256] [--device cpu]

Prints one line per figure (append them to benchmarks/RESULTS.md). The cache goes to a fresh
temporary folder, so the first construction really decodes every image.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from pykeen_mkgformer.data import WN18IMG, ImageLayout, PixelCache, image_processor_for


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()

    training = WN18IMG().training
    processor = image_processor_for({"model_type": "clip_vision_model", "image_size": 224})
    layout = ImageLayout.official()
    imaged = [i for i, paths in enumerate(training.entity_images) if paths]
    num_images = sum(min(len(training.entity_images[i]), layout.max_images) for i in imaged)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        cache = PixelCache(training.entity_images, processor=processor, layout=layout, cache_dir=folder, progress=False)
        build = time.perf_counter() - start
        start = time.perf_counter()
        cache = PixelCache(training.entity_images, processor=processor, layout=layout, cache_dir=folder, progress=False)
        reopen = time.perf_counter() - start

        generator = torch.Generator().manual_seed(0)
        pool = torch.as_tensor(imaged)
        batches = [pool[torch.randint(len(pool), (args.batch_size,), generator=generator)] for _ in range(args.batches)]
        cache.lookup(batches[0], device=args.device)  # warm the page cache
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for batch in batches:
            cache.lookup(batch, device=args.device)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        lookup = time.perf_counter() - start

    print(
        f"build (decode + resize, official layout 1@224+3@128+3@64): {num_images} images in {build:.1f} s "  # noqa: T201
        f"= {num_images / build:.0f} images/s"
    )
    print(f"reopen (hash {len({p for ps in training.entity_images for p in ps})} files, no decoding): {reopen:.2f} s")  # noqa: T201
    print(
        f"lookup to {args.device}, batch {args.batch_size} imaged entities: "  # noqa: T201
        f"{args.batch_size * args.batches / lookup:.0f} samples/s"
    )


if __name__ == "__main__":
    main()
