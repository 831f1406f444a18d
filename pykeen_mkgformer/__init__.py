"""pykeen-mkgformer: MKGformer as a PyKEEN plugin.

The hybrid encoder lives in :mod:`pykeen_mkgformer.encoder`; link prediction in
:mod:`pykeen_mkgformer.kgc`; multimodal datasets in :mod:`pykeen_mkgformer.data`; the companion
tasks in :mod:`pykeen_mkgformer.re` and :mod:`pykeen_mkgformer.ner`.
"""

__version__ = "0.1.0"
