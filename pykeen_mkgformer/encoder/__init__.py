"""The hybrid text + vision transformer shared by link prediction, RE and NER."""

from .config import HybridConfig
from .fusion import CAFTextLayer, CorrelationAwareFusion, PGICLIPLayer, PGIViTLayer
from .hybrid import HybridOutput, HybridTransformer

__all__ = [
    "HybridConfig",
    "HybridTransformer",
    "HybridOutput",
    "CorrelationAwareFusion",
    "CAFTextLayer",
    "PGICLIPLayer",
    "PGIViTLayer",
]
