"""CPU time of one MKGformer LCWA training step and one ``score_t`` call (tiny preset, WN18IMGMini, batch 64).

Robust to a shared machine: the median of 40 per-step *process CPU times* (what the step itself
costs, not the time spent waiting for a core) and the minimum wall time. Compare two versions by
running it once per source tree, alternating, e.g. for the version before ``MKGformer`` became an
``ERModel``::

    git worktree add /tmp/before 33faa46
    (cd /tmp/before && PYTHONPATH=/tmp/before python /path/to/benchmarks/kgc_step_cpu_time.py before)
    python benchmarks/kgc_step_cpu_time.py after
"""

import statistics
import sys
import time

import torch
from pykeen.datasets import get_dataset

from pykeen_mkgformer.kgc import MKGformer
from pykeen_mkgformer.kgc.presets import tiny_text_encoder, tiny_vision_encoder

torch.set_num_threads(1)
label = sys.argv[1] if len(sys.argv) > 1 else "this"
training = get_dataset(dataset="WN18IMGMini", dataset_kwargs=dict(create_inverse_triples=True)).training
model = MKGformer(
    triples_factory=training, random_seed=0, entity_modeling_epochs=0, max_seq_length=64, progress=False,
    text_encoder=tiny_text_encoder(), vision_encoder=tiny_vision_encoder(), fusion_layers=1, max_images=1,
)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
generator = torch.Generator().manual_seed(0)


def batch() -> torch.Tensor:
    return training.mapped_triples[torch.randint(training.num_triples, (64,), generator=generator)][:, :2]


def step(hr: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    scores = model.score_t(hr)
    labels = torch.zeros_like(scores)
    labels[torch.arange(64), hr[:, 0]] = 1.0
    torch.nn.functional.binary_cross_entropy_with_logits(scores, labels).backward()
    optimizer.step()


def timed(function, count: int = 40) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for _ in range(count):
        hr = batch()
        w, c = time.perf_counter(), time.process_time()
        function(hr)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return wall, cpu


model.train()
step(batch())
step(batch())
train_wall, train_cpu = timed(step)
model.eval()
with torch.inference_mode():
    model.score_t(batch())
    eval_wall, eval_cpu = timed(model.score_t)
print(
    f"{label:6s} {type(model).__mro__[1].__name__:8s} train: min wall {1000 * min(train_wall):.1f} ms, median cpu "
    f"{1000 * statistics.median(train_cpu):.1f} ms ({64 / statistics.median(train_cpu):.0f} samples/s) | eval: min wall "
    f"{1000 * min(eval_wall):.1f} ms, median cpu {1000 * statistics.median(eval_cpu):.1f} ms "
    f"({64 / statistics.median(eval_cpu):.0f} queries/s)",
    flush=True,
)
