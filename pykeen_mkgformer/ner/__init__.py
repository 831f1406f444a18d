"""Multimodal named entity recognition (Twitter-2017) on the hybrid encoder.

- :mod:`.data`: the CoNLL reader with ``IMGID:`` lines, BIO checks, word-piece alignment
- :mod:`.recipe`: :class:`NERRecipe` (``paper()`` / ``official()``)
- :mod:`.model`: the CRF head (pytorch-crf) over the first sub-token state of every word (or over
  every piece, the official scope)
- :mod:`.train`: the :class:`NamedEntityRecognition` task the ``pykeen-mkgformer ner`` command runs,
  and its entity-level metrics (seqeval)
"""

from .data import TWITTER_SPLIT_FILES, Sentence, WordAlignment, align_words, read_conll, read_conll_folder
from .model import CRFTagger
from .recipe import NERRecipe
from .train import NamedEntityRecognition, entity_scores

__all__ = [
    "CRFTagger",
    "NERRecipe",
    "NamedEntityRecognition",
    "Sentence",
    "TWITTER_SPLIT_FILES",
    "WordAlignment",
    "align_words",
    "entity_scores",
    "read_conll",
    "read_conll_folder",
]
