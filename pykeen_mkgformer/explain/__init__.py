"""Case analysis of a trained MKGformer: tokens, images, CAF heatmaps, PGI attention and ranked answers."""

from .api import explain
from .explanation import Answer, Explanation, FusedLayer, ImageSlot, QueryToken, image_slots
from .link_prediction import explain_link_prediction
from .figure import render_png, write_png
from .html import render_html, write_html
from .relation_extraction import explain_relation_extraction, load_relation_model
from .results import TrainedLinkPredictor, load_trained_model

__all__ = [
    "explain",
    "explain_relation_extraction",
    "load_relation_model",
    "render_html",
    "write_html",
    "render_png",
    "write_png",
    "Answer",
    "Explanation",
    "FusedLayer",
    "ImageSlot",
    "QueryToken",
    "image_slots",
    "explain_link_prediction",
    "TrainedLinkPredictor",
    "load_trained_model",
]
