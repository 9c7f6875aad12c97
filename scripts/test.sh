#!/usr/bin/env bash
# One command: set up .venv and run the whole test suite (ruff, mypy, pytest).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k sandbox`.
source "$(dirname "$0")/_venv.sh" dev
echo "== ruff" && ruff check cleanlist_pandas tests benchmarks
echo "== mypy" && mypy
echo "== pytest" && python -m pytest "$@"
