"""The CRF head against a brute-force (hand) Viterbi, and seqeval metrics against hand counts."""

from __future__ import annotations

import itertools

import pytest
import torch
from transformers import BertConfig, CLIPVisionConfig

from pykeen_mkgformer.encoder import HybridConfig, HybridTransformer
from pykeen_mkgformer.ner import CRFTagger, entity_scores


def _path_score(crf, emissions, path):
    """s(x, y) = start[y1] + sum_i e[i, y_i] + sum_i A[y_{i-1}, y_i] + end[y_n]."""
    score = crf.start_transitions[path[0]] + crf.end_transitions[path[-1]]
    score = score + sum(emissions[i, tag] for i, tag in enumerate(path))
    return score + sum(crf.transitions[a, b] for a, b in zip(path, path[1:]))


@pytest.fixture
def tagger():
    config = HybridConfig(
        text=BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
        vision=CLIPVisionConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=16, patch_size=8),
        fusion_layers=1,
    )
    torch.manual_seed(0)
    return CRFTagger(HybridTransformer(config), num_tags=3)


def test_decode_and_loss_match_enumeration(tagger):
    """Two sentences (3 words and 2 words, the second padded): Viterbi = best of all paths, and
    the loss = mean of log Z - s(x, gold) with Z summed over every path of each sentence's length."""
    crf = tagger.crf
    with torch.no_grad():
        crf.transitions.copy_(torch.tensor([[0.5, -1.0, 0.2], [-2.0, 0.3, 1.0], [0.1, 0.4, -0.5]]))
        crf.start_transitions.copy_(torch.tensor([0.2, -0.3, 0.0]))
        crf.end_transitions.copy_(torch.tensor([0.0, 0.5, -0.2]))
    emissions = torch.tensor(
        [[[1.0, 0.0, 0.3], [0.2, 0.9, -0.4], [0.0, 0.1, 0.8]], [[0.1, 0.7, 0.0], [1.2, -0.3, 0.4], [9.0, 9.0, 9.0]]]
    )
    tagger.emissions = lambda batch: emissions  # the encoder is not what is tested here
    batch = {
        "word_mask": torch.tensor([[True, True, True], [True, True, False]]),
        "tags": torch.tensor([[0, 1, 2], [1, 0, 0]]),
    }
    expected_paths, expected_nll = [], []
    with torch.no_grad():
        for row, length in enumerate((3, 2)):
            paths = list(itertools.product(range(3), repeat=length))
            scores = torch.stack([_path_score(crf, emissions[row], path) for path in paths])
            expected_paths.append(list(paths[int(scores.argmax())]))
            gold = tuple(batch["tags"][row, :length].tolist())
            expected_nll.append(torch.logsumexp(scores, 0) - _path_score(crf, emissions[row], gold))
    assert tagger.predict(batch) == expected_paths
    assert float(tagger.loss(batch).detach()) == pytest.approx(float(torch.stack(expected_nll).mean()), abs=1e-5)


def test_emissions_come_from_first_pieces(tagger):
    """Word i's emission scores are the head applied to the state at ``word_index[i]``."""
    tagger.eval()
    batch = {
        "input_ids": torch.tensor([[1, 5, 6, 7, 2]]),
        "attention_mask": torch.ones(1, 5, dtype=torch.long),
        "word_index": torch.tensor([[1, 3]]),
        "word_mask": torch.tensor([[True, True]]),
    }
    states = tagger.text_states(batch)
    expected = tagger.emission(states[0, [1, 3]])
    assert torch.allclose(tagger.emissions(batch)[0], expected, atol=1e-6)


def test_entity_scores_by_hand():
    """Gold entities: PER(0-1), LOC(3), ORG(s2); predicted: PER(0-1) right, ORG(3) wrong.

    P = 1/2, R = 1/3, F1 = 2 * (1/6) / (5/6) = 0.4; PER 1/1, LOC 0 (support 1), ORG 0 (support 1).
    """
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "O"]]
    scores = entity_scores(gold, predicted)
    assert (scores["precision"], scores["recall"]) == pytest.approx((0.5, 1 / 3))
    assert scores["f1"] == pytest.approx(0.4)
    assert scores["per_label"]["PER"] == pytest.approx({"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1})
    assert scores["per_label"]["LOC"]["recall"] == 0.0 and scores["per_label"]["LOC"]["support"] == 1
    assert scores["per_label"]["ORG"]["precision"] == 0.0
    with pytest.raises(ValueError):
        entity_scores(gold, predicted[:1])
