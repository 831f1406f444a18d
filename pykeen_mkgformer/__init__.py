"""pykeen-mkgformer: MKGformer as a PyKEEN plugin.

Layers, each importing only from those below it: :mod:`pykeen_mkgformer.data` (readers, images,
datasets) -> :mod:`pykeen_mkgformer.encoder` (the hybrid transformer and its backbone towers) ->
:mod:`pykeen_mkgformer.kgc` (link prediction as a PyKEEN model) and :mod:`pykeen_mkgformer.tasks`
(:mod:`~pykeen_mkgformer.re`, :mod:`~pykeen_mkgformer.ner`) -> :mod:`pykeen_mkgformer.explain`,
:mod:`pykeen_mkgformer.demo` and the command lines.

Importing the package registers nothing. PyKEEN finds the model, the datasets and the training
callbacks through this package's ``pykeen.datasets`` entry points (:mod:`pykeen_mkgformer.plugin`,
:mod:`pykeen_mkgformer.registration`).
"""

__version__ = "0.1.0"
