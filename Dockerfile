# syntax=docker/dockerfile:1.7
# ftjobs images (https://docs.docker.com/build/building/multi-stage/):
#   docker build -t ghcr.io/ftjobs/trainer:0.1.0 .                        (default: trainer)
#   docker build --target controller -t ghcr.io/ftjobs/controller:0.1.0 .
# `make image` builds both (hack/build-images.sh; docs/release.md: build, push, install).
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
#
# Build arguments for other bases (hack/build-images.sh passes local stand-ins built from
# Debian packages, because the test machines reach no registry):
#   PYTHON_IMAGE    the controller's and wheel stages' Python base
#   PYTORCH_IMAGE   repository of the PyTorch images; tags <PYTORCH_VERSION>-<CUDA_TAG>-devel
#                   and -runtime are used
#   DEEPSPEED_OPS   DeepSpeed ops compiled ahead of time (each sets DS_BUILD_<op>=1); empty
#                   builds a pure-Python DeepSpeed wheel (ops are then JIT-built if used)
ARG PYTORCH_VERSION=2.15.0
ARG CUDA_TAG=cuda13.2-cudnn9
ARG PYTORCH_IMAGE=pytorch/pytorch
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG FTJOBS_VERSION=0.1.0
ARG DEEPSPEED_VERSION=0.19.8
ARG DEEPSPEED_OPS="FUSED_ADAM CPU_ADAM UTILS"

# --- the ftjobs wheel (pure Python) and its requirement lists ----------------------------
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
# The requirements come from pyproject.toml alone (before src is copied), so the images'
# dependency layers below stay cached when only the source changes: the controller gets
# ftjobs' own, the trainer also the [train] and [qlora] extras.
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
open('requirements.txt', 'w').write('\n'.join(p['dependencies']) + '\n'); \
extras = p['optional-dependencies']; \
open('requirements-train.txt', 'w').write('\n'.join(p['dependencies'] + extras['train'] + extras['qlora']) + '\n')"
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- DeepSpeed wheel with prebuilt CUDA ops (nvcc lives only in this stage) --------------
FROM ${PYTORCH_IMAGE}:${PYTORCH_VERSION}-${CUDA_TAG}-devel AS deepspeed-build
ARG DEEPSPEED_VERSION
ARG DEEPSPEED_OPS
# Ampere, Hopper, Blackwell; PTX of the last one for newer GPUs.
ENV TORCH_CUDA_ARCH_LIST="8.0;9.0;10.0+PTX" \
    DS_BUILD_OPS=0
# With compiled ops the wheel carries a platform tag (deepspeed-<v>-cp311-cp311-linux_x86_64),
# without them it is py3-none-any: the trainer stage installs whichever was built.
# hadolint ignore=SC2086
RUN for op in ${DEEPSPEED_OPS}; do export "DS_BUILD_${op}=1"; done; \
    pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels \
        "deepspeed==${DEEPSPEED_VERSION}" \
    && ls /wheels/deepspeed-"${DEEPSPEED_VERSION}"-*.whl

# --- controller: a venv with ftjobs and its light dependencies ---------------------------
# Files are COPYed (not bind-mounted) into the build: every builder keys its layer cache
# on copied content (buildah's cache ignores bind-mounted content).
FROM ${PYTHON_IMAGE} AS controller-build
ARG FTJOBS_VERSION
RUN python -m venv /opt/venv
COPY hack/constraints.txt /tmp/ftjobs/
COPY --from=wheel /src/requirements.txt /tmp/ftjobs/
RUN /opt/venv/bin/pip install --no-cache-dir -c /tmp/ftjobs/constraints.txt \
        -r /tmp/ftjobs/requirements.txt
COPY --from=wheel /wheels/ /tmp/ftjobs/wheels/
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps \
        "/tmp/ftjobs/wheels/ftjobs-${FTJOBS_VERSION}-py3-none-any.whl"

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
FROM ${PYTORCH_IMAGE}:${PYTORCH_VERSION}-${CUDA_TAG}-runtime AS trainer
ARG FTJOBS_VERSION
ARG DEEPSPEED_VERSION
# Installed into the image's own Python, next to torch, so the `python` on PATH (the
# program the pod runs) imports ftjobs, torch and DeepSpeed; the torch pin in the
# constraints keeps pip from replacing the image's CUDA build of torch.
# Two layers: the dependencies (GBs; rebuilt only when the requirements, the pins or the
# DeepSpeed wheel change), then the small ftjobs wheel (rebuilt on every source change).
COPY hack/constraints.txt /opt/ftjobs/build/
COPY --from=wheel /src/requirements-train.txt /opt/ftjobs/build/
COPY --from=deepspeed-build /wheels/ /opt/ftjobs/build/deepspeed/
RUN pip install --no-cache-dir -c /opt/ftjobs/build/constraints.txt \
        -r /opt/ftjobs/build/requirements-train.txt \
        /opt/ftjobs/build/deepspeed/deepspeed-"${DEEPSPEED_VERSION}"-*.whl
COPY --from=wheel /wheels/ /opt/ftjobs/build/ftjobs/
RUN pip install --no-cache-dir --no-deps \
        "/opt/ftjobs/build/ftjobs/ftjobs-${FTJOBS_VERSION}-py3-none-any.whl" \
    && python -c "import ftjobs.trainer, deepspeed, torch, transformers"
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
