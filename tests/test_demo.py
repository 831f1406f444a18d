"""The demo command end to end (shortened: one MKGformer epoch, two TransE epochs; both tables)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pykeen_mkgformer.cli import main


def test_demo_prints_the_table_and_writes_results(tmp_path):
    result = CliRunner().invoke(
        main,
        ["demo", "--output", str(tmp_path), "--model", "MKGformer", "--model", "TransE",
         "--epochs", "1", "--kge-epochs", "2", "--entity-modeling-epochs", "0", "--shapes-epochs", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "| MKGformer |" in result.output and "| TransE |" in result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["model"] for row in summary] == ["MKGformer", "TransE"]
    for row in summary:
        assert 0.0 < row["mrr"] <= 1.0 and row["mr"] >= 1.0 and row["parameters"] > 0
    assert (tmp_path / "MKGformer" / "trained_model.pkl").is_file()
    # the ShapesKG table: MKGformer with and without images, TransE (RotatE was not asked for)
    assert "ShapesKG" in result.output and "| MKGformer (no images) |" in result.output
    shapes = json.loads((tmp_path / "ShapesKG" / "summary.json").read_text())
    assert [row["model"] for row in shapes] == ["MKGformer", "MKGformer (no images)", "TransE"]
    for row in shapes:
        assert 0.0 < row["mrr"] <= 1.0 and row["mr"] >= 1.0
    assert (tmp_path / "ShapesKG" / "MKGformer_no_images" / "trained_model.pkl").is_file()
    # the no-images model reads no pixels
    import torch

    assert torch.load(tmp_path / "ShapesKG" / "MKGformer_no_images" / "trained_model.pkl", weights_only=False).images is None


def test_demo_rejects_unknown_models(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--output", str(tmp_path), "--model", "DistMult"])
    assert result.exit_code != 0 and "DistMult" in result.output
