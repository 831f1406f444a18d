"""Relation extraction metrics against a hand computation."""

import pytest

from pykeen_mkgformer.re import relation_scores


def test_micro_scores_leave_none_out():
    """gold/pred below: 4 non-None predictions, 2 of them right, 5 non-None gold labels.

    P = 2/4, R = 2/5, F1 = 2PR/(P+R) = 4/9; accuracy 3/7 (one right None counts there only).
    A: predicted twice, once right, gold 3 times -> P 1/2, R 1/3, F1 2/5. B: P 1/2, R 1/2.
    """
    gold = ["A", "A", "B", "None", "None", "B", "A"]
    predicted = ["A", "B", "B", "A", "None", "None", "None"]
    scores = relation_scores(gold, predicted, ["None", "A", "B"])
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(0.4)
    assert scores["f1"] == pytest.approx(4 / 9)
    assert scores["accuracy"] == pytest.approx(3 / 7)
    assert "None" not in scores["per_label"]
    assert scores["per_label"]["A"] == pytest.approx({"precision": 0.5, "recall": 1 / 3, "f1": 0.4, "support": 3})
    assert scores["per_label"]["B"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})


def test_all_none_predictions_score_zero():
    scores = relation_scores(["A", "None"], ["None", "None"], ["None", "A"])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)
    assert scores["accuracy"] == 0.5


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 gold labels but 1 predictions"):
        relation_scores(["A", "B"], ["A"], ["None", "A", "B"])
