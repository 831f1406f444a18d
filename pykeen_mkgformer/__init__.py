"""pykeen-mkgformer: MKGformer as a PyKEEN plugin.

The hybrid encoder lives in :mod:`pykeen_mkgformer.encoder`; link prediction in
:mod:`pykeen_mkgformer.kgc`; multimodal datasets in :mod:`pykeen_mkgformer.data`; the companion
tasks in :mod:`pykeen_mkgformer.re` and :mod:`pykeen_mkgformer.ner`.

Importing any part of the package (PyKEEN does so when it loads the ``pykeen.datasets`` entry
points) registers the ``MKGformer`` model with PyKEEN's ``model_resolver``
(:mod:`pykeen_mkgformer.registration`).
"""

from .registration import ensure_registered as _ensure_registered

__version__ = "0.1.0"

_ensure_registered()
