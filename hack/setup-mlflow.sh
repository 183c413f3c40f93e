#!/usr/bin/env bash
# The MLflow tracking server the tests start (tests/fixtures/mlflow.py), in its own venv.
#
# Why not in the project's venv: mlflow 3.17.2 (the server package) requires pyarrow<26
# while the project pins pyarrow 26.0.1, and the server brings ~40 packages (Flask,
# SQLAlchemy, alembic, gunicorn, graphene, docker, huey, ...) that the trainer must not
# carry. The trainer itself logs with mlflow-skinny (the client, in ftjobs[train]).
#   FTJOBS_MLFLOW_VENV   where it lives (default $FTJOBS_CACHE/mlflow-<version>,
#                        FTJOBS_CACHE defaulting to ~/.cache/ftjobs); uv's cache: $FTJOBS_CACHE/uv
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=3.17.2
CACHE="${FTJOBS_CACHE:-$HOME/.cache/ftjobs}"
VENV="${FTJOBS_MLFLOW_VENV:-$CACHE/mlflow-$VERSION}"
PYTHON="${PYTHON:-python3}"
log() { printf '[setup-mlflow %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
stamp=$(cat hack/mlflow-constraints.txt hack/setup-mlflow.sh | sha256sum | cut -c1-16)
if [ "$(cat "$VENV/.stamp" 2>/dev/null)" = "$stamp" ]; then
  log "up to date ($VENV)"
  exit 0
fi
log "installing mlflow==$VERSION (server, SQLite backend, S3 artifacts) into $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# uv (one wheel from PyPI, pinned in the constraints) resolves and downloads the ~40
# packages in parallel and links them from its cache; pip did the same work serially and
# took most of a cold CI run's MLflow minutes. pip stays the fallback.
UV_VERSION=$(sed -n 's/^uv==//p' hack/mlflow-constraints.txt)
export UV_CACHE_DIR="${UV_CACHE_DIR:-$CACHE/uv}"
if "$VENV/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"; then
  "$VENV/bin/uv" pip install --python "$VENV/bin/python" -c hack/mlflow-constraints.txt \
    "mlflow==$VERSION" boto3
else
  log "uv==$UV_VERSION not installable: pip instead"
  "$VENV/bin/pip" install -q --disable-pip-version-check -c hack/mlflow-constraints.txt \
    "mlflow==$VERSION" boto3
fi
echo "$stamp" > "$VENV/.stamp"
log "ready: $VENV/bin/mlflow"
