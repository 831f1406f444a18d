"""The interface a task implements: reader, features, batches, head and metrics.

:mod:`pykeen_mkgformer.tasks.runner` drives any :class:`Task` from a data folder to
``metrics.json``; relation extraction and NER only say what is specific to them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Generic, Sequence, TypeVar

import torch
from safetensors.torch import save_file
from torch import nn
from transformers import PreTrainedTokenizerBase

from ..encoder import HybridTransformer
from .images import ImageBatch
from .lines import BadLines
from .recipe import TaskRecipe

__all__ = ["Task", "TaskModel", "Instance", "pad_token_ids"]

Instance = TypeVar("Instance")

#: the split names a task reads, in the order they are read
SPLITS = ("train", "dev", "test")


def pad_token_ids(
    sequences: Sequence[Sequence[int]], pad_token_id: int, length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists into ``input_ids`` and the matching ``attention_mask`` (1 on real tokens).

    :param length: pad to this length (the official ``padding="max_length"``); the longest sequence when None
    """
    longest = max(len(sequence) for sequence in sequences)
    length = longest if length is None else max(length, longest)
    input_ids = torch.full((len(sequences), length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        attention_mask[row, : len(sequence)] = 1
    return input_ids, attention_mask


class TaskModel(nn.Module, ABC):
    """The hybrid encoder with a task head on top of its last text states."""

    def __init__(self, encoder: HybridTransformer):
        super().__init__()
        self.encoder = encoder

    def text_states(self, batch: dict[str, Any]) -> torch.Tensor:
        """Last text states ``(batch, n_tokens, width)``, with the batch's images when it has any."""
        images: ImageBatch | None = batch.get("images")
        pixel_values, image_mask = images if images is not None else (None, None)
        return self.encoder(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            pixel_values=pixel_values,
            image_mask=image_mask,
        ).text_last_hidden_state

    @abstractmethod
    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """The training loss of a batch (a scalar)."""

    @abstractmethod
    def predict(self, batch: dict[str, Any]) -> list:
        """One prediction per instance of the batch (label ids, or a list of tag ids)."""

    def save(self, folder: Path) -> None:
        """Write the encoder (``encoder/``) and the head's weights (``head.safetensors``): data only, no pickle."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(folder / "encoder")
        head = {
            name: tensor.detach().contiguous().cpu()
            for name, tensor in self.state_dict().items()
            if not name.startswith("encoder.")
        }
        temporary = folder / ".head.safetensors.tmp"
        save_file(head, str(temporary))
        temporary.replace(folder / "head.safetensors")

    @classmethod
    def load(cls, folder: str | Path, *, device: str | torch.device = "cpu", task: str | None = None) -> "TaskModel":
        """Inverse of :meth:`save` (with ``task.json`` of the folder): the encoder and the head from
        safetensors, the labels from JSON; nothing in the folder can run code.

        :param folder: the ``model/`` folder of a run's output (or the output folder itself)
        :param task: the task the folder must hold (``"re"``, ``"ner"``), checked against ``task.json``
        :raises FileNotFoundError: naming a missing file
        :raises ValueError: for another task, or weights that do not fit a head over the labels
        """
        import json

        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / "task.json").is_file() and (folder / "model" / "task.json").is_file():
            folder = folder / "model"
        for name in ("task.json", "head.safetensors", "encoder"):
            if not (folder / name).exists():
                raise FileNotFoundError(f"{folder / name} is missing; expected the model/ folder of a task run.")
        try:
            described = json.loads((folder / "task.json").read_text(encoding="utf-8"))
            labels = [str(label) for label in described["labels"]]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError) as error:
            raise ValueError(f"{folder / 'task.json'}: not a task description ({type(error).__name__}: {error}).") from error
        if task is not None and described.get("task") != task:
            raise ValueError(f"{folder} holds a {described.get('task')!r} model, not {task!r}.")
        model = cls(HybridTransformer.load(folder / "encoder"), len(labels))
        result = model.load_state_dict(load_file(str(folder / "head.safetensors")), strict=False)
        missing = [key for key in result.missing_keys if not key.startswith("encoder.")]
        if missing or result.unexpected_keys:
            raise ValueError(
                f"{folder / 'head.safetensors'} does not fit a {cls.__name__} over {len(labels)} labels "
                f"(missing {missing}, unexpected {result.unexpected_keys})."
            )
        model.labels = labels
        return model.to(device).eval()


class Task(ABC, Generic[Instance]):
    """What a multimodal text task tells the runner."""

    #: the CLI sub-command and the ``task`` field of metrics.json
    name: ClassVar[str]
    #: the task's recipe type (``paper()`` / ``official()``)
    recipe_class: ClassVar[type[TaskRecipe]] = TaskRecipe

    def __init__(self, data: Path, *, bad_lines: BadLines, recipe: TaskRecipe | None = None):
        self.data = Path(data)
        self.bad_lines = bad_lines
        self.recipe = recipe if recipe is not None else self.recipe_class.paper()

    def padded_length(self) -> int | None:
        """The length batches are padded to: ``max_length`` under ``padding="max_length"``, else None (longest)."""
        return self.recipe.max_length if self.recipe.padding == "max_length" else None

    def crop_key(self, instance: Instance) -> str | None:
        """The instance's key in a per-instance crop index (``crop_source="index"``); None: no crops."""
        return None

    # ------------------------------------------------------------------ data
    @abstractmethod
    def read(self, split: str) -> list[Instance]:
        """The instances of ``"train"``, ``"dev"`` or ``"test"`` (malformed lines go to :attr:`bad_lines`)."""

    @abstractmethod
    def image_name(self, instance: Instance) -> str | None:
        """The file name of the instance's image in the images folder."""

    @abstractmethod
    def classes(self, instance: Instance) -> set[str]:
        """The classes an instance counts for in K-shot sampling."""

    # ------------------------------------------------------------------ model
    @abstractmethod
    def setup(self, tokenizer: PreTrainedTokenizerBase, encoder: HybridTransformer, train: Sequence[Instance]) -> None:
        """Fix the label set and add the task's special tokens (resizing the encoder's embeddings)."""

    @abstractmethod
    def features(self, instance: Instance, tokenizer: PreTrainedTokenizerBase, max_length: int) -> dict[str, Any]:
        """Token ids and targets of one instance."""

    @abstractmethod
    def collate(self, features: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
        """Pad a batch of features into tensors (``input_ids``, ``attention_mask`` and the targets)."""

    @abstractmethod
    def build_model(self, encoder: HybridTransformer) -> TaskModel:
        """The encoder with this task's head."""

    # ------------------------------------------------------------------ results
    @abstractmethod
    def score(self, instances: Sequence[Instance], predictions: Sequence) -> dict[str, Any]:
        """Metrics with at least ``precision``, ``recall``, ``f1`` and ``per_label``."""

    @abstractmethod
    def prediction_record(self, instance: Instance, prediction) -> dict[str, Any]:
        """One line of predictions.jsonl."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The label set and settings needed to use the saved model (written to ``model/task.json``)."""
