"""Item 10 of issue 18: which validated state the official link-prediction recipe tests, and how it validates.

The official ``MKG/main.py`` early-stops on the validation MRR (patience 5), keeps the checkpoint with
the best validation Hits@10 and tests that one (``ModelCheckpoint`` + ``load_state_dict(best_model_path)``
after ``fit``, stopped or not); ``MKG/data/processor.py`` filters validation ranks with the train, dev and
test triples. ``recipe="official"`` with ``stopper="selectingearly"`` must do the same, and each of its
three switches (``checkpoint_metric``, ``checkpoint_restore``, ``validation_filter``) reverted must change
what is tested.

The runs are tiny and deterministic: a callback overwrites the candidate biases after every epoch with
values 1e4 apart, so that they, not the (tiny, random) encoder, order the candidates, and each
validation's ranks are chosen by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pykeen.datasets import EagerDataset
from pykeen.evaluation import RankBasedEvaluator
from pykeen.pipeline import pipeline
from pykeen.training.callbacks import TrainingCallback

from kgc_support import single_thread, tiny_model_kwargs
from pykeen_mkgformer.data import ShapesKG
from pykeen_mkgformer.kgc import MKGformer, SelectingEarlyStopper
from pykeen_mkgformer.kgc.model import BIAS

SPACING = 1e4


@pytest.fixture(scope="module")
def shapes():
    return ShapesKG(create_inverse_triples=True)


def _small_validation(shapes):
    """ShapesKG with two validation triples whose four answers are distinct entities."""
    chosen, answers = [], set()
    for triple in shapes.validation.mapped_triples.tolist():
        h, _, t = triple
        if h != t and not {h, t} & answers:
            chosen.append(triple)
            answers |= {h, t}
        if len(chosen) == 2:
            break
    validation = shapes.training.clone_and_exchange_triples(mapped_triples=torch.tensor(chosen))
    dataset = EagerDataset(training=shapes.training, testing=shapes.testing, validation=validation)
    return dataset, chosen


class BiasPlan(TrainingCallback):
    """After epoch k, the candidate biases follow ``orders[k - 1]`` (first = highest)."""

    def __init__(self, orders: list[list[int]]):
        super().__init__()
        self.orders = orders
        self.applied: list[torch.Tensor] = []

    def post_epoch(self, epoch: int, epoch_loss: float, **kwargs) -> None:  # noqa: D102
        order = self.orders[epoch - 1]
        bias = self.model.entity_representations[BIAS].bias
        values = torch.empty_like(bias)
        values[torch.tensor(order)] = SPACING * torch.arange(len(order), 0, -1, dtype=bias.dtype)
        with torch.no_grad():
            bias.copy_(values)
        self.applied.append(values.clone())


def _orders(shapes, chosen):
    (h1, _, t1), (h2, _, t2) = chosen
    answers = [t1, h1, t2, h2]
    decoys = [e for e in range(shapes.training.num_entities) if e not in answers]
    return {
        # answers last: every rank > 10
        "poor": decoys + answers,
        # five decoys first, then the answers: every rank in 6..9 (Hits@10 = 1, MRR about 0.16)
        "hits": decoys[:5] + answers + decoys[5:],
        # t1 and h1 first (ranks 1, 2), t2 and h2 after 20 decoys (rank > 10 even with 10 filtered):
        # MRR about 0.4, Hits@10 = 0.5
        "mrr": answers[:2] + decoys[:20] + answers[2:] + decoys[20:],
    }


def _run(shapes, tmp_path, plan: list[str], *, patience: int, recipe):
    dataset, chosen = _small_validation(shapes)
    orders = _orders(shapes, chosen)
    callback = BiasPlan([orders[name] for name in plan])
    with single_thread():
        result = pipeline(
            dataset=dataset,
            model="MKGformer",
            model_kwargs=dict(recipe=recipe, **tiny_model_kwargs(tmp_path / "cache", max_images=0)),
            loss="BCEWithLogits",
            training_loop="LCWA",
            training_kwargs=dict(num_epochs=len(plan), batch_size=512, callbacks=[callback]),
            optimizer_kwargs=dict(lr=1e-3),
            stopper="selectingearly",
            stopper_kwargs=dict(
                frequency=1, patience=patience, metric="inverse_harmonic_mean_rank", relative_delta=0.0,
                num_epochs=len(plan), filter_dataset=dataset,
                best_model_path=tmp_path / "best.pt",
            ),
            evaluation_kwargs=dict(batch_size=64),
            random_seed=0,
            use_tqdm=False,
        )
    return result, dataset, callback


def _validation_hits(model, dataset) -> float:
    evaluator = RankBasedEvaluator()
    results = evaluator.evaluate(
        model=model, mapped_triples=dataset.validation.mapped_triples, batch_size=64, use_tqdm=False,
        additional_filter_triples=[dataset.training.mapped_triples, dataset.testing.mapped_triples],
    )
    return results.get_metric("hits_at_10")


def _bias(model) -> torch.Tensor:
    return model.entity_representations[BIAS].bias.detach()


# ------------------------------------------------------------------------------ (b) the state tested
@pytest.mark.parametrize(
    ("recipe", "tested"),
    [
        ("official", "hits"),  # MKG/main.py: the best Eval/hits10 checkpoint, loaded after fit
        ({"base": "official", "checkpoint_metric": None}, "mrr"),  # reverted: the stopping metric's best
        ({"base": "official", "checkpoint_restore": "on_stop"}, "poor"),  # reverted: PyKEEN keeps the last state
    ],
    ids=["official", "checkpoint_metric-reverted", "checkpoint_restore-reverted"],
)
def test_official_tests_the_best_validation_hits_at_10_state(shapes, tmp_path, recipe, tested):
    """Validations: poor, best Hits@10 (1.0, MRR 0.16), best MRR (0.40, Hits@10 0.5), poor; no early stop."""
    plan = ["poor", "hits", "mrr", "poor"]
    result, dataset, callback = _run(shapes, tmp_path, plan, patience=5, recipe=recipe)
    stopper = result.stopper
    assert isinstance(stopper, SelectingEarlyStopper) and not stopper.stopped
    # the constructed situation: the best MRR and the best Hits@10 are different validations, the last neither
    assert int(np.argmax(stopper.results)) == 2 and stopper.results[3] < max(stopper.results)
    model_hits = _validation_hits(result.model, dataset)
    assert torch.equal(_bias(result.model), callback.applied[plan.index(tested)])
    if tested == "hits":
        assert stopper.checkpoint_results == [0.0, 1.0, 0.5, 0.0] and stopper.best_checkpoint_epoch == 2
        assert stopper.validation_filter == "all"  # filter_dataset's test triples were filtered out too
        assert model_hits == max(stopper.checkpoint_results) == 1.0
        assert not (tmp_path / "best.pt").exists()  # the kept state is cleaned up after the restore
    else:
        assert model_hits < 1.0


@pytest.mark.parametrize(
    ("recipe", "tested"),
    [("official", "hits"), ({"base": "official", "checkpoint_metric": None}, "mrr")],
    ids=["official", "checkpoint_metric-reverted"],
)
def test_an_early_stop_restores_the_best_hits_at_10_even_at_the_stopping_validation(shapes, tmp_path, recipe, tested):
    """MRR best at epoch 2, no better at 3 and 4 (patience 2): stop at 4, whose Hits@10 (1.0) is the best."""
    plan = ["poor", "mrr", "poor", "hits", "poor"]
    result, dataset, callback = _run(shapes, tmp_path, plan, patience=2, recipe=recipe)
    stopper = result.stopper
    assert stopper.stopped and len(stopper.results) == 4 and stopper.best_epoch == 2
    assert torch.equal(_bias(result.model), callback.applied[plan.index(tested)])
    if tested == "hits":
        assert _validation_hits(result.model, dataset) == max(stopper.checkpoint_results) == 1.0


# ------------------------------------------------------------------------------ (c) validation filter
def _filter_case(shapes):
    """Validation (h, r, a), test (h, r, b), neither a known tail of (h, r); b scores highest, a second."""
    training = shapes.training
    known = {tuple(t) for t in training.mapped_triples.tolist()}
    h, r, _ = training.mapped_triples[0].tolist()
    free = [e for e in range(training.num_entities) if (h, r, e) not in known and e != h]
    a, b = free[:2]
    validation = training.clone_and_exchange_triples(mapped_triples=torch.tensor([[h, r, a]]))
    testing = training.clone_and_exchange_triples(mapped_triples=torch.tensor([[h, r, b]]))
    order = [b, a] + [e for e in range(training.num_entities) if e not in (a, b)]
    return EagerDataset(training=training, testing=testing, validation=validation), order


@pytest.fixture(scope="module")
def filter_model(shapes, tmp_path_factory):
    model = MKGformer(triples_factory=shapes.training, recipe="official", random_seed=0,
                      **tiny_model_kwargs(tmp_path_factory.mktemp("cache"), max_images=0))
    return model


def _validate_once(model, dataset, order, **kwargs) -> float:
    values = torch.empty(model.num_entities)
    values[torch.tensor(order)] = SPACING * torch.arange(len(order), 0, -1, dtype=values.dtype)
    with torch.no_grad():
        model.entity_representations[BIAS].bias.copy_(values)
    stopper = SelectingEarlyStopper(
        model=model, evaluator=RankBasedEvaluator(), training_triples_factory=dataset.training,
        evaluation_triples_factory=dataset.validation, frequency=1, evaluation_batch_size=8,
        metric="tail.realistic.inverse_harmonic_mean_rank", num_epochs=10, clean_up_checkpoint=True, **kwargs,
    )
    with single_thread():
        stopper.should_stop(1)
    if stopper.best_model_path.is_file():
        stopper.best_model_path.unlink()
    return stopper.results[0]


def test_official_validation_ranks_are_filtered_with_the_test_triples(shapes, filter_model):
    """MKG/data/processor.py filters dev ranks with train + dev + test: the test answer b above a drops out."""
    dataset, order = _filter_case(shapes)
    assert filter_model.recipe.validation_filter == "all"
    assert _validate_once(filter_model, dataset, order, filter_dataset=dataset) == 1.0
    # reverted (PyKEEN's stopper: training and validation triples only): b outranks the answer
    assert _validate_once(filter_model, dataset, order, validation_filter="training") == 0.5
    # the same through the plain tensors
    assert _validate_once(filter_model, dataset, order, additional_filter_triples=dataset.testing.mapped_triples) == 1.0


def test_official_validation_filter_needs_the_test_triples(shapes, filter_model):
    dataset, order = _filter_case(shapes)
    with pytest.raises(ValueError, match="filter_dataset"):
        _validate_once(filter_model, dataset, order)
    # a dataset whose training triples (so, possibly, ids) are not the stopper's is refused, naming it
    other = EagerDataset(
        training=dataset.training.clone_and_exchange_triples(mapped_triples=dataset.training.mapped_triples[1:]),
        testing=dataset.testing, validation=dataset.validation,
    )
    with pytest.raises(ValueError, match="does not hold the stopper's training triples"):
        _validate_once(filter_model, dataset, order, filter_dataset=other)
    with pytest.raises(ValueError, match="num_epochs"):
        SelectingEarlyStopper(model=filter_model, evaluator=RankBasedEvaluator(), training_triples_factory=dataset.training,
                              evaluation_triples_factory=dataset.validation, filter_dataset=dataset)
    # by name, as the experiment files give it: the same ids, so accepted
    stopper = SelectingEarlyStopper(
        model=filter_model, evaluator=RankBasedEvaluator(), training_triples_factory=shapes.training,
        evaluation_triples_factory=shapes.validation, num_epochs=3,
        filter_dataset="ShapesKG", filter_dataset_kwargs=dict(create_inverse_triples=True),
    )
    assert torch.equal(stopper._filter_triples[1], shapes.testing.mapped_triples)


def test_stopper_summary_round_trip(shapes, filter_model):
    """PyKEEN's training-loop checkpoints save ``get_summary_dict`` and write it back on resume."""
    dataset, order = _filter_case(shapes)
    made = dict(model=filter_model, evaluator=RankBasedEvaluator(), training_triples_factory=dataset.training,
                evaluation_triples_factory=dataset.validation, frequency=1, evaluation_batch_size=8, num_epochs=4,
                filter_dataset=dataset, clean_up_checkpoint=True)
    stopper = SelectingEarlyStopper(**made)
    with single_thread():
        stopper.should_stop(1)
    summary = dict(stopper.get_summary_dict())
    stopper.best_model_path.unlink()
    resumed = SelectingEarlyStopper(**made)
    resumed._write_from_summary_dict(**summary)
    assert resumed.get_summary_dict() == summary and resumed.best_checkpoint_epoch == 1
    with pytest.raises(ValueError, match="checkpoint_metric"):
        resumed._write_from_summary_dict(**{**summary, "checkpoint_metric": "mrr"})
