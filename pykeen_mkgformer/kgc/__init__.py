"""MKGformer link prediction as a PyKEEN model.

- :class:`MKGformer` (:mod:`.model`): the PyKEEN model (``pipeline(model="MKGformer", ...)``)
- :class:`MKGformerInteraction` (:mod:`.interaction`): encoder + MLM transform, one matmul over entities
- :mod:`.representation`: entity token embeddings, entity images
- :mod:`.inputs`: tokenizer, pre-tokenised texts, vectorised query assembly
- :class:`EntityModeling` (:mod:`.entity_modeling`): stage 1
"""

from .entity_modeling import EntityModeling
from .inputs import QueryAssembler, QueryBatch, build_tokenizer
from .interaction import MKGformerInteraction
from .model import MKGformer
from .representation import EntityImages, EntityTokenRepresentation

__all__ = [
    "MKGformer",
    "MKGformerInteraction",
    "EntityModeling",
    "EntityImages",
    "EntityTokenRepresentation",
    "QueryAssembler",
    "QueryBatch",
    "build_tokenizer",
]
