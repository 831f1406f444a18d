"""``pykeen-mkgformer ner`` end to end with tiny encoders on 50 Twitter-2017 tweets; bad lines via the CLI."""

from __future__ import annotations

import gzip
import json

from click.testing import CliRunner

from pykeen_mkgformer.cli import main
from task_fixtures import write_conll_folder


def test_ner_command_end_to_end(shared_data, tmp_path, tiny_text):
    output = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["ner", "--data", str(shared_data / "twitter2017"), "--output", str(output), "--text-encoder", str(tiny_text),
         "--epochs", "1", "--limit", "50", "--max-length", "64", "--shots", "5"],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((output / "metrics.json").read_text())
    assert set(metrics["test"]["per_label"]) == {"PER", "LOC", "ORG", "MISC"}
    assert metrics["instances"]["test"] == 50 and metrics["instances"]["train"] < 50  # 5 shots per type
    assert metrics["images"]["test"] == {**metrics["images"]["test"], "with_image": 0, "text_only": 50}
    records = [json.loads(line) for line in (output / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 50 and all(len(r["predicted"]) == len(r["words"]) == len(r["gold"]) for r in records)
    with gzip.open(shared_data / "twitter2017" / "test.txt.gz", "rt") as file:
        assert records[0]["words"][0] == file.read().splitlines()[1].split("\t")[0]
    assert (output / "model" / "head.safetensors").is_file()


def test_bad_line_stops_the_command_unless_skipped(tmp_path, tiny_text):
    sentence = [("Ann", "B-PER"), ("in", "O"), ("Rome", "B-LOC")]
    folder = write_conll_folder(tmp_path / "data", {"train": [sentence] * 4, "dev": [sentence] * 2, "test": [sentence] * 2})
    bad_line = len((folder / "train.txt").read_text().splitlines()) + 3  # the I-LOC line below
    with (folder / "train.txt").open("a") as file:
        file.write("IMGID:bad\nthe\tO\nCity\tI-LOC\n")
    arguments = ["ner", "--data", str(folder), "--text-encoder", str(tiny_text), "--epochs", "1"]
    failed = CliRunner().invoke(main, [*arguments, "--output", str(tmp_path / "a")])
    assert failed.exit_code != 0 and f"{folder / 'train.txt'}:{bad_line}: label 'I-LOC'" in failed.output
    skipped = CliRunner().invoke(main, [*arguments, "--output", str(tmp_path / "b"), "--skip-bad-lines"])
    assert skipped.exit_code == 0, skipped.output
    assert "skipped 1 malformed lines" in skipped.output
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["bad_lines"]["skipped"] == 1 and metrics["instances"]["train"] == 4
