#!/usr/bin/env bash
# Set up, then run the test suite (CPU, no slow or GPU tests). Extra arguments go to pytest.
#   bash scripts/test.sh [pytest args]
# Test files run in parallel (pytest-xdist, --dist loadfile: a file's tests and its module
# fixtures, e.g. a paper's smoke DAG, stay on one worker), one worker per core plus one: the
# SLURM tests, collected first (tests/conftest.py), mostly wait on their cluster, and the extra
# worker keeps the cores busy meanwhile. PYTEST_WORKERS=N sets the count (0: one process); the
# slowest tests are listed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
WORKERS=${PYTEST_WORKERS:-$(( $(nproc) + 1 ))}
.venv/bin/python -m pytest -m "not slow and not gpu" -n "$WORKERS" --dist loadfile --durations=25 "$@"
