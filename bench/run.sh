#!/usr/bin/env bash
# The benchmark in one command on a fresh Debian 12 machine, as root:
#   bash bench/run.sh [bench/run.py options, e.g. --quick --reps 1]
# Installs what it needs (scripts/test-env.sh: apt packages, the Python package; idempotent),
# then runs bench/run.py, which writes bench/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-env.sh
exec python3 bench/run.py "$@"
