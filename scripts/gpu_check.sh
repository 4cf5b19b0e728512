#!/usr/bin/env bash
# The GPU check (steps/core/gpu_check.py), for a machine with a CUDA GPU and this checkout set
# up (bash scripts/setup.sh installs the CUDA build of torch where nvidia-smi is present):
# (a) the tiny-model full-scale tests on the GPU, (b) bf16 autocast in the training steps,
# (c) InstaFlow's full-scale sampling, reflow and distillation steps timed on SD 1.5-sized
# models, (d) the GPU-days they imply beside the paper's. Prints tables, writes
# benchmarks/gpu_check_cuda.json. Exit 0: all passed; 1: a check failed; 2: no CUDA GPU.
#   bash scripts/gpu_check.sh [--quick]
#   bash scripts/gpu_check.sh --device cpu --tiny     # the same code on tiny models (CI tests this)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" -m steps.core.gpu_check "$@"
