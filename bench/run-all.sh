#!/usr/bin/env bash
# Runs every CPU benchmark once, side by side with its baseline (see docs/benchmarks.md).
# Starts the local control plane + S3 server when none is running (hack/cluster.py), and
# prepares the quickstart model and data the trainer benchmarks use.
#   BENCH_JOBS   FineTuneJobs in the controller burst (default 300; the issue's 1,000 works too)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${FTJOBS_VENV:-$HOME/.cache/ftjobs/venv}/bin/python"
STATE="${FTJOBS_STATE_DIR:-$HOME/.cache/ftjobs}/cluster"
step() { printf '\n== %s (%s)\n' "$*" "$(date +%H:%M:%S)"; }

if [ -z "${FTJOBS_TEST_KUBECONFIG:-}" ]; then
  step "starting the local control plane and S3 server"
  "$PY" hack/cluster.py up
  # shellcheck disable=SC1091
  source "$STATE/env.sh"
fi
export PATH="${FTJOBS_TEST_BIN_PATH:+$FTJOBS_TEST_BIN_PATH:}$PATH"
export DS_ACCELERATOR=cpu HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" hack/prepare_demo.py sentiment

step "storage: upload_dir vs raw boto3"
"$PY" bench/bench_storage.py --size-mib 256 --repeats 3
step "trainer: step time vs plain DeepSpeed"
"$PY" bench/bench_trainer.py step-time
step "trainer: background checkpoint uploads vs none"
"$PY" bench/bench_trainer.py checkpoint
step "trainer: streaming from S3 vs local disk"
"$PY" bench/bench_trainer.py streaming
step "controller: FineTuneJob burst vs kube-controller-manager"
"$PY" bench/bench_controller.py --kubeconfig "$FTJOBS_TEST_KUBECONFIG" --jobs "${BENCH_JOBS:-300}"
