#!/usr/bin/env bash
# The quickstart (`make demo`, after `make setup`): fine-tune all-MiniLM-L6-v2 on tweet
# sentiment with `ftjobs run` on CPU and local storage, then check the held-out accuracy.
# Fails when the fine-tuned model scores below FTJOBS_DEMO_MIN_ACCURACY (0.85).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${FTJOBS_VENV:-$HOME/.cache/ftjobs/venv}
PY=$VENV/bin/python
DEMO=${FTJOBS_DEMO_DIR:-$HOME/.cache/ftjobs/demo}
OUT=${FTJOBS_DEMO_OUTPUT:-$DEMO/output}
MIN=${FTJOBS_DEMO_MIN_ACCURACY:-0.85}
export FTJOBS_DEMO_DIR=$DEMO DS_ACCELERATOR=cpu HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

"$PY" hack/prepare_demo.py sentiment
# A fresh output each time: ftjobs run resumes from an output's checkpoints otherwise.
rm -rf "$OUT"
"$VENV/bin/ftjobs" run examples/quickstart-sentiment.yaml \
  --output "$OUT" \
  --set "model.uri=file://$DEMO/models/minilm" \
  --set "dataset.train=file://$DEMO/data/sentiment/train.jsonl" \
  --set "dataset.test=file://$DEMO/data/sentiment/test.jsonl"

"$PY" - "$OUT/local/quickstart-sentiment/summary.json" "$MIN" <<'PYEOF'
import json
import sys

summary = json.load(open(sys.argv[1]))
minimum = float(sys.argv[2])
base = summary["metrics"]["base"].get("accuracy")
tuned = summary["metrics"]["fineTuned"]["accuracy"]
print(f"held-out test accuracy: base {base:.3f} -> fine-tuned {tuned:.3f} (need >= {minimum})")
print(f"model: {summary['outputModel']}")
if tuned < minimum:
    sys.exit(f"demo failed: fine-tuned accuracy {tuned:.3f} < {minimum}")
PYEOF
