# Sourced by scripts/demo.sh and scripts/test.sh: make a venv (Python 3.11+) and install the
# package with the given extras, once; re-installs when pyproject.toml or the pins change.
#   VENV=.venv-pandas22 PINS="pandas==2.2.* numpy==1.26.*" source scripts/_venv.sh dev
# installs PINS first, then the package: what pip does in an environment that already has
# them (it must not upgrade them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PY="$cand"; break
    fi
  done
fi
if [ -z "$PY" ]; then echo "Python 3.11+ is needed (set PYTHON=/path/to/python3.11)" >&2; exit 1; fi
EXTRAS="${1:-dev}"
VENV="${VENV:-.venv}"
PINS="${PINS:-}"
STAMP="$VENV/.installed-$EXTRAS"
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating $VENV with $PY ..." >&2
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ "$(cat "$STAMP")" != "$PINS" ]; then
  echo "Installing cleanlist-pandas[$EXTRAS] into $VENV${PINS:+ (after $PINS)} ..." >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  if [ -n "$PINS" ]; then
    # shellcheck disable=SC2086  # one word per requirement
    "$VENV/bin/python" -m pip install -q $PINS >&2
  fi
  "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]" >&2
  printf '%s' "$PINS" > "$STAMP"
fi
export PATH="$ROOT/$VENV/bin:$PATH"
