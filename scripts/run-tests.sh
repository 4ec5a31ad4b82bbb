#!/usr/bin/env bash
# The test command: prepare the machine, lint (ruff, shellcheck), then pytest (extra args go
# to pytest).
set -euo pipefail

cd "$(dirname "$0")/.."

bash scripts/test-env.sh
echo "run-tests: ruff check ."
python3 -m ruff check .
echo "run-tests: shellcheck operations/sh/*.sh scripts/*.sh"
shellcheck operations/sh/*.sh scripts/*.sh
echo "run-tests: pytest $*"
python3 -m pytest "$@"
