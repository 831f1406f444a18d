#!/usr/bin/env bash
# The GPU rows of benchmarks/RESULTS.md in one call on the device machine (about 5 minutes of
# measuring on an H100/H200, plus the machine's start; about 2 more for ddp_scaling.py).
#
# Random-init encoders of the paper's sizes (BERT-base + CLIP ViT-B/32, the official 7-image
# layout): no weights can be fetched there. The 40,943-entity scoring head of WN18 comes from
# kgc_speed's synthetic graph, since the benchmark data does not travel to that machine.
#
# Here, first (the machine has torch and transformers, not PyKEEN):
#   bash benchmarks/fetch_gpu_wheels.sh                       # -> .whl/
# then with the device tool:
#   run(command="bash benchmarks/gpu_rows.sh", carry=[".whl"], timeout_s=540)
# and copy the returned RESULTS.md over benchmarks/RESULTS.md (it holds the new sections).
# Set PEAK_TFLOPS for a card other than the H200 (790 TFLOP/s bf16 dense, measured there).
# Several GPUs (one machine): DDP_DEVICES="1 2 4 8" for ddp_scaling.py (plain DDP, then MKGformer(head_parallel="vocab")
# through PyKEEN's Lightning integration), HEAD_GPUS=8 for the vocabulary-parallel entity head alone at Wikidata5M
# size (kgc_scale.py --wikidata5m spawns one process per GPU, NCCL); e.g.
#   DDP_DEVICES="1 2 4 8" HEAD_GPUS=8 bash benchmarks/gpu_rows.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
device=${DEVICE:-cuda}
peak=${PEAK_TFLOPS:-790}
out=${OUT:-benchmarks/output/gpu}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee "$out/gpu.txt" || true
{
  # fusion overhead against transformers' own two towers, the paper's sizes, batch 256
  python3 benchmarks/encoder_overhead.py --preset base --batch "${BATCH:-256}" --device "$device" --dtype bf16 --steps 5
  # the full MKGformer LCWA step with the WN18-sized head: samples/s, queries/s, memory, utilisation
  for batch in ${KGC_BATCHES:-256 96}; do
    python3 benchmarks/kgc_speed.py --preset base --dataset synthetic:40943 --batch "$batch" --steps 5 \
      --device "$device" --dtype bf16 --peak-tflops "$peak"
  done
  # data-parallel scaling through PyKEEN's Lightning module (DDP over NCCL), DDP_DEVICES GPUs, e.g. "1 2 4 8"
  python3 benchmarks/ddp_scaling.py --accelerator gpu --devices ${DDP_DEVICES:-1} --strategy "${DDP_STRATEGY:-ddp}" \
    --preset base --dataset synthetic:40943 --batch "${DDP_BATCH:-96}" --seq 64 --precision bf16-mixed --steps 10 \
    || echo "ddp_scaling.py failed (the rows above are kept)"
  # the same with MKGformer(head_parallel="vocab") under the plugin's VocabParallelLCWALitModule: each GPU holds
  # N / W entity rows and their Adam state, the encoder stays DDP (VOCAB_ENTITIES: the synthetic graph's size)
  python3 benchmarks/ddp_scaling.py --accelerator gpu --devices ${DDP_DEVICES:-1} --strategy ddp --head-parallel vocab \
    --preset base --dataset "synthetic:${VOCAB_ENTITIES:-40943}" --batch "${DDP_BATCH:-96}" --seq 64 \
    --precision bf16-mixed --steps 10 \
    || echo "ddp_scaling.py --head-parallel vocab failed (the rows above are kept)"
  # Wikidata5M size (4.6 M entities, 822 relations, 20.6 M triples, Zipf degrees): dense 1-N vs sampled softmax on
  # one GPU, and the vocabulary-parallel head over HEAD_GPUS GPUs (one process per GPU, NCCL), at d = 32 and at the
  # paper's d = 768 (the dense d = 768 head with Adam is 70 GB: it fits an H200, not an 80 GB card)
  for dim in ${HEAD_DIMS:-32 768}; do
    python3 benchmarks/kgc_scale.py --wikidata5m --device "$device" --dim "$dim" --batch "${HEAD_BATCH:-256}" \
      --processes "${HEAD_GPUS:-1}" --steps 5 --long-steps "${HEAD_LONG_STEPS:-300}" \
      --objectives ${HEAD_OBJECTIVES:-dense sampled vocab} \
      || echo "kgc_scale.py --wikidata5m --dim $dim failed (the rows above are kept)"
  done
} 2>&1 | tee "$out/log.txt"
cp benchmarks/RESULTS.md "$out/RESULTS.md"
