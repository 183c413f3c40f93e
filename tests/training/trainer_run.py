"""Helpers of the trainer tests: a TrainerConfig for a tiny job, and 2 "nodes" on 127.0.0.1.

Each simulated node is a real `python -m ftjobs.trainer.launch` process (torchrun's
flags) with its own scratch directory, as pods have; signals are real signals.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.api.trainer_config import TrainerConfig
from ftjobs.sdk.local import free_port, launcher_argv, trainer_args

REPO = Path(__file__).resolve().parents[2]


def prepare_demo_module() -> Any:
    """hack/prepare_demo.py as a module (the demo data's downloads, parsers and writers)."""
    spec = importlib.util.spec_from_file_location("prepare_demo", REPO / "hack" / "prepare_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["prepare_demo"] = module
    spec.loader.exec_module(module)
    return module


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def classification_spec(
    model_dir: Path, train: Path, output: Path, **overrides: Any
) -> dict[str, Any]:
    """A tiny sequence-classification job (camelCase dict) that learns in a few dozen steps."""
    spec: dict[str, Any] = {
        "task": "sequence-classification",
        "model": {"uri": f"file://{model_dir}"},
        "dataset": {
            "train": f"file://{train}",
            "split": {"validationRatio": 0.1, "testRatio": 0.2},
        },
        "hyperparameters": {
            "learningRate": 2e-2,
            "maxSteps": 40,
            "globalBatchSize": 8,
            "microBatchSize": 2,
            "maxSeqLength": 32,
            "warmupSteps": 2,
        },
        "deepspeed": {"zeroStage": 2},
        "resources": {"nodes": 2},
        "storage": {"output": f"file://{output}"},
        "checkpointing": {"everySteps": 5, "keep": 2},
    }
    return deep_merge(spec, overrides)


def write_config(path: Path, spec: dict[str, Any], *, name: str = "tiny") -> TrainerConfig:
    config = TrainerConfig.for_job(FineTuneJobSpec.model_validate(spec), name=name, namespace="t")
    path.write_text(config.model_dump_json(by_alias=True))
    return config


@dataclass
class Nodes:
    """The launcher processes of one run, their logs and termination logs."""

    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]
    termination_logs: list[Path]
    config: Path

    def wait(self, timeout: float = 600) -> list[int]:
        deadline = time.monotonic() + timeout
        for p in self.procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
        return [p.returncode for p in self.procs]

    def signal_nodes(self, sig: signal.Signals) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(sig)

    def worker_pid(self, rank: int) -> int:
        """The pid of the trainer worker with RANK=rank (a child of a launcher)."""
        for pid_dir in Path("/proc").iterdir():
            if not pid_dir.name.isdigit():
                continue
            try:
                cmdline = (pid_dir / "cmdline").read_bytes().split(b"\0")
                if str(self.config).encode() not in cmdline or b"ftjobs.trainer" not in cmdline:
                    continue
                if b"ftjobs.trainer.launch" in cmdline:
                    continue
                env = (pid_dir / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"RANK={rank}".encode() in env:
                return int(pid_dir.name)
        raise LookupError(f"no worker with RANK={rank} for {self.config}")

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())


def launch(
    config: Path,
    workdir: Path,
    *,
    nnodes: int = 2,
    nproc: int = 1,
    env: dict[str, str] | None = None,
) -> Nodes:
    """Start `nnodes` launcher processes of `nproc` workers each for `config` (extra `env`)."""
    port = free_port()
    procs, logs, terms = [], [], []
    for node in range(nnodes):
        node_dir = workdir / f"node-{node}"
        node_dir.mkdir(parents=True, exist_ok=True)
        node_env = dict(os.environ, **(env or {}))
        node_env.update(
            DS_ACCELERATOR="cpu",
            HF_HUB_OFFLINE="1",
            HF_DATASETS_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            OMP_NUM_THREADS="1",
            FTJOBS_SCRATCH=str(node_dir / "scratch"),
            FTJOBS_TERMINATION_LOG=str(node_dir / "termination-log"),
            PYTHONPATH=str(REPO / "src"),
        )
        log = node_dir / f"trainer-{int(time.time() * 1000)}.log"
        with log.open("wb") as f:
            procs.append(
                subprocess.Popen(
                    launcher_argv(
                        trainer_args(config), nnodes=nnodes, node_rank=node, nproc=nproc, port=port
                    ),
                    env=node_env,
                    stdout=f,
                    stderr=subprocess.STDOUT,
                )
            )
        logs.append(log)
        terms.append(node_dir / "termination-log")
    return Nodes(procs, logs, terms, config)


def run(config: Path, workdir: Path, **kwargs: Any) -> tuple[list[int], Nodes]:
    nodes = launch(config, workdir, **kwargs)
    return nodes.wait(), nodes


def progress(job_dir: Path) -> list[dict[str, Any]]:
    path = job_dir / "progress.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(predicate: Callable[[], bool], *, timeout: float, nodes: Nodes | None = None) -> None:
    """Poll `predicate`; fail with the trainer's output on timeout or an early exit."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if nodes is not None and all(p.poll() is not None for p in nodes.procs):
            raise AssertionError(f"trainer exited before the condition:\n{nodes.output()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out" + (f":\n{nodes.output()[-3000:]}" if nodes else ""))
        time.sleep(0.05)
