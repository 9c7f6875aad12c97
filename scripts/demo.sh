#!/usr/bin/env bash
# One command: set up .venv and run the demo on the local sandbox (no account needed).
source "$(dirname "$0")/_venv.sh" dev
exec cleanlist-pandas demo "$@"
