# syntax=docker/dockerfile:1.7
# ftjobs images (https://docs.docker.com/build/building/multi-stage/):
#   docker build -t ghcr.io/ftjobs/trainer:0.1.0 .                        (default: trainer)
#   docker build --target controller -t ghcr.io/ftjobs/controller:0.1.0 .
#
# trainer:    the PyTorch CUDA runtime image + ftjobs[train] + DeepSpeed with its fused
#             Adam ops compiled ahead of time (the runtime image has no compiler, so ops
#             that DeepSpeed would JIT-build at start-up are built in the devel stage).
#             The pod spec that `ftjobs render` writes runs `python -m ftjobs.trainer.launch
#             ... --module ftjobs.trainer --config /etc/ftjobs/job.json` (a torchrun-style
#             launcher that keeps the trainer's exit codes) as uid/gid 1000 on a read-only
#             root filesystem; tests/unit/test_dockerfile.py keeps the two in step.
# controller: python slim + ftjobs (kopf, kubernetes client); no torch, no CUDA.
#
# Versions are pinned here and in hack/constraints.txt (the dependency pins of the venv the
# tests run in), so the image runs what CI tested.
ARG PYTORCH_VERSION=2.15.0
ARG CUDA_TAG=cuda13.2-cudnn9
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG FTJOBS_VERSION=0.1.0
ARG DEEPSPEED_VERSION=0.19.8

# --- the ftjobs wheel (pure Python) ------------------------------------------------------
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- DeepSpeed wheel with prebuilt CUDA ops (nvcc lives only in this stage) --------------
FROM pytorch/pytorch:${PYTORCH_VERSION}-${CUDA_TAG}-devel AS deepspeed-build
ARG DEEPSPEED_VERSION
# Ampere, Hopper, Blackwell; PTX of the last one for newer GPUs.
ENV TORCH_CUDA_ARCH_LIST="8.0;9.0;10.0+PTX" \
    DS_BUILD_OPS=0 \
    DS_BUILD_FUSED_ADAM=1 \
    DS_BUILD_CPU_ADAM=1 \
    DS_BUILD_UTILS=1
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels \
        "deepspeed==${DEEPSPEED_VERSION}"

# --- controller: a venv with ftjobs and its light dependencies ---------------------------
FROM ${PYTHON_IMAGE} AS controller-build
ARG FTJOBS_VERSION
RUN python -m venv /opt/venv
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    --mount=type=bind,source=hack/constraints.txt,target=/tmp/constraints.txt \
    /opt/venv/bin/pip install --no-cache-dir -c /tmp/constraints.txt \
        "/wheels/ftjobs-${FTJOBS_VERSION}-py3-none-any.whl"

FROM ${PYTHON_IMAGE} AS controller
COPY --from=controller-build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Numeric user: the kubelet can verify runAsNonRoot without reading /etc/passwd.
USER 1000:1000
# /metrics and /healthz (the chart's probes and Service).
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "ftjobs.controller"]
CMD ["--all-namespaces"]

# --- trainer (default target) ------------------------------------------------------------
FROM pytorch/pytorch:${PYTORCH_VERSION}-${CUDA_TAG}-runtime AS trainer
ARG FTJOBS_VERSION
ARG DEEPSPEED_VERSION
# Installed into the image's own Python, next to torch, so the `python` on PATH (the
# program the pod runs) imports ftjobs, torch and DeepSpeed; the torch pin in the
# constraints keeps pip from replacing the image's CUDA build of torch.
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels/ftjobs \
    --mount=type=bind,from=deepspeed-build,source=/wheels,target=/wheels/deepspeed \
    --mount=type=bind,source=hack/constraints.txt,target=/tmp/constraints.txt \
    pip install --no-cache-dir -c /tmp/constraints.txt \
        "/wheels/ftjobs/ftjobs-${FTJOBS_VERSION}-py3-none-any.whl[train,qlora]" \
        "/wheels/deepspeed/deepspeed-${DEEPSPEED_VERSION}-py3-none-any.whl" \
    && python -c "import ftjobs.trainer, deepspeed, torch"
# uid/gid 1000 as in the rendered pod's securityContext; HOME and caches point at /tmp and
# /scratch (emptyDirs in the pod), so the root filesystem can stay read-only.
RUN getent group 1000 >/dev/null || groupadd --gid 1000 trainer; \
    getent passwd 1000 >/dev/null || useradd --uid 1000 --gid 1000 --no-create-home \
        --home-dir /tmp --shell /usr/sbin/nologin trainer
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    HF_HOME=/scratch/huggingface
WORKDIR /tmp
USER 1000:1000
EXPOSE 29500
# The pod overrides both with the same program and arguments; these make `docker run`
# behave like a one-node job reading a mounted config.
ENTRYPOINT ["python", "-m", "ftjobs.trainer.launch"]
CMD ["--nnodes=1", "--nproc-per-node=1", "-m", "ftjobs.trainer", "--config", "/etc/ftjobs/job.json"]
