#!/usr/bin/env bash
# The MLflow tracking server the tests start (tests/fixtures/mlflow.py), in its own venv.
#
# Why not in the project's venv: mlflow 3.17.2 (the server package) requires pyarrow<26
# while the project pins pyarrow 26.0.1, and the server brings ~40 packages (Flask,
# SQLAlchemy, alembic, gunicorn, graphene, docker, huey, ...) that the trainer must not
# carry. The trainer itself logs with mlflow-skinny (the client, in ftjobs[train]).
#   FTJOBS_MLFLOW_VENV   where it lives (default ~/.cache/ftjobs/mlflow-<version>)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=3.17.2
VENV="${FTJOBS_MLFLOW_VENV:-$HOME/.cache/ftjobs/mlflow-$VERSION}"
PYTHON="${PYTHON:-python3}"
log() { printf '[setup-mlflow %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
stamp=$(cat hack/mlflow-constraints.txt hack/setup-mlflow.sh | sha256sum | cut -c1-16)
if [ "$(cat "$VENV/.stamp" 2>/dev/null)" = "$stamp" ]; then
  log "up to date ($VENV)"
  exit 0
fi
log "installing mlflow==$VERSION (server, SQLite backend, S3 artifacts) into $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -c hack/mlflow-constraints.txt \
  "mlflow==$VERSION" boto3
echo "$stamp" > "$VENV/.stamp"
log "ready: $VENV/bin/mlflow"
