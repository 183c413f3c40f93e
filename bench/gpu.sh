#!/usr/bin/env bash
# GPU benchmark (run when a GPU machine is available; nothing here needs a network):
# a ~1.1B Llama built from config (TinyLlama-1.1B's shape, random bf16 weights), ZeRO-2
# bf16, the ftjobs trainer vs a minimal plain-DeepSpeed loop on the same model, data and
# DeepSpeed config, side by side. Prints tokens/s and MFU of each, and their ratio.
#
#   bash bench/gpu.sh                    # all visible GPUs, 30 steps, seq 2048
#   STEPS=50 SEQ_LEN=4096 bash bench/gpu.sh
#
# PEAK_TFLOPS is the dense bf16 peak per GPU for MFU (989 for H100/H200 SXM, 312 for A100).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-${FTJOBS_VENV:-$HOME/.cache/ftjobs/venv}/bin/python}
GPUS=${GPUS:-$(nvidia-smi -L | wc -l)}
STEPS=${STEPS:-30}
SEQ_LEN=${SEQ_LEN:-2048}
MICRO_BATCH=${MICRO_BATCH:-4}
GLOBAL_BATCH=${GLOBAL_BATCH:-$((MICRO_BATCH * GPUS * 4))}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}
WORKDIR=${WORKDIR:-$(mktemp -d /tmp/ftjobs-gpu-bench.XXXXXX)}

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" bench/bench_trainer.py gpu \
  --gpus "$GPUS" --steps "$STEPS" --seq-len "$SEQ_LEN" \
  --micro-batch "$MICRO_BATCH" --global-batch "$GLOBAL_BATCH" \
  --peak-tflops "$PEAK_TFLOPS" --workdir "$WORKDIR" | tee "$WORKDIR/results.jsonl"
echo "results: $WORKDIR/results.jsonl"
