#!/usr/bin/env bash
# Download, here, the wheels the GPU machine lacks (it has torch, transformers, pillow, pandas,
# scipy, scikit-learn, tqdm, click, ... but not PyKEEN and its small dependencies), for its
# Python 3.12, into .whl/ (ignored by git). benchmarks/gpu_rows.sh installs them there.
#
#   bash benchmarks/fetch_gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl \
  pykeen==1.11.1 class-resolver==0.8.2 click-default-group==1.2.4 dataclasses-json==0.6.7 marshmallow==3.26.2 \
  docdata==0.0.5 more-click==0.1.3 \
  more-itertools==11.2.1 pystow==0.10.3 torch-max-mem==0.1.6 torch-ppr==0.0.8 \
  pytorch-lightning==2.6.6 lightning-utilities==0.15.3 torchmetrics==1.9.0
du -sh .whl
