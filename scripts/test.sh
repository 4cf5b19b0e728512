#!/usr/bin/env bash
# Set up, then run the test suite (CPU, no slow or GPU tests). Extra arguments go to pytest.
#   bash scripts/test.sh [pytest args]
# Test files run in parallel, one worker per core (pytest-xdist, --dist loadfile: a file's tests
# and its module fixtures, e.g. a paper's smoke DAG, stay on one worker; the SLURM tests are one
# file). PYTEST_WORKERS=0 runs them in one process; the slowest tests are listed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -m "not slow and not gpu" -n "${PYTEST_WORKERS:-auto}" --dist loadfile --durations=15 "$@"
