"""The hybrid text + vision transformer shared by link prediction, RE and NER."""

from .config import FUSION_VARIANTS, HybridConfig
from .fusion import CAFTextLayer, CorrelationAwareFusion, PGICLIPLayer, PGIViTLayer
from .hybrid import HybridOutput, HybridTransformer

__all__ = [
    "HybridConfig",
    "FUSION_VARIANTS",
    "HybridTransformer",
    "HybridOutput",
    "CorrelationAwareFusion",
    "CAFTextLayer",
    "PGICLIPLayer",
    "PGIViTLayer",
]
