r"""An early stopper that stops on one validation metric and keeps the best state of another.

PyKEEN's :class:`~pykeen.stoppers.EarlyStopper` stops on ``metric`` and, *when it stops*, puts back
the state with the best ``metric``; a run that uses all its epochs keeps its last state, and
validation ranks are filtered with the training (and validation) triples. The official MKGformer
code (``MKG/main.py``) stops on the validation MRR (``EarlyStopping(monitor="Eval/mrr",
patience=5)``), keeps the checkpoint with the best validation Hits@10 (``ModelCheckpoint(monitor=
"Eval/hits10")``), tests that checkpoint whether or not training stopped early, and filters
validation ranks with the training, validation *and test* triples (``MKG/data/processor.py``).

:class:`SelectingEarlyStopper` (``stopper="selectingearly"``) is PyKEEN's stopper with three
switches, each taken from the stopper's keyword arguments, else from the model's
:class:`~pykeen_mkgformer.kgc.recipe.KGCRecipe` (``recipe="official"`` sets the official value),
else PyKEEN's behaviour:

- ``checkpoint_metric``: the metric :math:`c` whose best validation state is kept; at validation
  :math:`k` the state is saved when :math:`c_k > \max_{j<k} c_j` (the first of equals is kept, as
  Lightning's ``ModelCheckpoint``), before the stop decision on ``metric``;
- ``checkpoint_restore``: ``"on_stop"`` (PyKEEN) or ``"always"``: the kept state is also put back when
  training ends after ``num_epochs`` epochs (the training loop's ``num_epochs`` must then be given:
  PyKEEN tells a stopper nothing about the end of training);
- ``validation_filter``: ``"training"`` (PyKEEN) or ``"all"``: the test triples of ``filter_dataset``
  (a PyKEEN dataset hint, e.g. the pipeline's own dataset or its name) or ``additional_filter_triples``
  are filtered out of validation ranks too (for a model without a recipe, giving them means ``"all"``).

Stopping itself (``metric``, ``patience``, ``relative_delta``, ``frequency``) is PyKEEN's
:class:`~pykeen.stoppers.early_stopping.EarlyStoppingLogic`; the checkpoint metric runs through a
second instance of it. The kept state is written with :func:`torch.save` (atomically) to
``best_model_path`` and read back with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from pykeen.stoppers import EarlyStopper
from pykeen.stoppers.early_stopping import EarlyStoppingLogic
from pykeen.utils import fix_dataclass_init_docs

from ..data.atomic import atomic_write
from ..resolvers import register_if_made

__all__ = ["SelectingEarlyStopper"]

logger = logging.getLogger(__name__)

_RESTORE = ("on_stop", "always")
_FILTER = ("training", "all")


@fix_dataclass_init_docs
@dataclass
class SelectingEarlyStopper(EarlyStopper):
    """PyKEEN's early stopper; the state tested is the best of ``checkpoint_metric`` (see the module docstring)."""

    #: the metric whose best validation state is kept and restored (None: the model's recipe, else ``metric``)
    checkpoint_metric: str | None = None
    #: ``"on_stop"`` or ``"always"`` (None: the model's recipe, else ``"on_stop"``)
    checkpoint_restore: str | None = None
    #: ``"training"`` or ``"all"`` (None: the model's recipe, else ``"training"``)
    validation_filter: str | None = None
    #: the training loop's ``num_epochs`` (needed by ``checkpoint_restore="always"``; it must be the loop's:
    #: the kept state is put back after that epoch)
    num_epochs: int | None = None
    #: the dataset whose test triples are filtered out of validation ranks (``validation_filter="all"``):
    #: a PyKEEN dataset, its name or class (a name is loaded once more: seconds for WN18IMG); its
    #: training triples must be the stopper's
    filter_dataset: Any = None
    #: keyword arguments of ``filter_dataset`` when it is a name or class
    filter_dataset_kwargs: Mapping[str, Any] | None = None
    #: further known triples (id-based, ``(n, 3)``) filtered out of validation ranks
    additional_filter_triples: Any = None
    #: the checkpoint metric at each validation
    checkpoint_results: list[float] = dataclasses.field(default_factory=list, repr=False)

    _checkpoint: EarlyStoppingLogic = dataclasses.field(init=False, repr=False)
    _filter_triples: list[torch.Tensor] = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        """Resolve the switches (arguments, then the model's recipe, then PyKEEN's) and the filter triples."""
        super().__post_init__()
        recipe = _recipe_of(self.model)
        if self.checkpoint_metric is None:
            self.checkpoint_metric = getattr(recipe, "checkpoint_metric", None) or self.metric
        if self.checkpoint_restore is None:
            self.checkpoint_restore = getattr(recipe, "checkpoint_restore", "on_stop")
        extra = self._extra_filter_triples()
        if self.validation_filter is None:
            self.validation_filter = getattr(recipe, "validation_filter", "all" if extra else "training")
        if self.checkpoint_restore not in _RESTORE:
            raise ValueError(f"checkpoint_restore must be one of {_RESTORE}, got {self.checkpoint_restore!r}.")
        if self.validation_filter not in _FILTER:
            raise ValueError(f"validation_filter must be one of {_FILTER}, got {self.validation_filter!r}.")
        if self.checkpoint_restore == "always" and (self.num_epochs is None or self.num_epochs < 1):
            raise ValueError(
                "checkpoint_restore='always' puts the best state back when training ends: give the stopper the "
                f"training loop's num_epochs (stopper_kwargs num_epochs), got {self.num_epochs!r}."
            )
        self._checkpoint = EarlyStoppingLogic(
            patience=self.patience, relative_delta=0.0, larger_is_better=self.larger_is_better
        )
        if self.validation_filter == "all" and not extra:
            raise ValueError(
                "validation_filter='all' filters validation ranks with the test triples too: give the stopper "
                "filter_dataset (the pipeline's dataset or its name, with filter_dataset_kwargs) or "
                "additional_filter_triples."
            )
        if self.validation_filter == "training" and extra:
            raise ValueError(
                "the stopper got filter triples (filter_dataset / additional_filter_triples) but "
                "validation_filter='training': set validation_filter='all' (or the recipe's) to use them."
            )
        self._filter_triples = [self.training_triples_factory.mapped_triples, *extra]

    # ------------------------------------------------------------------ filter
    def _extra_filter_triples(self) -> list[torch.Tensor]:
        """The known triples beyond training (and validation, which the evaluator filters anyway)."""
        extra = self.additional_filter_triples
        triples = [] if extra is None else [extra] if torch.is_tensor(extra) else list(extra)
        if self.filter_dataset is not None:
            triples.append(self._testing_triples())
        return [torch.as_tensor(t, dtype=torch.long).reshape(-1, 3) for t in triples]

    def _testing_triples(self) -> torch.Tensor:
        """``filter_dataset``'s test triples, after checking that its ids are the stopper's."""
        from pykeen.datasets import get_dataset

        dataset = get_dataset(dataset=self.filter_dataset, dataset_kwargs=self.filter_dataset_kwargs)
        ours, theirs = self.training_triples_factory, dataset.training
        same = (ours.num_entities, ours.num_relations) == (theirs.num_entities, theirs.num_relations) and (
            ours.mapped_triples.shape == theirs.mapped_triples.shape
            and torch.equal(ours.mapped_triples.cpu(), theirs.mapped_triples.cpu())
        )
        if not same:
            raise ValueError(
                f"filter_dataset {self.filter_dataset!r} (kwargs {self.filter_dataset_kwargs}) does not hold the "
                f"stopper's training triples with the same ids ({theirs.num_entities} entities, "
                f"{theirs.num_triples} training triples; the stopper's: {ours.num_entities}, {ours.num_triples}): "
                "give the pipeline's dataset and dataset_kwargs."
            )
        return dataset.testing.mapped_triples

    # ------------------------------------------------------------------ PyKEEN's hooks
    def should_evaluate(self, epoch: int) -> bool:
        """PyKEEN's frequency; also the last epoch when the kept state is restored at the end."""
        return super().should_evaluate(epoch) or self._is_last(epoch)

    def should_stop(self, epoch: int) -> bool:
        """Validate (at the frequency), keep the best checkpoint state, decide on ``metric``; restore when done."""
        if not super().should_evaluate(epoch):  # the last epoch without a validation
            self._restore(epoch, reason="training ended")
            return False
        metric_results = self.evaluator.evaluate(
            model=self.model,
            additional_filter_triples=self._filter_triples,
            mapped_triples=self.evaluation_triples_factory.mapped_triples,
            use_tqdm=self.use_tqdm,
            tqdm_kwargs=self.tqdm_kwargs,
            batch_size=self.evaluation_batch_size,
            slice_size=self.evaluation_slice_size,
            do_time_consuming_checks=self.evaluation_batch_size is None,
        )
        self.evaluation_batch_size = self.evaluator.batch_size
        self.evaluation_slice_size = self.evaluator.slice_size
        if self.result_tracker is not None:
            self.result_tracker.log_metrics(metrics=metric_results.to_flat_dict(), step=epoch, prefix="validation")
        result = metric_results.get_metric(self.metric)
        checkpoint = metric_results.get_metric(self.checkpoint_metric)
        self.results.append(result)
        self.checkpoint_results.append(checkpoint)
        for result_callback in self.result_callbacks:
            result_callback(self, result, epoch)
        # the checkpoint first: the validation that ends training may hold the best checkpoint metric
        self._checkpoint.report_result(metric=checkpoint, epoch=epoch)
        if self._checkpoint.is_best:
            self._save()
            logger.info("epoch %d: best validation %s %s so far; state kept", epoch, self.checkpoint_metric, checkpoint)
        self.stopped = self._stopper.report_result(metric=result, epoch=epoch)
        if self.stopped:
            logger.info(
                "Stopping early at epoch %d: the best %s %s occurred at epoch %s.",
                epoch, self.metric, self.best_metric, self.best_epoch,
            )
            for stopped_callback in self.stopped_callbacks:
                stopped_callback(self, result, epoch)
            self._restore(epoch, reason="stopped early", always=True)
            return True
        for continue_callback in self.continue_callbacks:
            continue_callback(self, result, epoch)
        self._restore(epoch, reason="training ended")
        return False

    # ------------------------------------------------------------------ the kept state
    @property
    def best_checkpoint_epoch(self) -> int | None:
        """The epoch of the kept state (the best ``checkpoint_metric``)."""
        return self._checkpoint.best_epoch

    @property
    def best_checkpoint_metric(self) -> float:
        """The best ``checkpoint_metric`` so far."""
        return self._checkpoint.best_metric

    def _is_last(self, epoch: int) -> bool:
        return self.checkpoint_restore == "always" and epoch == self.num_epochs

    def _save(self) -> None:
        assert self.best_model_path is not None
        with atomic_write(self.best_model_path, "wb") as file:
            torch.save(self.model.state_dict(), file)

    def _restore(self, epoch: int, *, reason: str, always: bool = False) -> None:
        """Put the kept state back when training stopped early, or (``"always"``) at its last epoch."""
        if not (always or self._is_last(epoch)):
            return
        if self.best_checkpoint_epoch is None or self.best_model_path is None or not self.best_model_path.is_file():
            logger.info("%s at epoch %d without a validated state: the last state stays", reason, epoch)
            return
        device = next(iter(self.model.parameters())).device
        state = torch.load(self.best_model_path, map_location=device, weights_only=True)
        self.model.load_state_dict(state)
        logger.info(
            "%s at epoch %d: restored the state of epoch %d (best validation %s %s)",
            reason, epoch, self.best_checkpoint_epoch, self.checkpoint_metric, self.best_checkpoint_metric,
        )
        if self.clean_up_checkpoint:
            self.best_model_path.unlink()

    # ------------------------------------------------------------------ summaries (PyKEEN's checkpoints)
    def get_summary_dict(self) -> Mapping[str, Any]:
        """PyKEEN's summary plus the checkpoint metric's."""
        return dict(
            super().get_summary_dict(),
            checkpoint_metric=self.checkpoint_metric,
            checkpoint_restore=self.checkpoint_restore,
            validation_filter=self.validation_filter,
            checkpoint_results=self.checkpoint_results,
            best_checkpoint_epoch=self.best_checkpoint_epoch,
            best_checkpoint_metric=self.best_checkpoint_metric,
        )

    def _write_from_summary_dict(
        self,
        *,
        checkpoint_metric: str | None = None,
        checkpoint_restore: str | None = None,
        validation_filter: str | None = None,
        checkpoint_results: Sequence[float] = (),
        best_checkpoint_epoch: int | None = None,
        best_checkpoint_metric: float | None = None,
        **pykeen_summary: Any,
    ) -> None:
        """Write the summary back (a resumed PyKEEN training loop; a plain ``EarlyStopper``'s summary too).

        The switches stay as this stopper was made (a summary that names others is refused).
        """
        for name, saved in (("checkpoint_metric", checkpoint_metric), ("checkpoint_restore", checkpoint_restore),
                            ("validation_filter", validation_filter)):
            if saved is not None and saved != getattr(self, name):
                raise ValueError(f"the checkpoint's stopper had {name}={saved!r}, this one {getattr(self, name)!r}.")
        super()._write_from_summary_dict(**pykeen_summary)
        self.checkpoint_results = list(checkpoint_results)
        self._checkpoint = EarlyStoppingLogic(patience=self.patience, relative_delta=0.0, larger_is_better=self.larger_is_better)
        if best_checkpoint_metric is not None:
            self._checkpoint.best_epoch, self._checkpoint.best_metric = best_checkpoint_epoch, best_checkpoint_metric


def _recipe_of(model: Any) -> Any:
    """The model's :class:`~pykeen_mkgformer.kgc.recipe.KGCRecipe`, None for other models."""
    from .recipe import KGCRecipe

    recipe = getattr(model, "recipe", None)
    return recipe if isinstance(recipe, KGCRecipe) else None


# imported first, this module was half-imported when the plugin's registration ran
register_if_made("pykeen.stoppers", "stopper_resolver", SelectingEarlyStopper)
