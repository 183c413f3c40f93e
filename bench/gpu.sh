#!/usr/bin/env bash
# GPU benchmark (run when a GPU machine is available; nothing here needs a network):
# a ~1.1B Llama built from config (TinyLlama-1.1B's shape, random bf16 weights), ZeRO-2
# bf16, seq 2048. One run prints tokens/s, MFU and peak GPU memory for
#   core      the ftjobs trainer | a plain DeepSpeed loop | transformers.Trainer, all three
#             on the same model, data and DeepSpeed config (the one the trainer resolved)
#   stall     the trainer with a background checkpoint every CHECKPOINT_EVERY steps vs none
#   features  each spec.performance switch flipped (tokens/s and peak memory)
#   lora      LoRA on an 8B Llama shape built from config, with peak memory (and QLoRA
#             where bitsandbytes is installed)
# and writes $WORKDIR/results.jsonl. See bench/bench_gpu.py and docs/benchmarks.md.
#
#   bash bench/gpu.sh                          # all rows (estimate 12-15 min on one H200)
#   ROWS=core,stall bash bench/gpu.sh          # the comparison and the stall (~4-5 min)
#   ROWS=features,lora bash bench/gpu.sh       # the other half (the ftjobs row runs in both)
#   SMOKE=1 bash bench/gpu.sh                  # every row on CPU with a tiny Llama (~5 min)
#
# On the offline GPU machine, with the wheels of bench/carry-wheels.sh in .whl/:
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site:$PWD/src:$PWD PY=python3 bash bench/gpu.sh
# PEAK_TFLOPS is the dense bf16 peak per GPU for MFU (989 for H100/H200 SXM, 312 for A100).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-${FTJOBS_VENV:-$HOME/.cache/ftjobs/venv}/bin/python}
SMOKE=${SMOKE:-}
if [ -n "$SMOKE" ]; then
  GPUS=1 STEPS=${STEPS:-3} SEQ_LEN=${SEQ_LEN:-32} MICRO_BATCH=${MICRO_BATCH:-2}
  GLOBAL_BATCH=${GLOBAL_BATCH:-4} CHECKPOINT_EVERY=${CHECKPOINT_EVERY:-2}
  export DS_ACCELERATOR=cpu OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
  GPUS=${GPUS:-$(nvidia-smi -L | wc -l)}
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
fi
STEPS=${STEPS:-30}
SEQ_LEN=${SEQ_LEN:-2048}
MICRO_BATCH=${MICRO_BATCH:-4}
GLOBAL_BATCH=${GLOBAL_BATCH:-$((MICRO_BATCH * GPUS * 4))}
CHECKPOINT_EVERY=${CHECKPOINT_EVERY:-10}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}
ROWS=${ROWS:-core,stall,features,lora}
WORKDIR=${WORKDIR:-$(mktemp -d /tmp/ftjobs-gpu-bench.XXXXXX)}

export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" bench/bench_gpu.py ${SMOKE:+--smoke} --rows "$ROWS" \
  --gpus "$GPUS" --steps "$STEPS" --seq-len "$SEQ_LEN" \
  --micro-batch "$MICRO_BATCH" --global-batch "$GLOBAL_BATCH" \
  --checkpoint-every "$CHECKPOINT_EVERY" --peak-tflops "$PEAK_TFLOPS" --workdir "$WORKDIR"
echo "results: $WORKDIR/results.jsonl"
