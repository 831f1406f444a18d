"""Multimodal knowledge graphs for PyKEEN: triples with entity texts and images.

- :class:`MultimodalTriplesFactory`: a PyKEEN triples factory with names, descriptions and images
  per entity and a text per relation
- :mod:`.decoding`: the one image decoder (every mode to RGB, EXIF orientation, bombs refused)
- :mod:`.images`: preprocessing and the on-disk :class:`PixelCache`
- :mod:`.textfiles`: the one text reader (gzip, BOM, newlines, bad bytes named by ``file:line``)
- :mod:`.errors`: :class:`DataError` and its subclasses, naming the file (and line)
- :mod:`.datasets`: ``WN18IMG``, ``FB15k237IMG``, ``WN18IMGMini`` (bundled) and ``ShapesKG`` (synthetic)
- :mod:`.mmkgc`: ``DB15K``, ``MKGW``, ``MKGY`` (OpenKE id files, quirks counted)
"""

# PyKEEN loads this package's datasets through its ``pykeen.datasets`` entry points while
# ``pykeen/datasets/__init__.py`` runs. Import that package *before* any module of ours, so that it
# never starts while ``.datasets`` is half-imported (class-resolver would log "could not load" and
# silently miss the datasets). When PyKEEN itself is importing us, this line is a no-op.
import pykeen.datasets  # noqa: F401  isort: skip

from .datasets import WN18IMG, FB15k237IMG, MissingDataError, MultimodalDataset, ShapesKG, WN18IMGMini, data_root
from .errors import DataError, ImageError, MalformedLineError
from .mmkgc import DB15K, MKGW, MKGY, MMKGCDataset
from .images import ImageLayout, PixelCache, image_processor_for, load_rgb
from .multimodal import MultimodalTriplesFactory

__all__ = [
    "MultimodalTriplesFactory",
    "ImageLayout",
    "PixelCache",
    "DataError",
    "MalformedLineError",
    "ImageError",
    "image_processor_for",
    "load_rgb",
    "MultimodalDataset",
    "MissingDataError",
    "data_root",
    "WN18IMG",
    "FB15k237IMG",
    "WN18IMGMini",
    "ShapesKG",
    "MMKGCDataset",
    "DB15K",
    "MKGW",
    "MKGY",
]
