"""Open a trained MKGformer from a folder, with the graph it was trained on.

The loading lives with the model it opens, in :mod:`pykeen_mkgformer.kgc.saved_model` (safe
folders of safetensors + JSON; PyKEEN's pickles only with ``trust_pickles=True``); the names are
re-exported here for code that imported them from ``explain``.
"""

from __future__ import annotations

from ..kgc.saved_model import (
    CONFIGURATION_STEM,
    MODEL_FILE,
    SPLIT_NAMES,
    TRAINING_FOLDER,
    TrainedLinkPredictor,
    find_model_file,
    load_trained_model,
)

__all__ = ["TrainedLinkPredictor", "load_trained_model", "find_model_file"]

_ = (CONFIGURATION_STEM, MODEL_FILE, SPLIT_NAMES, TRAINING_FOLDER)  # re-exported constants
