"""The NER task (``pykeen-mkgformer ner``) and its entity-level metrics (seqeval, CoNLL evaluation)."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
from transformers import PreTrainedTokenizerBase

from ..encoder import HybridTransformer
from ..tasks.task import Task, pad_token_ids
from .data import Sentence, align_words, entity_type, read_conll_folder
from .model import CRFTagger
from .recipe import OFFICIAL_TAGS, NERRecipe

__all__ = ["NamedEntityRecognition", "entity_scores"]


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Entity-level micro precision / recall / F1 (an entity counts when type and span match), per type."""
    if [len(g) for g in gold] != [len(p) for p in predicted]:
        raise ValueError("Gold and predicted tag sequences differ in number or length.")
    gold, predicted = [list(g) for g in gold], [list(p) for p in predicted]
    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    return {
        "precision": float(precision_score(gold, predicted, zero_division=0)),
        "recall": float(recall_score(gold, predicted, zero_division=0)),
        "f1": float(f1_score(gold, predicted, zero_division=0)),
        "token_accuracy": float(accuracy_score(gold, predicted)),
        "sentences": len(gold),
        "per_label": {
            label: {
                "precision": float(row["precision"]),
                "recall": float(row["recall"]),
                "f1": float(row["f1-score"]),
                "support": int(row["support"]),
            }
            for label, row in report.items()
            if not label.endswith(" avg")
        },
    }


class NamedEntityRecognition(Task[Sentence]):
    """Twitter-2017 MNER: BIO tags for every word of a tweet (with its image), CRF decoding."""

    name = "ner"
    recipe_class = NERRecipe
    recipe: NERRecipe

    def read(self, split: str) -> list[Sentence]:
        """The split's tweets."""
        return read_conll_folder(self.data, split, bad_lines=self.bad_lines)

    def image_name(self, instance: Sentence) -> str | None:
        """``<IMGID>.jpg``."""
        return instance.image

    def classes(self, instance: Sentence) -> set[str]:
        """K shots per entity type (``O`` for tweets without entities)."""
        types = {entity_type(tag) for tag in instance.tags} - {None}
        return types or {"O"}

    def crop_key(self, instance: Sentence) -> str | None:
        """The official MNER crop index's key: the image's file name."""
        return instance.image

    def setup(self, tokenizer: PreTrainedTokenizerBase, encoder: HybridTransformer, train: Sequence[Sentence]) -> None:
        """Tags: ``O``, then ``B-``/``I-`` of every entity type in the training data (sorted); or the
        official tag set (:data:`~.recipe.OFFICIAL_TAGS`) when the CRF runs over pieces."""
        if self.recipe.crf_scope == "pieces":
            self.labels = list(OFFICIAL_TAGS)
            self.label_ids = {label: index for index, label in enumerate(self.labels)}
            return
        types = sorted({entity_type(tag) for sentence in train for tag in sentence.tags} - {None})
        self.labels = ["O", *(f"{prefix}-{kind}" for kind in types for prefix in ("B", "I"))]
        self.label_ids = {label: index for index, label in enumerate(self.labels)}

    def features(self, instance: Sentence, tokenizer: PreTrainedTokenizerBase, max_length: int) -> dict[str, Any]:
        """Word pieces, each word's first piece, tag ids of the words that fit."""
        if self.recipe.crf_scope == "pieces":
            return self._piece_features(instance, tokenizer, max_length)
        unknown = sorted(set(instance.tags) - set(self.label_ids))
        if unknown:
            raise ValueError(f"{instance.source}: labels {unknown} do not occur in the training data ({self.labels}).")
        alignment = align_words(instance.words, tokenizer, max_length)
        kept = len(alignment.word_starts)
        return {
            "input_ids": alignment.input_ids,
            "word_index": alignment.word_starts,
            "tags": [self.label_ids[tag] for tag in instance.tags[:kept]],
            "truncated": kept < len(instance.words),
        }

    def _piece_features(self, instance: Sentence, tokenizer: PreTrainedTokenizerBase, max_length: int) -> dict[str, Any]:
        """The official MNER input: every word's pieces, the word's tag on its first piece and ``X`` on the
        others, cut to ``max_length - 2`` pieces when there are ``max_length - 1`` or more, then
        ``[CLS] ... [SEP]`` tagged ``[CLS]`` / ``[SEP]``. ``OTHER`` types are read as ``MISC``."""
        ids = self.label_ids
        pieces: list[str] = []
        labels: list[int] = []
        starts: list[int | None] = []
        for word, tag in zip(instance.words, instance.tags):
            tag = tag[:2] + "MISC" if "OTHER" in tag else tag
            if tag not in ids or tag in ("PAD", "X", "[CLS]", "[SEP]"):
                raise ValueError(f"{instance.source}: label {tag!r} is not in the official tag set {list(OFFICIAL_TAGS[1:10])}.")
            word_pieces = tokenizer.tokenize(word)
            starts.append(len(pieces) if word_pieces else None)
            pieces.extend(word_pieces)
            labels.extend([ids[tag]] + [ids["X"]] * (len(word_pieces) - 1))
        if len(pieces) >= max_length - 1:
            pieces, labels = pieces[: max_length - 2], labels[: max_length - 2]
        kept = next((word for word, start in enumerate(starts) if start is not None and start >= len(pieces)), len(starts))
        return {
            "input_ids": [tokenizer.cls_token_id, *tokenizer.convert_tokens_to_ids(pieces), tokenizer.sep_token_id],
            # a word without pieces points at [CLS] (0) and is predicted O
            "word_index": [start + 1 if start is not None else 0 for start in starts[:kept]],
            "tags": [ids["[CLS]"], *labels, ids["[SEP]"]],
            "truncated": kept < len(instance.words),
        }

    def collate(self, features: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
        """Right-padded pieces and words; ``word_mask`` is on for the words that carry a label.

        With ``crf_scope="pieces"`` the tags are per piece (padded with ``PAD`` = 0, masked by ``attention_mask``).
        """
        input_ids, attention_mask = pad_token_ids(
            [feature["input_ids"] for feature in features], pad_token_id, self.padded_length()
        )
        n_words = max(max(len(feature["word_index"]) for feature in features), 1)
        word_index = torch.zeros((len(features), n_words), dtype=torch.long)
        word_mask = torch.zeros((len(features), n_words), dtype=torch.bool)
        pieces = self.recipe.crf_scope == "pieces"
        tags = torch.zeros((len(features), input_ids.shape[1] if pieces else n_words), dtype=torch.long)
        for row, feature in enumerate(features):
            words = len(feature["word_index"])
            word_index[row, :words] = torch.tensor(feature["word_index"], dtype=torch.long)
            word_mask[row, :words] = True
            tags[row, : len(feature["tags"])] = torch.tensor(feature["tags"], dtype=torch.long)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "word_index": word_index,
            "word_mask": word_mask,
            "tags": tags,
        }

    def build_model(self, encoder: HybridTransformer) -> CRFTagger:
        """The CRF tagger over :attr:`labels`."""
        return CRFTagger(
            encoder,
            len(self.labels),
            dropout=self.recipe.head_dropout,
            scope=self.recipe.crf_scope,
            unlabelled_tag=self.label_ids["O"],
        )

    def _tags(self, instance: Sentence, prediction: Sequence[int]) -> list[str]:
        """Predicted tags of every word; words cut off by ``max_length`` get ``O`` (and so does a word whose
        first piece was decoded as one of the official non-entity tags ``PAD``, ``X``, ``[CLS]``, ``[SEP]``)."""
        tags = [self.labels[tag] for tag in prediction]
        tags = [tag if tag == "O" or tag[:2] in ("B-", "I-") else "O" for tag in tags]
        return tags + ["O"] * (len(instance.words) - len(prediction))

    def _gold(self, instance: Sentence) -> list[str]:
        """The gold tags (the official tag set reads ``OTHER`` as ``MISC``)."""
        if self.recipe.crf_scope == "pieces":
            return [tag[:2] + "MISC" if "OTHER" in tag else tag for tag in instance.tags]
        return list(instance.tags)

    def score(self, instances: Sequence[Sentence], predictions: Sequence[Sequence[int]]) -> dict[str, Any]:
        """:func:`entity_scores` over all words (cut-off words count as predicted ``O``)."""
        return entity_scores(
            [self._gold(instance) for instance in instances],
            [self._tags(instance, prediction) for instance, prediction in zip(instances, predictions)],
        )

    def prediction_record(self, instance: Sentence, prediction: Sequence[int]) -> dict[str, Any]:
        """Source line, words, gold and predicted tags."""
        return {
            "source": instance.source,
            "image": instance.image,
            "words": list(instance.words),
            "gold": list(instance.tags),
            "predicted": self._tags(instance, prediction),
        }

    def describe(self) -> dict[str, Any]:
        """The tag set in id order."""
        return {"task": self.name, "labels": self.labels, "recipe": self.recipe.to_dict()}
