"""Multimodal relation extraction (MNRE) on the hybrid encoder.

- :mod:`.data`: the MNRE readers (JSON lines, and the original release's Python-literal lines)
- :mod:`.recipe`: :class:`RERecipe` (``paper()`` / ``official()``)
- :mod:`.model`: entity markers and the head (head and tail marker states -> classifier)
- :mod:`.train`: the :class:`RelationExtraction` task the ``pykeen-mkgformer re`` command runs,
  and its metrics (micro P/R/F1 over relations other than ``None``)
"""

from .data import MNRE_SPLIT_FILES, NONE_RELATION, RelationInstance, Span, load_relations, read_mnre, read_mnre_folder
from .model import ENTITY_MARKERS, RelationClassifier, mark_entities
from .recipe import RERecipe
from .train import RelationExtraction, relation_scores

__all__ = [
    "ENTITY_MARKERS",
    "MNRE_SPLIT_FILES",
    "NONE_RELATION",
    "RelationClassifier",
    "RelationExtraction",
    "RelationInstance",
    "RERecipe",
    "Span",
    "load_relations",
    "mark_entities",
    "read_mnre",
    "read_mnre_folder",
    "relation_scores",
]
