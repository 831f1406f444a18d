"""Fine-tuning with a checkpoint after every epoch, so an interrupted run resumes exactly.

The checkpoint holds the model, the optimizer, the learning-rate schedule, the global torch RNG
state (dropout) and the scores so far; batches are shuffled with a generator seeded by
``seed + epoch``. A resumed run therefore makes the same updates as one that was never stopped.
The model of the epoch with the best development score is kept and restored at the end.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from .task import TaskModel

__all__ = ["TrainingSettings", "FineTuner", "predict", "length_bucketed_batches", "parameter_groups", "linear_schedule"]

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best_model.pt"


@dataclass
class TrainingSettings:
    """How to fine-tune: AdamW with linear warm-up and decay, gradient clipping."""

    epochs: int = 5
    batch_size: int = 16
    lr: float = 5e-5
    #: learning rate of the task head (classifier, CRF); ``lr`` when None
    head_lr: float | None = None
    #: learning rate of the vision tower (``encoder.vision_model.*`` and the crop groups' positions); ``lr`` when None
    vision_lr: float | None = None
    weight_decay: float = 0.01
    #: decay every parameter (official) rather than matrices only
    decay_all: bool = False
    #: fraction of all steps spent warming the learning rate up from 0 (not rounded, as the official trainers)
    warmup_ratio: float = 0.1
    #: gradient-norm clipping; None (or <= 0): none
    max_grad_norm: float | None = 1.0
    seed: int = 42


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator | None = None, *, bucket_batches: int = 50
) -> list[list[int]]:
    """Batches of similar lengths, so little is padded.

    With a generator (training): shuffle, sort each window of ``bucket_batches`` batches by length,
    cut it into batches, and shuffle the batches. Without one (prediction): all instances sorted by
    length, in order.
    """
    if generator is None:
        order = sorted(range(len(lengths)), key=lambda index: lengths[index])
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    order = torch.randperm(len(lengths), generator=generator).tolist()
    window = batch_size * bucket_batches
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda index: lengths[index])
        batches.extend(chunk[offset : offset + batch_size] for offset in range(0, len(chunk), batch_size))
    permutation = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[index] for index in permutation]


def predict(model: TaskModel, loader: DataLoader, device: torch.device, *, progress: bool = True, desc: str = "predict") -> list:
    """The model's predictions for every batch of ``loader``, in order."""
    model.eval()
    predictions: list = []
    with torch.no_grad():
        for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress, leave=False):
            predictions.extend(model.predict(_to_device(batch, device)))
    return predictions


class FineTuner:
    """Trains a :class:`TaskModel`, selects the best epoch on development data, resumes from its folder."""

    def __init__(
        self,
        model: TaskModel,
        settings: TrainingSettings,
        folder: Path,
        *,
        signature: dict[str, Any],
        device: torch.device,
        progress: bool = True,
    ):
        """
        :param folder: where the per-epoch checkpoint and the best model are written
        :param signature: the run's settings; a checkpoint written with other settings is refused
        """
        self.model = model
        self.settings = settings
        self.folder = folder
        self.signature = {**signature, **asdict(settings)}
        self.device = device
        self.progress = progress

    def fit(
        self,
        train_loader: Callable[[torch.Generator], DataLoader],
        evaluate: Callable[[TaskModel], dict[str, Any]],
    ) -> dict[str, Any]:
        """Train for the configured epochs (continuing a checkpoint if there is one).

        :param train_loader: builds the shuffled training loader from a seeded generator
        :param evaluate: development metrics of the model (``f1`` selects the best epoch)
        :return: ``history`` (per-epoch loss and development metrics), ``best_epoch``, ``resumed_from``
        """
        settings = self.settings
        model = self.model.to(self.device)
        steps_per_epoch = len(train_loader(torch.Generator().manual_seed(settings.seed)))
        optimizer = torch.optim.AdamW(self._parameter_groups(), lr=settings.lr)
        total_steps = steps_per_epoch * settings.epochs
        scheduler = linear_schedule(optimizer, settings, total_steps)
        state = {"epoch": 0, "history": [], "best_epoch": None, "best_f1": float("-inf"), "best_dev": None}
        resumed_from = self._resume(optimizer, scheduler, state)

        for epoch in range(state["epoch"] + 1, settings.epochs + 1):
            model.train()
            generator = torch.Generator().manual_seed(settings.seed + epoch)
            total_loss, n_batches = 0.0, 0
            batches = tqdm(
                train_loader(generator), desc=f"epoch {epoch}/{settings.epochs}", unit="batch", disable=not self.progress
            )
            for batch in batches:
                loss = model.loss(_to_device(batch, self.device))
                optimizer.zero_grad()
                loss.backward()
                if settings.max_grad_norm is not None and settings.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                total_loss += float(loss.detach())
                n_batches += 1
                batches.set_postfix(loss=f"{total_loss / n_batches:.4f}")
            dev = evaluate(model)
            state["history"].append({"epoch": epoch, "train_loss": total_loss / max(n_batches, 1), "dev": _headline(dev)})
            logger.info("epoch %d: train loss %.4f, dev f1 %.4f", epoch, total_loss / max(n_batches, 1), dev["f1"])
            if dev["f1"] > state["best_f1"]:
                state["best_f1"], state["best_epoch"], state["best_dev"] = dev["f1"], epoch, dev
                _save_atomically(model.state_dict(), self.folder / BEST_NAME)
            state["epoch"] = epoch
            self._save(optimizer, scheduler, state)

        if (self.folder / BEST_NAME).is_file():
            model.load_state_dict(_load(self.folder / BEST_NAME, self.device, weights_only=True))
        return {
            "history": state["history"],
            "best_epoch": state["best_epoch"],
            "dev": state["best_dev"],
            "resumed_from": resumed_from,
        }

    def _parameter_groups(self) -> list[dict]:
        """Text tower at ``lr``, vision tower at ``vision_lr``, head at ``head_lr``; no weight decay on
        biases and layer norms (as BERT fine-tuning does) unless ``decay_all``. Frozen parameters
        (``requires_grad`` False) are left out, as the official RE optimizer leaves out its classifier."""
        return parameter_groups(self.model, self.settings)

    def _save(self, optimizer, scheduler, state: dict) -> None:
        checkpoint = {
            "signature": self.signature,
            "state": state,
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        _save_atomically(checkpoint, self.folder / CHECKPOINT_NAME)

    def _resume(self, optimizer, scheduler, state: dict) -> int | None:
        """Load the folder's checkpoint, if any, into model/optimizer/schedule/RNG; return its epoch."""
        path = self.folder / CHECKPOINT_NAME
        if not path.is_file():
            return None
        # tensors and plain values only: a checkpoint planted in the output folder cannot run code
        checkpoint = _load(path, self.device, weights_only=True)
        if checkpoint["signature"] != self.signature:
            changed = sorted(
                key
                for key in set(checkpoint["signature"]) | set(self.signature)
                if checkpoint["signature"].get(key) != self.signature.get(key)
            )
            raise ValueError(
                f"{path} belongs to a run with other settings ({', '.join(changed)} differ); "
                "give another --output folder or delete that one."
            )
        self.model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        torch.set_rng_state(checkpoint["torch_rng"])
        state.update(checkpoint["state"])
        logger.info("resuming from %s after epoch %d", path, state["epoch"])
        return state["epoch"]


def linear_schedule(optimizer: torch.optim.Optimizer, settings: TrainingSettings, total_steps: int):
    """Linear warm-up over ``warmup_ratio * total_steps`` steps, *not rounded* (as the official trainers
    pass it), then linear decay to 0: with 0.3 warm-up steps the first step still has rate 0."""
    return get_linear_schedule_with_warmup(optimizer, settings.warmup_ratio * total_steps, total_steps)


def _part(name: str) -> str:
    """``"text"``, ``"vision"`` or ``"head"``: which learning rate a parameter of a :class:`TaskModel` gets."""
    if not name.startswith("encoder."):
        return "head"
    if name.startswith(("encoder.vision_model.", "encoder.group_position_embeddings.")):
        return "vision"
    return "text"


def parameter_groups(model: torch.nn.Module, settings: TrainingSettings) -> list[dict]:
    """AdamW parameter groups of ``model`` under ``settings`` (see :meth:`FineTuner._parameter_groups`)."""
    rates = {
        "text": settings.lr,
        "vision": settings.vision_lr if settings.vision_lr is not None else settings.lr,
        "head": settings.head_lr if settings.head_lr is not None else settings.lr,
    }
    groups: dict[tuple[str, bool], list] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            key = (_part(name), settings.decay_all or parameter.dim() >= 2)
            groups.setdefault(key, []).append(parameter)
    return [
        {"params": parameters, "lr": rates[part], "weight_decay": settings.weight_decay if decayed else 0.0}
        for (part, decayed), parameters in sorted(groups.items())
    ]


def _save_atomically(payload: Any, path: Path) -> None:
    """``torch.save`` to a temporary name, then rename: a killed process never leaves a half-written file."""
    temporary = path.with_name(path.name + ".tmp")
    torch.save(payload, temporary)
    temporary.replace(path)


def _load(path: Path, device: torch.device, *, weights_only: bool) -> Any:
    """``torch.load``, with an error naming the file (and what to do) when it is damaged."""
    try:
        return torch.load(path, map_location=device, weights_only=weights_only)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as error:
        raise ValueError(
            f"{path} is damaged or holds more than tensors and plain values ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}); it is not read. Delete it to start the run afresh, "
            "or give another --output folder."
        ) from error


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The scalar figures of a metrics dict (per-label tables left out)."""
    return {key: value for key, value in metrics.items() if isinstance(value, (int, float))}


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    moved: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            moved[key] = value.to(device)
        elif key == "images" and value is not None:
            moved[key] = ([t.to(device) for t in value[0]], [t.to(device) for t in value[1]])
        else:
            moved[key] = value
    return moved
