"""Case analysis of a trained MKGformer: tokens, images, CAF heatmaps, PGI attention and ranked answers.

- :func:`explain`: one query of a model folder (PyKEEN results / experiment, or a ``re`` output) -> :class:`Explanation`
- :func:`explain_link_prediction`, :func:`explain_relation_extraction`: the same from loaded objects / an ``re`` folder
- :func:`write_html` (a self-contained page), :func:`write_png` (the heatmaps as a figure)
- :func:`load_trained_model`: a PyKEEN results folder with the graph it was trained on
"""

from .api import explain
from .explanation import Answer, Explanation, FusedLayer, ImageSlot, QueryToken, image_slots
from .figure import render_png, write_png
from .html import render_html, write_html
from .link_prediction import explain_link_prediction
from .relation_extraction import explain_relation_extraction, load_relation_model
from .results import TrainedLinkPredictor, load_trained_model

__all__ = [
    "Answer",
    "Explanation",
    "FusedLayer",
    "ImageSlot",
    "QueryToken",
    "TrainedLinkPredictor",
    "explain",
    "explain_link_prediction",
    "explain_relation_extraction",
    "image_slots",
    "load_relation_model",
    "load_trained_model",
    "render_html",
    "render_png",
    "write_html",
    "write_png",
]
