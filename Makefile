# ftjobs — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export FTJOBS_VENV ?= $(HOME)/.cache/ftjobs/venv
PY := $(FTJOBS_VENV)/bin/python
PYTEST := $(PY) -m pytest
# Each preparation step appends its wall time to $FTJOBS_TIMINGS (.ci/run prints them).
TIMED := bash hack/timed.sh
export PYTHONUNBUFFERED := 1
# Training tests and the demo run DeepSpeed on the CPU accelerator.
export DS_ACCELERATOR := cpu
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help setup demo test test-unit test-integration test-training test-e2e test-nodes test-image \
        mlflow generate check-generated lint fmt bench testbins image cluster-up cluster-down clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Install the Python environment (cached in ~/.cache/ftjobs/venv)
	@$(TIMED) setup bash hack/setup-python.sh

demo: setup ## Fine-tune the quickstart (sentiment, MiniLM) on CPU with local storage
	@bash hack/demo.sh

# `make -j4 test` (.ci/run) prepares setup, testbins, image and mlflow at once.
test: setup testbins image mlflow lint check-generated ## Build/start what the tests need and run every tier
	@$(TIMED) tests bash hack/run-tests.sh

test-unit: setup ## Unit tier only (pure code, no network)
	$(PYTEST) -m unit tests/unit

test-integration: setup testbins ## Integration tier (real control plane + S3 server)
	$(PYTEST) -m integration tests/integration

test-training: setup ## Training tier (real DeepSpeed on CPU)
	$(PYTEST) -m training tests/training

test-e2e: setup testbins ## End-to-end tier
	$(PYTEST) -m e2e tests/e2e

test-nodes: setup testbins ## Real-node tier (kubelets + containerd + CoreDNS in a netns; needs root)
	$(PYTEST) -m nodes tests/nodes

test-image: setup image ## Image tier (the built images run under a real OCI runtime)
	$(PYTEST) -m image tests/image

generate: setup ## Regenerate the CRD, JSON schema and spec reference from the models
	$(TIMED) generate $(PY) hack/generate.py

check-generated: generate ## Fail when generated files differ from the committed ones
	@git diff --exit-code -- manifests helm docs/reference docs/failure-handling.md 2>/dev/null || \
	  (echo "generated files drifted from the models: run 'make generate' and commit" >&2; exit 1)

lint: setup ## ruff, mypy and the import-linter layer contracts
	$(TIMED) lint-ruff $(PY) -m ruff check src tests bench hack
	$(PY) -m ruff format --check src tests bench hack
	$(TIMED) lint-mypy $(PY) -m mypy
	$(TIMED) lint-imports $(FTJOBS_VENV)/bin/lint-imports

fmt: setup ## Format the code
	$(PY) -m ruff format src tests bench hack
	$(PY) -m ruff check --fix src tests bench hack

bench: setup ## Run the benchmarks (see docs/benchmarks.md)
	@bash bench/run-all.sh

testbins: ## Build (or reuse) the control plane, kwok, S3 server, helm and real-node binaries
	@$(TIMED) node-packages bash hack/install-node-packages.sh
	@$(TIMED) testbins bash hack/build-testbins.sh

image: ## Build (or reuse) the trainer and controller images from the Dockerfile (docs/release.md)
	@$(TIMED) image bash hack/build-images.sh --print

mlflow: ## Install (or reuse) the MLflow tracking server's own venv the tests start
	@$(TIMED) mlflow-venv bash hack/setup-mlflow.sh

REAL_NODES ?= 0
cluster-up: setup testbins ## Start the local control plane + S3 server on 127.0.0.1 (REAL_NODES=2: + real kubelets)
	$(PY) hack/cluster.py up --real-nodes $(REAL_NODES)

cluster-down: ## Stop the local control plane + S3 server
	$(PY) hack/cluster.py down

clean: ## Remove local build and test outputs
	rm -rf build dist out .pytest_cache .mypy_cache .ruff_cache
