"""The tiny float64 problem shared by ``tests/kgc/test_parallel_head.py`` and its 2-process worker.

An "encoder" (a linear layer and tanh over the known entity's and the relation's fixed features)
turns a query ``(h, r)`` into a state; 11 entities score it (so 2 ranks hold 6 and 5 rows); entity 9
is a copy of entity 2 (row and bias) so that evaluation has ties. Rank 0 holds the first
``LOCAL_SIZES[0]`` queries of the global batch, rank 1 the rest (unequal on purpose).
"""

from __future__ import annotations

import torch
from torch import nn

NUM_ENTITIES = 11
NUM_RELATIONS = 3
DIM = 4
FEATURES = 3
LOCAL_SIZES = (4, 3)
#: (loss, label smoothing, targets as class indices?) cases of the exactness test
CASES = (
    ("bce", 0.0, False),
    ("bce", 0.1, False),
    ("softmax", 0.1, False),
    ("official", 0.1, False),
    ("softmax", 0.0, True),
    ("official", 0.1, True),
)
LR = 0.05


class ToyEncoder(nn.Module):
    """Query states ``tanh(W [f_h ; f_r] + c)``."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.entity_features = nn.Parameter(torch.randn(NUM_ENTITIES, FEATURES, generator=generator, dtype=torch.float64), requires_grad=False)
        self.relation_features = nn.Parameter(torch.randn(NUM_RELATIONS, FEATURES, generator=generator, dtype=torch.float64), requires_grad=False)
        self.linear = nn.Linear(2 * FEATURES, DIM, dtype=torch.float64)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(DIM, 2 * FEATURES, generator=generator, dtype=torch.float64))
            self.linear.bias.copy_(torch.randn(DIM, generator=generator, dtype=torch.float64))

    def forward(self, hr: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(torch.cat([self.entity_features[hr[:, 0]], self.relation_features[hr[:, 1]]], -1)))


def entity_rows() -> tuple[torch.Tensor, torch.Tensor]:
    """The full ``(N, d)`` entity matrix and ``(N,)`` biases (entity 9 = entity 2)."""
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(NUM_ENTITIES, DIM, generator=generator, dtype=torch.float64)
    bias = torch.randn(NUM_ENTITIES, generator=generator, dtype=torch.float64) * 0.3
    weight[9], bias[9] = weight[2], bias[2]
    return weight, bias


def global_batch() -> dict[str, torch.Tensor]:
    """Queries ``(h, r)``, one true tail per query, LCWA multi-hot pairs (row, entity), known triples."""
    generator = torch.Generator().manual_seed(2)
    size = sum(LOCAL_SIZES)
    hr = torch.stack(
        [torch.randint(NUM_ENTITIES, (size,), generator=generator), torch.randint(NUM_RELATIONS, (size,), generator=generator)], 1
    )
    tails = torch.randint(NUM_ENTITIES, (size,), generator=generator)
    tails[0] = 9  # a tied answer
    tails[1] = 2
    # extra known answers: 1-3 per query, across both shards
    extra = []
    for row in range(size):
        count = 1 + row % 3
        extra.append(torch.stack([torch.full((count,), row), torch.randperm(NUM_ENTITIES, generator=generator)[:count]], 1))
    pairs = torch.unique(torch.cat([torch.stack([torch.arange(size), tails], 1), *extra]), dim=0)
    known = torch.cat([hr[pairs[:, 0]], pairs[:, 1:]], 1)  # (h, r, t) triples that the filter knows
    return dict(hr=hr, tails=tails, pairs=pairs, known=known)


def local_slice(rank: int) -> slice:
    start = sum(LOCAL_SIZES[:rank])
    return slice(start, start + LOCAL_SIZES[rank])
