#!/usr/bin/env bash
# One leg of scripts/test.sh, in its own process (so `set -e` holds): LEG then pytest args.
#   3    .venv           the newest pandas 3 (numpy 2, Polars, pyarrow): ruff, mypy, pytest
#   2.2  .venv-pandas22  pandas 2.2.x with numpy 1.26, the oldest pair in range: pytest
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
LEG="$1"
shift
# pandas 2.2 and numpy 1.26 are installed first, then the package, which must not upgrade
# them; pyarrow 26+ needs numpy 2, so this leg keeps pyarrow below it.
PANDAS22_PINS="pandas==2.2.* numpy==1.26.* pyarrow<26"
ABOUT='import sys, numpy, pandas
v = [f"pandas {pandas.__version__}", f"numpy {numpy.__version__}"]
try:
    import polars, pyarrow
    v += [f"polars {polars.__version__}", f"pyarrow {pyarrow.__version__}"]
except ImportError as exc:
    v.append(f"no Polars ({exc})")
print(", ".join(v))
sys.exit(not pandas.__version__.startswith(sys.argv[1]))'

case "$LEG" in
  3)
    source "$HERE/_venv.sh" dev,browser
    # the browser test drives Debian's chromium; as root (CI) install it when missing,
    # elsewhere the test is skipped and says what is missing
    if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "== installing Debian's chromium for tests/browser" >&2
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2 \
        || echo "could not install chromium: tests/browser will be skipped" >&2
    fi
    about="$(python -c "$ABOUT" 3.)" || { echo "expected pandas 3: $about" >&2; exit 1; }
    echo "== ruff" && ruff check cleanlist_pandas tests benchmarks
    echo "== mypy" && mypy
    echo "== pytest on $about (.venv)"
    python -m pytest "$@"
    ;;
  2.2)
    VENV=.venv-pandas22 PINS="$PANDAS22_PINS" source "$HERE/_venv.sh" dev
    about="$(python -c "$ABOUT" 2.2.)" || {
      echo "installing the package upgraded pandas 2.2: $about" >&2
      exit 1
    }
    echo "== pytest on $about (.venv-pandas22)"
    python -m pytest "$@"
    ;;
  *)
    echo "unknown leg $LEG (use 3 or 2.2)" >&2
    exit 2
    ;;
esac
