"""MKGformer link prediction as a PyKEEN model.

- :class:`MKGformer` (:mod:`.model`): the PyKEEN ``ERModel`` (``pipeline(model="MKGformer", ...)``)
- :class:`MKGformerInteraction` (:mod:`.interaction`): a PyKEEN interaction, encoder + MLM head, one matmul over entities
- :mod:`.representation`: PyKEEN representations: entity / relation token ids, entity images, token embeddings, biases
- :mod:`.multimodal`: :class:`MultimodalEntityRepresentation` (one vector per entity for any interaction),
  :class:`MultimodalRotatE`
- :mod:`.registry`: :func:`register_with_pykeen` (PyKEEN's interaction, representation and model resolvers)
- :mod:`.builder`: towers, encoder, MLM head and pixel cache as the model builds them
- :mod:`.inputs`: tokenizer, pre-tokenised texts, vectorised query assembly, :func:`recover_tokenizer`
- :class:`EntityModeling` (:mod:`.entity_modeling`): stage 1
- :class:`KGCRecipe` (:mod:`.recipe`): the plugin's or the official code's inputs, initialisation and stage 1
- :class:`SmoothedSoftmaxCrossEntropyLoss` (:mod:`.losses`) and the training callbacks of :mod:`.training`
  (``linearwarmup``, ``decoupledweightdecay``): the official recipe's loss, schedule and AdamW groups;
  :mod:`.loops`: PyKEEN's LCWA / sLCWA loops that count their batches (``"BatchCountingLCWA"``), for the schedule
- :class:`SelectingEarlyStopper` (:mod:`.stopping`, ``stopper="selectingearly"``): stops on one validation
  metric, tests the best state of another (the official best-Hits@10 checkpoint), filters validation with
  the test triples too
- :mod:`.new_entities`: :func:`add_entities` (new entities after training), :func:`extend_triples_factory`
- :mod:`.prediction`: ``pykeen-mkgformer predict`` (:func:`predict`)
- :mod:`.saved_model`: saving and opening models as data (safetensors + JSON): :func:`save_model`,
  :func:`save_pipeline_result`, :func:`load_model`, :func:`load_trained_model`
- :mod:`.inductive`: :func:`evaluate_new_entities` (held-out entities, PyKEEN's filtered evaluator)
- :mod:`.parallel`, :mod:`.vocab_parallel`, :mod:`.lightning`: the vocabulary-parallel entity head, ``MKGformer(head_parallel="vocab")``
  and its Lightning module (``VocabParallelLCWALitModule``); :mod:`.sampled`: sampled softmax objectives

Names are imported on first access (PEP 562), so that PyKEEN can register :class:`MKGformer`
while it builds its model resolver without importing transformers' models.
"""

from __future__ import annotations

import importlib
from typing import Any

# PyKEEN's model resolver first: PyKEEN then registers this package's models (through the plugin's entry
# points, pykeen_mkgformer.registration) before any of its modules is half-way through its own import
import pykeen.models  # noqa: F401  isort: skip

__all__ = [
    "MKGformer",
    "MKGformerInteraction",
    "EntityModeling",
    "KGCRecipe",
    "SmoothedSoftmaxCrossEntropyLoss",
    "LinearWarmupTrainingCallback",
    "DecoupledWeightDecayTrainingCallback",
    "BatchCountingLCWATrainingLoop",
    "BatchCountingSLCWATrainingLoop",
    "SelectingEarlyStopper",
    "EntityImages",
    "EntityTokenRepresentation",
    "EntityTextTokens",
    "RelationTextTokens",
    "EntityTokenEmbedding",
    "EntityBias",
    "EntityImageRepresentation",
    "MultimodalEntityRepresentation",
    "MultimodalRotatE",
    "register_with_pykeen",
    "entity_texts",
    "directed_relation_texts",
    "recover_tokenizer",
    "QueryAssembler",
    "QueryBatch",
    "build_tokenizer",
    "tiny_text_encoder",
    "tiny_vision_encoder",
    "tiny_model_kwargs",
    "NewEntityError",
    "add_entities",
    "extend_triples_factory",
    "read_new_entities",
    "predict",
    "load_model",
    "save_model",
    "save_pipeline_result",
    "load_trained_model",
]

_WHERE = {
    "MKGformer": ".model",
    "MKGformerInteraction": ".interaction",
    "EntityModeling": ".entity_modeling",
    "KGCRecipe": ".recipe",
    "SmoothedSoftmaxCrossEntropyLoss": ".losses",
    "LinearWarmupTrainingCallback": ".training",
    "DecoupledWeightDecayTrainingCallback": ".training",
    "BatchCountingLCWATrainingLoop": ".loops",
    "BatchCountingSLCWATrainingLoop": ".loops",
    "SelectingEarlyStopper": ".stopping",
    "EntityImages": ".representation",
    "EntityTokenRepresentation": ".representation",
    "EntityTextTokens": ".representation",
    "RelationTextTokens": ".representation",
    "EntityTokenEmbedding": ".representation",
    "EntityBias": ".representation",
    "EntityImageRepresentation": ".representation",
    "MultimodalEntityRepresentation": ".multimodal",
    "MultimodalRotatE": ".multimodal",
    "register_with_pykeen": ".registry",
    "entity_texts": ".inputs",
    "directed_relation_texts": ".inputs",
    "recover_tokenizer": ".inputs",
    "QueryAssembler": ".inputs",
    "QueryBatch": ".inputs",
    "build_tokenizer": ".inputs",
    "tiny_text_encoder": ".presets",
    "tiny_vision_encoder": ".presets",
    "tiny_model_kwargs": ".presets",
    "NewEntityError": ".new_entities",
    "add_entities": ".new_entities",
    "extend_triples_factory": ".new_entities",
    "read_new_entities": ".new_entities",
    "predict": ".prediction",
    "load_model": ".saved_model",
    "save_model": ".saved_model",
    "save_pipeline_result": ".saved_model",
    "load_trained_model": ".saved_model",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
