#!/usr/bin/env bash
# Runs every test tier in one pytest session (the control plane and S3 server start
# once) and fails on any failure and on zero tests collected (pytest exit 5).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${FTJOBS_VENV:-$HOME/.cache/ftjobs/venv}/bin/python"
"$PY" -m pytest tests "$@"
rc=$?
if [ "$rc" -eq 5 ]; then echo "no tests were collected: failing" >&2; exit 1; fi
exit "$rc"
