"""`ftjobs run`: the trainer on this machine, the same command a pod runs.

The spec becomes a TrainerConfig (namespace "local"), and M launcher processes stand in
for M nodes on 127.0.0.1 (`python -m ftjobs.trainer.launch`, torchrun's flags, one per
simulated node, each starting N workers). Each node gets its own scratch directory, as
pods do. Progress is read back from the job's `progress.jsonl`, the result from
`summary.json`: the local runner uses exactly the interfaces a cluster run has.

No torch here (the SDK stays light): the trainer runs in child processes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ftjobs.api.constants import EXIT_SUCCESS, SCRATCH_SIZE_ENV
from ftjobs.api.exit_codes import combined_exit_code
from ftjobs.api.job import FineTuneJob
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.api.trainer_config import TrainerConfig
from ftjobs.api.validation import FieldError, SpecError, field_errors
from ftjobs.render.hub import uses_hub
from ftjobs.sdk.local_parent import resolve_local_parent
from ftjobs.storage import ObjectNotFound, open_store, read_jsonl

LOCAL_NAMESPACE = "local"


@dataclass
class LocalResult:
    """What a local run produced."""

    exit_code: int
    output_uri: str
    wall_s: float
    summary: dict[str, Any] | None = None
    message: str = ""
    logs: list[Path] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def output_root(job: FineTuneJob, output: str | None) -> str:
    """`--output DIR` as an absolute file:// URI, else the spec's storage.output."""
    if output is None:
        return job.spec.storage.output
    if "://" in output:
        return output
    return "file://" + str(Path(output).expanduser().resolve())


def local_config(
    job: FineTuneJob,
    *,
    nproc: int,
    nnodes: int,
    output: str | None = None,
    gpus: int = 0,
    precision: str | None = None,
) -> TrainerConfig:
    """The trainer's input for a local run of `nnodes` x `nproc` CPU processes, or of
    `nnodes` x `gpus` GPU processes (one per GPU, as in a pod) when `gpus` > 0.

    The spec's resources are replaced by the local layout and the spec is validated
    again, so a global batch that does not divide over the local processes is reported
    with the same message as in a cluster. `precision` overrides deepspeed.precision.
    """
    doc = job.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    resources = {**doc.get("resources", {}), "nodes": nnodes, "gpusPerNode": gpus}
    resources.pop("processesPerNode", None)
    if gpus == 0:
        resources["processesPerNode"] = nproc
    doc["resources"] = resources
    if precision is not None:
        doc.setdefault("deepspeed", {})["precision"] = precision
    doc["storage"]["output"] = output_root(job, output)
    try:
        spec = FineTuneJobSpec.model_validate(doc)
    except ValidationError as exc:
        layout = (
            f"local run: {gpus} GPU process(es) (--gpus)"
            if gpus
            else f"local run: {nnodes} node(s) x {nproc} process(es) (--nnodes-sim, --nproc)"
        )
        errors = [
            FieldError(f"spec.{e.path}", f"{e.message} [{layout}]") for e in field_errors(exc)
        ]
        raise SpecError(errors) from None
    spec, parent = resolve_local_parent(spec, LOCAL_NAMESPACE)
    return TrainerConfig.for_job(
        spec, name=job.metadata.name or "finetune", namespace=LOCAL_NAMESPACE, parent=parent
    )


def trainer_args(config_path: Path) -> list[str]:
    """The launcher's worker command for the trainer reading `config_path`."""
    return ["-m", "ftjobs.trainer", "--config", str(config_path)]


def launcher_argv(
    command: list[str], *, nnodes: int, node_rank: int, nproc: int, port: int
) -> list[str]:
    """One simulated node: `python -m ftjobs.trainer.launch` (torchrun's flags) on 127.0.0.1.

    `command` is what each of the `nproc` workers runs, e.g. `trainer_args(config)`.
    """
    return [
        sys.executable,
        "-m",
        "ftjobs.trainer.launch",
        f"--nnodes={nnodes}",
        f"--node-rank={node_rank}",
        f"--nproc-per-node={nproc}",
        "--master-addr=127.0.0.1",
        f"--master-port={port}",
        *command,
    ]


def trainer_env(
    node_dir: Path,
    threads: int,
    *,
    hub: bool = False,
    hub_endpoint: str | None = None,
    gpus: int = 0,
    scratch_size: str | None = None,
) -> dict[str, str]:
    """The environment of one simulated node; the Hub is reachable only if the job uses it.

    With `hub`, offline switches set in this shell are dropped; HF_TOKEN (or a
    `hf auth login` token) comes from this shell, HF_ENDPOINT from spec.hub.endpoint
    or else this shell. DeepSpeed's accelerator is cuda (NCCL) with `gpus`, else cpu (gloo).
    """
    env = dict(os.environ)
    offline = {"HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"}
    if hub:
        for name in offline:
            env.pop(name, None)
        if hub_endpoint:
            env["HF_ENDPOINT"] = hub_endpoint
    else:
        env.update(dict.fromkeys(offline, "1"))
    env.update(
        DS_ACCELERATOR="cuda" if gpus else "cpu",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS=str(threads),
        FTJOBS_SCRATCH=str(node_dir / "scratch"),
        FTJOBS_TERMINATION_LOG=str(node_dir / "termination-log"),
        PYTHONUNBUFFERED="1",
    )
    if scratch_size:  # spec.resources.scratchSize, as the pod's emptyDir sizeLimit
        env[SCRATCH_SIZE_ENV] = scratch_size
    return env


def _threads(processes: int) -> int:
    """torch threads per process: OMP_NUM_THREADS when the caller set it (e.g. 1 on a
    busy shared machine, where spinning threads wait on each other), else cores/processes."""
    wanted = os.environ.get("OMP_NUM_THREADS", "")
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    return max(1, (os.cpu_count() or 1) // processes)


def run_local(
    config: TrainerConfig,
    *,
    nproc: int = 1,
    nnodes: int = 1,
    gpus: int = 0,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    poll_s: float = 0.5,
    keep_workdir: bool = False,
) -> LocalResult:
    """Run `config` on `nnodes` simulated nodes of `nproc` processes (with `gpus` > 0: one
    node, one process per GPU); wait for the end.

    `on_progress` gets each new progress.jsonl record (dicts, camelCase) as it appears.
    Logs and the termination message stay in a temporary directory when the run fails.
    """
    started = time.monotonic()
    nproc = gpus or nproc
    workdir = Path(tempfile.mkdtemp(prefix="ftjobs-run-"))
    # Records of an earlier run into the same output (this run resumes it) are not news.
    seen = len(_progress(config))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        logs = _start_nodes(config, workdir, procs, nproc=nproc, nnodes=nnodes, gpus=gpus)
        _follow(config, procs, seen, on_progress, poll_s)
    except BaseException:
        _stop(procs)
        raise
    code = combined_exit_code([p.returncode for p in procs])
    result = LocalResult(
        exit_code=code,
        output_uri=config.output_uri,
        wall_s=time.monotonic() - started,
        summary=_summary(config) if code == EXIT_SUCCESS else None,
        message=_termination_message(workdir, nnodes),
        logs=logs,
    )
    if code == EXIT_SUCCESS and not keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
        result.logs = []
    return result


def _start_nodes(
    config: TrainerConfig,
    workdir: Path,
    procs: list[subprocess.Popen[bytes]],
    *,
    nproc: int,
    nnodes: int,
    gpus: int,
) -> list[Path]:
    """Start one launcher per simulated node (appended to `procs` as they start, so a
    failure half-way stops the started ones); the nodes' log files."""
    config_path = workdir / "job.json"
    config_path.write_text(config.model_dump_json(by_alias=True))
    threads = _threads(nproc * nnodes)
    port = free_port()
    logs: list[Path] = []
    for node in range(nnodes):
        node_dir = workdir / f"node-{node}"
        node_dir.mkdir()
        log_path = node_dir / "trainer.log"
        logs.append(log_path)
        argv = launcher_argv(
            trainer_args(config_path), nnodes=nnodes, node_rank=node, nproc=nproc, port=port
        )
        env = trainer_env(
            node_dir,
            threads,
            hub=uses_hub(config.spec),
            hub_endpoint=config.spec.hub.endpoint,
            gpus=gpus,
            scratch_size=config.spec.resources.scratch_size,
        )
        with log_path.open("wb") as log_file:
            procs.append(subprocess.Popen(argv, env=env, stdout=log_file, stderr=subprocess.STDOUT))
    return logs


def _follow(
    config: TrainerConfig,
    procs: list[subprocess.Popen[bytes]],
    seen: int,
    on_progress: Callable[[dict[str, Any]], None] | None,
    poll_s: float,
) -> None:
    """Hand new progress records to `on_progress` until every node has exited."""
    while True:
        done = all(p.poll() is not None for p in procs)
        records = _progress(config)
        if on_progress is not None:
            for record in records[seen:]:
                on_progress(record)
        seen = max(seen, len(records))
        if done:
            return
        time.sleep(poll_s)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Interrupted (Ctrl-C): SIGTERM, on which the trainer checkpoints and exits retriable."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        p.wait()


def _termination_message(workdir: Path, nnodes: int) -> str:
    """The first node's termination log that says something (the pod's message)."""
    for node in range(nnodes):
        term = workdir / f"node-{node}" / "termination-log"
        if term.exists() and (text := term.read_text().strip()):
            return text
    return ""


def _store(config: TrainerConfig) -> Any:
    return open_store(config.output_uri, storage=config.spec.storage)


def _progress(config: TrainerConfig) -> list[dict[str, Any]]:
    try:
        return read_jsonl(_store(config), "progress.jsonl")
    except (ValueError, OSError):  # a half-written local file: next poll
        return []


def _summary(config: TrainerConfig) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads(_store(config).get_bytes("summary.json"))
        return doc
    except ObjectNotFound:
        return None
