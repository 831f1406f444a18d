"""The module PyKEEN's ``pykeen.datasets`` entry points name: the datasets, and registration of the rest.

PyKEEN imports this module while ``pykeen/datasets/__init__.py`` runs (possibly half-way through
``pykeen/models/__init__.py``), so it imports only the data layer (which uses ``pykeen.datasets.base``
and the triples factory) and :mod:`.registration`, which registers the model and the other
components as soon as PyKEEN's resolvers exist (see there).
"""

from .data.datasets import WN18IMG, FB15k237IMG, ShapesKG, WN18IMGMini
from .data.mmkgc import DB15K, MKGW, MKGY
from .registration import register_with_pykeen

__all__ = ["WN18IMG", "FB15k237IMG", "WN18IMGMini", "ShapesKG", "DB15K", "MKGW", "MKGY"]

register_with_pykeen()
