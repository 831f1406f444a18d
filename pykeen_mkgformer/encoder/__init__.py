"""The hybrid text + vision transformer shared by link prediction, RE and NER.

- :class:`HybridConfig` and :data:`FUSION_VARIANTS` (:mod:`.config`): what the encoder is made of
- :class:`HybridTransformer` (:mod:`.hybrid`): the two towers with M fused layers
- :class:`CorrelationAwareFusion`, :class:`CAFTextLayer`, :class:`PGICLIPLayer`, :class:`PGIViTLayer`
  (:mod:`.fusion`): the fused layers
- :class:`HybridEncoderConfig`, :class:`HybridEncoderModel` (:mod:`.modeling_hybrid`): the encoder as a
  Hugging Face model, registered with ``AutoConfig`` / ``AutoModel`` on import
"""

from .config import FUSION_VARIANTS, HybridConfig
from .fusion import CAFTextLayer, CorrelationAwareFusion, PGICLIPLayer, PGIViTLayer
from .hybrid import HybridOutput, HybridTransformer
from .modeling_hybrid import HybridEncoderConfig, HybridEncoderModel

__all__ = [
    "HybridConfig",
    "FUSION_VARIANTS",
    "HybridTransformer",
    "HybridOutput",
    "HybridEncoderConfig",
    "HybridEncoderModel",
    "CorrelationAwareFusion",
    "CAFTextLayer",
    "PGICLIPLayer",
    "PGIViTLayer",
]
