#!/usr/bin/env bash
# GPU check, sized for one H200 in <= 8 minutes with no network (bench/gpu_check.py):
# classification, causal-lm with LoRA, seq2seq and question-answering each fine-tune on
# CUDA with checkpoints, get SIGTERM, exit retriable and resume to the end (loss must
# fall); then the throughput benchmark (bench/gpu.sh, rows core,stall, 20 steps).
# Writes $WORKDIR/gpu-check.json (one summary) and $WORKDIR/bench/results.jsonl; exit 1
# when a task failed.
#
#   bash bench/gpu-check.sh                      # on a GPU machine
#   SMOKE=1 bash bench/gpu-check.sh              # the same on CPU with tiny shapes (~10 min
#                                                # on 2 busy cores; proves the script runs)
#
# On the offline GPU machine (Python 3.12 with torch and transformers, no project venv),
# first `bash bench/carry-wheels.sh` on a machine with a network puts the other
# wheels in .whl/; this script installs them into /tmp/site when .whl/ is there.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_PY=${FTJOBS_VENV:-$HOME/.cache/ftjobs/venv}/bin/python
if [ -z "${PY:-}" ]; then
  if [ -x "$VENV_PY" ]; then PY=$VENV_PY; else PY=python3; fi
fi
if [ -d .whl ] && [ -z "${SMOKE:-}" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD/src:$PWD
fi
export PY HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
WORKDIR=${WORKDIR:-$(mktemp -d /tmp/ftjobs-gpu-check.XXXXXX)}
BENCH_ROWS=${BENCH_ROWS-core,stall}
[ -n "${SMOKE:-}" ] || export STEPS=${STEPS:-20}
# The budget is the check's: past TIMEOUT seconds it stops and says so (exit 124).
if [ -n "${SMOKE:-}" ]; then TIMEOUT=${TIMEOUT:-1800}; fi
timeout "${TIMEOUT:-480}" "$PY" bench/gpu_check.py --workdir "$WORKDIR" ${SMOKE:+--smoke} \
  --bench-rows "$BENCH_ROWS" ${TASKS:+--tasks "$TASKS"}
echo "summary: $WORKDIR/gpu-check.json"
