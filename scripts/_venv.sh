# Sourced by scripts/demo.sh and scripts/test.sh: make .venv (Python 3.11+) and install the
# package with the given extras, once; re-installs when pyproject.toml changes.
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
STAMP=".venv/.installed-$EXTRAS"
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $PY ..." >&2
  "$PY" -m venv .venv
fi
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  echo "Installing cleanlist-pandas[$EXTRAS] into .venv ..." >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e ".[$EXTRAS]" >&2
  touch "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
