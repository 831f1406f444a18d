"""What relation extraction (:mod:`pykeen_mkgformer.re`) and NER (:mod:`pykeen_mkgformer.ner`) share.

- :mod:`.lines`: malformed input lines, raised with file and line or counted with ``--skip-bad-lines``
- :mod:`.encoders`: the hybrid encoder, its tokenizer and image processor from names, folders or configs
- :mod:`.images`: one image per instance (plus optional object crops), missing ones counted
- :mod:`.sampling`: low-resource training subsets (``--train-fraction``, ``--shots``)
- :mod:`.recipe`: :class:`TaskRecipe`, the typed recipe (``paper()`` / ``official()``) of a task's
  pipeline and training numbers (:class:`~pykeen_mkgformer.re.recipe.RERecipe`, :class:`~pykeen_mkgformer.ner.recipe.NERRecipe`)
- :mod:`.task`: the interface a task implements (reader, features, head, metrics)
- :mod:`.training`: the fine-tuning loop with per-epoch checkpoints and exact resume
- :mod:`.runner`: one run from data folder to ``metrics.json``; :mod:`.cli` its shared click options
"""

from .lines import BadLines, MalformedLineError
from .recipe import TaskRecipe
from .task import Task, TaskModel

__all__ = ["BadLines", "MalformedLineError", "Task", "TaskModel", "TaskRecipe"]
