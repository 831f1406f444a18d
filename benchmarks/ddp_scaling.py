"""Data-parallel scaling of MKGformer through PyKEEN's Lightning integration: samples/s and the all-reduce share of a step.

One run = ``Trainer.fit`` of ``pykeen.contrib.lightning.LCWALitModule`` (PyKEEN's LCWA step: score_t
against all entities, BCE, backward, Adam) on ``--devices`` processes with ``--strategy``; the
per-device batch is ``--batch`` (global batch = devices x batch). Per step, rank 0 times the
training step (the ranks are in lock step: every backward ends in the gradient all-reduce);
samples/s = global batch / median step time, after ``--warmup`` steps.

All-reduce share: after the fit, every rank times ``torch.distributed.all_reduce`` of a buffer as
large as the trainable gradients (what DDP moves each step, in its 25 MB buckets) and divides by the
step time. DDP overlaps these all-reduces with the backward pass, so this is the share the
communication would take without overlap, an upper bound of what it adds to a step. (FSDP moves the
same bytes as a reduce-scatter plus all-gathers.)

    python benchmarks/ddp_scaling.py --devices 1 2                     # this CPU: 1 vs 2 processes (gloo)
    python benchmarks/ddp_scaling.py --accelerator gpu --devices 1 2 4 8 --preset base \\
        --dataset synthetic:40943 --batch 96 --precision bf16-mixed    # N GPUs (NCCL)
    python benchmarks/ddp_scaling.py --accelerator gpu --devices 8 --strategy fsdp --preset base ...
    python benchmarks/ddp_scaling.py --accelerator gpu --devices 1 2 4 8 --head-parallel vocab --preset base \
        --dataset synthetic:40943 --batch 96 --precision bf16-mixed    # entity rows sharded, encoder DDP

With ``--head-parallel vocab`` the model is ``MKGformer(head_parallel="vocab")`` under the plugin's
``VocabParallelLCWALitModule`` (each process holds N / W entity rows; the gradients column counts
what DDP still all-reduces, without the entity rows).

Each ``--devices`` value runs in its own ``python`` process (Lightning starts the other ranks by
running this script again with ``--worker``). Stage 1 is off (``entity_modeling_epochs=0``): this
measures the stage-2 step. (Under FSDP the parameters are flattened and sharded inside the wrapped
forward, so stage 1 must run before wrapping, e.g. ``model.run_entity_modeling()`` on one process
before ``fit``; Lightning's FSDP strategy needs CUDA.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def build_module(args: argparse.Namespace):
    """PyKEEN's LCWA Lightning module with a MKGformer of the preset on the dataset."""
    from pykeen.contrib.lightning import LCWALitModule
    from pykeen.datasets import EagerDataset

    from pykeen_mkgformer.kgc.lightning import VocabParallelLCWALitModule

    from kgc_speed import preset_kwargs, synthetic_training
    from pykeen_mkgformer.kgc import MKGformer  # the class itself: no entry points needed (the GPU machine)

    if args.dataset.startswith("synthetic:"):
        training = synthetic_training(int(args.dataset.split(":", 1)[1]), HERE / "output" / "synthetic_pictures")
        dataset = EagerDataset(training=training, testing=training, validation=None)
        dataset_kwargs = None
    else:
        dataset, dataset_kwargs = args.dataset, dict(create_inverse_triples=True)
    module = VocabParallelLCWALitModule if args.head_parallel == "vocab" else LCWALitModule
    return module(
        dataset=dataset,
        dataset_kwargs=dataset_kwargs,
        model=MKGformer,
        model_kwargs=dict(
            random_seed=0,
            entity_modeling_epochs=0,
            max_seq_length=args.seq,
            progress=False,
            head_parallel=args.head_parallel,
            **preset_kwargs(args.preset),
        ),
        batch_size=args.batch,
        learning_rate=1e-4,
        optimizer="adam",
    )


def worker(args: argparse.Namespace) -> None:
    """One fit; rank 0 writes the figures as JSON to ``--result``."""
    import pytorch_lightning
    import torch

    torch.set_num_threads(args.threads)
    pytorch_lightning.seed_everything(0, verbose=False)

    class StepTimer(pytorch_lightning.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._start = 0.0

        def _sync(self, trainer) -> None:
            if trainer.strategy.root_device.type == "cuda":
                torch.cuda.synchronize()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            self._sync(trainer)
            self._start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self._sync(trainer)
            self.times.append(time.perf_counter() - self._start)

    module = build_module(args)
    timer = StepTimer()
    strategy = args.strategy if args.devices > 1 else "auto"
    if args.head_parallel and args.strategy != "ddp":
        raise SystemExit("--head-parallel vocab runs with --strategy ddp")
    trainer = pytorch_lightning.Trainer(
        accelerator=args.accelerator,
        devices=args.devices,
        strategy=strategy,
        precision=args.precision,
        max_epochs=1,
        limit_train_batches=args.warmup + args.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module)
    step = statistics.median(timer.times[args.warmup :])
    model = module.model
    gradient_numel = sum(p.numel() for p in model.parameters() if p.requires_grad)
    allreduce = float("nan")
    if trainer.world_size > 1:
        import torch.distributed as dist

        device = trainer.strategy.root_device
        # DDP's default bucket: 25 MiB
        bucket = max(1, 25 * 2**20 // 4)
        buffers = [torch.ones(min(bucket, gradient_numel - start), device=device) for start in range(0, gradient_numel, bucket)]
        times = []
        for _ in range(args.steps + 1):
            dist.barrier()
            start = time.perf_counter()
            for buffer in buffers:
                dist.all_reduce(buffer)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        allreduce = statistics.median(times[1:])
    if trainer.global_rank == 0:
        Path(args.result).write_text(
            json.dumps(
                dict(
                    devices=trainer.world_size,
                    strategy=strategy + ("+vocab head" if args.head_parallel else ""),
                    step=step,
                    steps=len(timer.times) - args.warmup,
                    global_batch=args.batch * trainer.world_size,
                    samples_per_second=args.batch * trainer.world_size / step,
                    allreduce=allreduce,
                    gradient_numel=gradient_numel,
                    frozen=len(model.frozen_parameters),
                    num_entities=model.num_entities,
                )
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--strategy", choices=["ddp", "fsdp"], default="ddp")
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--head-parallel", choices=["vocab"], default=None, help="shard the entity rows (MKGformer option)")
    parser.add_argument("--precision", default="32-true", help="Lightning's precision, e.g. bf16-mixed on GPUs")
    parser.add_argument("--preset", choices=["tiny", "minilm-vitsmall", "base"], default="tiny")
    parser.add_argument("--dataset", default="synthetic:2000", help="a PyKEEN dataset name, or synthetic:N")
    parser.add_argument("--batch", type=int, default=32, help="per device")
    parser.add_argument("--seq", type=int, default=32, help="max_seq_length")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.strategy == "fsdp" and args.accelerator != "gpu":
        parser.error("--strategy fsdp needs --accelerator gpu (Lightning's FSDP strategy runs on CUDA only)")
    if args.worker:
        args.devices = args.devices[0]
        worker(args)
        return

    rows = []
    for devices in args.devices:
        with tempfile.TemporaryDirectory() as folder:
            result = Path(folder) / "result.json"
            command = [
                sys.executable, str(Path(__file__).resolve()), "--worker", f"--result={result}",
                f"--devices={devices}", f"--strategy={args.strategy}", f"--accelerator={args.accelerator}",
                f"--precision={args.precision}", f"--preset={args.preset}", f"--dataset={args.dataset}",
                f"--batch={args.batch}", f"--seq={args.seq}", f"--steps={args.steps}", f"--warmup={args.warmup}",
                f"--threads={args.threads}",
            ] + ([f"--head-parallel={args.head_parallel}"] if args.head_parallel else [])
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            subprocess.run(command, check=True, env=env)
            rows.append(json.loads(result.read_text()))
    base = rows[0]["samples_per_second"] / rows[0]["devices"]
    lines = []
    for row in rows:
        share = row["allreduce"] / row["step"]
        lines.append(
            f"| {args.preset} | {args.dataset} ({row['num_entities']:,} entities) | {args.accelerator} {args.precision} | "
            f"{row['strategy']} | {row['devices']} | {args.batch} | {row['global_batch']} | {1000 * row['step']:.1f} | "
            f"{row['samples_per_second']:.1f} | {row['samples_per_second'] / (base * row['devices']):.2f} | "
            + ("n/a" if share != share else f"{1000 * row['allreduce']:.1f} ms = {100 * share:.0f}%")
            + f" | {row['gradient_numel'] / 1e6:.2f} M |"
        )
    print("\n".join(lines))
    if not args.no_write:
        from _results import write_section

        header = (
            "PyKEEN's `LCWALitModule` under Lightning (`Trainer.fit`), stage 2 only, Adam. Step: median of "
            f"{args.steps} steps after {args.warmup} warm-up steps, timed on rank 0. Efficiency: samples/s per "
            "device relative to the first row. All-reduce: `torch.distributed.all_reduce` of the trainable "
            "gradients' size in DDP's 25 MiB buckets, timed on its own, and its share of a step (DDP overlaps it "
            "with the backward pass: an upper bound of what it adds).\n\n"
            "| preset | dataset | device | strategy | processes | batch per process | global batch | step (ms) | "
            "samples/s | scaling efficiency | all-reduce per step | gradients |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        )
        head = ", vocab-parallel head" if args.head_parallel else ""
        write_section(
            f"Data-parallel scaling ({args.preset}, {args.accelerator}, {args.strategy}{head})",
            header + "\n".join(lines),
        )


if __name__ == "__main__":
    main()
