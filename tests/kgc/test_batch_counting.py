"""The warm-up schedule in a real PyKEEN training loop: the batch-counting loops give it the batches per epoch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pykeen.datasets import Nations
from pykeen.pipeline import pipeline
from pykeen.training import TrainingCallback

from pykeen_mkgformer.kgc.training import linear_warmup_factor

LR, EPOCHS, BATCH, WARMUP = 0.01, 2, 128, 0.25


class RecordRates(TrainingCallback):
    """The learning rate each optimizer step used."""

    def __init__(self):
        super().__init__()
        self.rates: list[float] = []

    def post_batch(self, epoch, batch, **kwargs) -> None:
        self.rates.append(self.optimizer.param_groups[0]["lr"])


def train(loop: str, recorder: TrainingCallback):
    return pipeline(
        dataset=Nations(),
        model="DistMult",
        model_kwargs=dict(embedding_dim=4),
        training_loop=loop,
        optimizer="Adam",
        optimizer_kwargs=dict(lr=LR),
        training_kwargs=dict(
            num_epochs=EPOCHS,
            batch_size=BATCH,
            use_tqdm=False,
            callbacks=["linearwarmup", recorder],
            callbacks_kwargs=[dict(num_epochs=EPOCHS, warmup_ratio=WARMUP), None],
        ),
        evaluation_kwargs=dict(batch_size=256, use_tqdm=False),
        random_seed=0,
    )


@pytest.mark.parametrize("loop", ["BatchCountingLCWA", "BatchCountingSLCWA"])
def test_warmup_follows_the_schedule_over_the_real_batches(loop):
    recorder = RecordRates()
    result = train(loop, recorder)
    triples = Nations().training.mapped_triples.numpy()
    # LCWA: one instance per (head, relation) pair; sLCWA: one per triple
    instances = len(np.unique(triples[:, :2], axis=0)) if loop == "BatchCountingLCWA" else len(triples)
    per_epoch = math.ceil(instances / BATCH)
    assert result.training_loop.batches_per_epoch == per_epoch
    total = per_epoch * EPOCHS
    assert len(recorder.rates) == total
    expected = [LR * linear_warmup_factor(step, total, WARMUP * total) for step in range(total)]
    assert recorder.rates == pytest.approx(expected, abs=1e-12)
    assert recorder.rates[0] == 0.0 and max(recorder.rates) > 0.5 * LR


def test_warmup_refuses_a_loop_that_does_not_count_its_batches():
    with pytest.raises(TypeError, match="BatchCountingLCWA.*not LCWATrainingLoop"):
        train("LCWA", RecordRates())
