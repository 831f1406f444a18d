"""``pykeen-mkgformer re`` end to end with tiny encoders on 50 MNRE instances, and exact resume."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pykeen_mkgformer.cli import main
from pykeen_mkgformer.re import read_mnre_folder
from pykeen_mkgformer.re.train import RelationExtraction
from pykeen_mkgformer.tasks.runner import RunOptions, run_task
from pykeen_mkgformer.tasks.training import FineTuner


def test_re_command_writes_metrics_predictions_and_weights(shared_data, tmp_path, tiny_text):
    folder = shared_data / "mnre"
    output = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["re", "--data", str(folder), "--output", str(output), "--text-encoder", str(tiny_text),
         "--vision-encoder", "tiny", "--epochs", "1", "--batch-size", "16", "--limit", "50", "--seed", "1"],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((output / "metrics.json").read_text())
    assert {"precision", "recall", "f1"} <= set(metrics) and 0.0 <= metrics["f1"] <= 1.0
    assert set(metrics["test"]["per_label"]) == set(json.loads((folder / "rel2id.json").read_text())) - {"None"}
    records = [json.loads(line) for line in (output / "predictions.jsonl").read_text().splitlines()]
    test = read_mnre_folder(folder, "test")[:50]
    assert [record["gold"] for record in records] == [instance.relation for instance in test]
    # images: the instances whose img_id exists in images/ used it, the others ran text-only
    available = {path.name for path in (folder / "images").iterdir()}
    train = read_mnre_folder(folder, "train")[:50]
    assert metrics["images"]["train"]["with_image"] == sum(instance.image in available for instance in train) > 0
    assert metrics["images"]["test"]["text_only"] == sum(instance.image not in available for instance in test)
    assert "text-only" in result.output
    for name in ("model/encoder/config.json", "model/encoder/model.safetensors", "model/head.safetensors", "model/task.json", "checkpoint.pt"):
        assert (output / name).is_file(), name
    assert "<s>" in (output / "model" / "tokenizer" / "tokenizer.json").read_text()


def _options(folder, output, text, **kwargs) -> RunOptions:
    return RunOptions(data=folder, output=output, text_encoder=str(text), epochs=2, batch_size=8, limit=24,
                      lr=1e-3, seed=5, progress=False, **kwargs)


def test_resumed_run_ends_like_an_uninterrupted_one(shared_data, tmp_path, tiny_text, monkeypatch):
    folder = shared_data / "mnre"
    straight = run_task(RelationExtraction, _options(folder, tmp_path / "straight", tiny_text))

    original_save = FineTuner._save

    def save_then_stop(self, *args):
        original_save(self, *args)
        raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(FineTuner, "_save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_task(RelationExtraction, _options(folder, tmp_path / "stopped", tiny_text))
    assert not (tmp_path / "stopped" / "metrics.json").exists()
    monkeypatch.setattr(FineTuner, "_save", original_save)
    resumed = run_task(RelationExtraction, _options(folder, tmp_path / "stopped", tiny_text))

    assert resumed["resumed_from"] == 1 and straight["resumed_from"] is None
    assert resumed["history"] == straight["history"]
    assert resumed["test"] == straight["test"]
    assert (tmp_path / "stopped" / "predictions.jsonl").read_text() == (tmp_path / "straight" / "predictions.jsonl").read_text()

    with pytest.raises(ValueError, match="other settings .*lr"):
        run_task(RelationExtraction, _options(folder, tmp_path / "stopped", tiny_text).__class__(
            **{**_options(folder, tmp_path / "stopped", tiny_text).__dict__, "lr": 5e-4}))
