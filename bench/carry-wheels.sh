#!/usr/bin/env bash
# Puts into ./.whl (run from the project's root) the Python wheels the trainer needs on an
# offline GPU machine whose Python (3.12) already has torch, transformers, accelerate, peft,
# pyarrow, scikit-learn, sacrebleu, safetensors and numpy: the rest of the pinned stack
# (hack/constraints.txt) and a pure-Python DeepSpeed wheel, ~40 MB, to carry with the tree.
#
#   bash bench/carry-wheels.sh                   # on a machine that reaches PyPI
#   on the GPU machine, start the command with:
#     python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#       --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/src:$PWD || exit 9;
#   then e.g.  PY=python3 bash bench/gpu-check.sh  (PY: there is no project venv there)
set -euo pipefail
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
C=hack/constraints.txt
pin() { grep -iE "^$1==" "$C" | head -1 || true; }
names="pydantic pydantic_core annotated-types typing-inspection boto3 botocore s3transfer jmespath
datasets dill multiprocess transformers huggingface_hub tokenizers hjson fsspec httpx2 httpcore2
click regex"
specs=()
for n in $names; do p=$(pin "$n"); specs+=("${p:-$n}"); done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "${specs[@]}" truststore typing_extensions
# DeepSpeed ships only a source distribution: build its pure-Python wheel here (no ops).
ds=$(pin deepspeed)
PY=${FTJOBS_VENV:-$HOME/.cache/ftjobs/venv}/bin/python
DS_BUILD_OPS=0 "$PY" -m pip wheel -q --no-deps --no-build-isolation -w .whl "${ds:-deepspeed}"
du -sh .whl
