#!/usr/bin/env bash
# One command: set up the venvs and run the whole test suite on both pandas lines we support:
#   .venv           the newest pandas 3 (numpy 2, Polars, pyarrow): ruff, mypy, pytest
#   .venv-pandas22  pandas 2.2.x with numpy 1.26, the oldest pair in range: pytest
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k sandbox`.
# LEGS=3 or LEGS=2.2 runs one leg only (while working); the default runs both, and the
# script fails if either fails.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
failed=()
for leg in ${LEGS:-3 2.2}; do
  start=$SECONDS
  bash "$HERE/_leg.sh" "$leg" "$@" || failed+=("pandas $leg")
  echo "== leg pandas $leg: $((SECONDS - start)) s"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "== FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "== passed: ${LEGS:-3 2.2}"
