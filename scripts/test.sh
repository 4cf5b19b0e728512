#!/usr/bin/env bash
# Set up, then run the test suite (CPU, no slow or GPU tests). Extra arguments go to pytest.
#   bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -m "not slow and not gpu" "$@"
