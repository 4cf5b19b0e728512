#!/usr/bin/env bash
# Set up, then reproduce one paper (default: instaflow at mini scale) with every core.
#   bash scripts/reproduce.sh [paper] [scale]
# Produces results/<paper>/*.json and results/<paper>/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
paper=${1:-instaflow}
scale=${2:-mini}
bash scripts/setup.sh
.venv/bin/snakemake -c all "$paper" results/index.md --config scale="$scale" papers="$paper"
echo "report: results/$paper/report.md"
