"""Make ``docs/explain.png``: train a tiny MKGformer on ShapesKG, explain a test query, screenshot the page.

Usage (about a minute on 2 CPU cores; needs Chromium and the ``tests`` extra)::

    python docs/make_explain_screenshot.py [--workdir /tmp/explain-docs] [--output docs/explain.png]

It prints the ``pykeen-mkgformer explain`` command it runs. The screenshot is taken with
:func:`pykeen_mkgformer.explain.browser.screenshot`, the code that the browser test
(``tests/explain/test_explain.py``) opens the page with.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/explain-docs"))
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("explain.png"))
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--height", type=int, default=1800, help="Pixels of the page's top to keep.")
    args = parser.parse_args()

    from PIL import Image
    from pykeen.pipeline import pipeline

    from pykeen_mkgformer.cli import main as cli
    from pykeen_mkgformer.data import ShapesKG
    from pykeen_mkgformer.explain.browser import screenshot
    from pykeen_mkgformer.kgc.presets import tiny_model_kwargs
    from pykeen_mkgformer.kgc.saved_model import save_pipeline_result

    torch.set_num_threads(1)
    work = args.workdir
    dataset = ShapesKG(cache_root=work / "shapes", images_per_entity=3, create_inverse_triples=True)
    folder = work / "shapes-model"
    if not (folder / "mkgformer" / "model.safetensors").is_file():
        result = pipeline(
            dataset=dataset,
            model="MKGformer",
            model_kwargs=tiny_model_kwargs(
                fusion_layers=2, image_layout=[[1, 32], [2, 16]], entity_modeling_epochs=2, entity_modeling_lr=1e-2,
                image_cache_dir=str(work / "pixels"), progress=False,
            ),
            training_loop="lcwa",
            loss="crossentropy",
            optimizer="adam",
            optimizer_kwargs=dict(lr=3e-3),
            training_kwargs=dict(num_epochs=args.epochs, batch_size=32, use_tqdm=False),
            evaluation_kwargs=dict(batch_size=64, use_tqdm=False),
            random_seed=0,
        )
        print("tail MRR (test heads never seen in training):", result.metric_results.get_metric("tail.realistic.inverse_harmonic_mean_rank"))
        save_pipeline_result(result, folder, overwrite=True)  # PyKEEN's files + the safe mkgformer/
    # a test query: its head never occurs in training, so its colour can only be read from its images
    testing = dataset.testing
    relation = testing.relation_to_id["same_colour_as"]
    h, _, t = next(triple for triple in testing.mapped_triples.tolist() if triple[1] == relation)
    page = work / "explain.html"
    command = [
        "explain", "--model", str(folder), "--head", testing.entity_id_to_label[h], "--relation", "same_colour_as",
        "--tail", testing.entity_id_to_label[t], "--top", "5", "--output", str(page), "--overwrite",
    ]
    print("pykeen-mkgformer " + shlex.join(command))
    cli(command, standalone_mode=False)
    shot = work / "explain-full.png"
    screenshot(page, shot, width=1100, clip_height=args.height)
    with Image.open(shot) as image:
        image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(args.output, optimize=True)
    print(f"wrote {args.output} ({args.output.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
