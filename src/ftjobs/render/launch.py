"""The trainer's command line (a torchrun line) and the environment that identifies the pod.

One command shape for every job, single- or multi-node, in torchrun's terms: static
rendezvous with pod 0 of the attempt's headless Service as master. Pod `i` of an Indexed
Job is `<job>-<i>.<service>`, so the master address is known before any pod exists, and
each pod's node rank is its completion index. A single node reaches itself the same way
(the Service publishes not-ready addresses), so there is no `--standalone` special case
whose behaviour would differ from what multi-node jobs run.

The program is `python -m ftjobs.trainer.launch` by default, not stock torchrun: torchrun
exits 1 whenever a worker fails, whatever the worker's code, so the pod could never say
EXIT_RETRIABLE or EXIT_PERMANENT, and it gives workers 30 s after SIGTERM whatever the
grace period. The ftjobs launcher takes torchrun's flags (the ones rendered for both),
keeps the workers' exit codes and forwards SIGTERM. `RenderSettings(launcher=("torchrun",))`
renders stock torchrun, with its own extra flags.

Exec form with Kubernetes `$(VAR)` expansion rather than `sh -c`: the launcher is PID 1
and receives SIGTERM itself (the trainer checkpoints and exits EXIT_RETRIABLE); a shell
would swallow the signal unless it trapped and forwarded it, and needs to exist at all.
"""

from typing import Any

from ftjobs.api.constants import (
    COMPLETION_INDEX_ANNOTATION,
    CONFIG_FILE_NAME,
    CONFIG_MOUNT_DIR,
    LABEL_JOB,
    MASTER_PORT,
    SCRATCH_SIZE_ENV,
)
from ftjobs.api.quantity import parse_quantity
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.render.settings import RenderSettings
from ftjobs.render.volumes import scratch_size

# Set by the Job controller on Indexed Jobs too; declared here so the `$(...)` expansion in
# the command visibly refers to a variable of the container (the Job controller then
# leaves an existing definition alone).
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
TRAINER_MODULE = "ftjobs.trainer"
CONFIG_PATH = f"{CONFIG_MOUNT_DIR}/{CONFIG_FILE_NAME}"
SHUTDOWN_MARGIN_SECONDS = 10


def master_address(job_name: str, service: str, namespace: str) -> str:
    """DNS name of pod 0: `<job>-0.<service>.<namespace>.svc` (cluster domain via search)."""
    return f"{job_name}-0.{service}.{namespace}.svc"


def is_torchrun(settings: RenderSettings) -> bool:
    """Stock torchrun (`torchrun ...` or `python -m torch.distributed.run ...`)?"""
    argv = settings.launcher
    return argv[0].rsplit("/", 1)[-1] == "torchrun" or "torch.distributed.run" in argv


def command(
    spec: FineTuneJobSpec,
    *,
    job_name: str,
    service: str,
    namespace: str,
    settings: RenderSettings,
) -> list[str]:
    """The launcher over `python -m ftjobs.trainer --config <mounted job.json>`."""
    res = spec.resources
    line = [
        *settings.launcher,
        f"--nnodes={res.nodes}",
        f"--nproc-per-node={res.procs_per_node}",
        f"--node-rank=$({COMPLETION_INDEX_ENV})",
        f"--master-addr={master_address(job_name, service, namespace)}",
        f"--master-port={MASTER_PORT}",
    ]
    if is_torchrun(settings):
        line += [
            f"--rdzv-conf=timeout={settings.rendezvous_timeout_seconds}",
            # Restarts are whole-gang and resume from a checkpoint: the controller owns them.
            "--max-restarts=0",
        ]
    # `-m` (not `--module`): the spelling both launchers accept. The rest is the trainer's.
    return [*line, "-m", TRAINER_MODULE, "--config", CONFIG_PATH]


def _field(path: str) -> dict[str, Any]:
    return {"fieldRef": {"fieldPath": path}}


def identity_env() -> list[dict[str, Any]]:
    """Who the pod is: its rank, its FineTuneJob (rank 0 patches its status), its name."""
    return [
        {
            "name": COMPLETION_INDEX_ENV,
            "valueFrom": _field(f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"),
        },
        {"name": "FTJOBS_JOB_NAME", "valueFrom": _field(f"metadata.labels['{LABEL_JOB}']")},
        {"name": "FTJOBS_NAMESPACE", "valueFrom": _field("metadata.namespace")},
        {"name": "POD_NAME", "valueFrom": _field("metadata.name")},
        # Rank 0 publishes progress in the FineTuneJob's status (what the Role allows).
        {"name": "FTJOBS_REPORT_STATUS", "value": "1"},
    ]


def shutdown_timeout(settings: RenderSettings) -> int:
    """Seconds torchrun gives workers between its SIGTERM and SIGKILL.

    torchrun's default is 30 s, whatever the pod's grace period; a ZeRO-3 checkpoint of a
    large model takes longer. Leave torchrun a few seconds of the grace period to exit.
    """
    return max(settings.termination_grace_seconds - SHUTDOWN_MARGIN_SECONDS, 1)


def threads_per_process(spec: FineTuneJobSpec) -> int:
    """The pod's CPUs shared by its processes (torchrun would set OMP_NUM_THREADS=1)."""
    cores = parse_quantity(spec.resources.cpu)
    return max(int(cores // spec.resources.procs_per_node), 1)


def runtime_env(
    spec: FineTuneJobSpec, *, scratch_dir: str, settings: RenderSettings
) -> list[dict[str, Any]]:
    """Process settings: threads, graceful shutdown, a read-only root filesystem."""
    env: list[dict[str, Any]] = [
        {"name": "OMP_NUM_THREADS", "value": str(threads_per_process(spec))},
    ]
    if is_torchrun(settings):
        # An environment variable rather than --shutdown-timeout: torch releases without
        # the flag would refuse the command line; they ignore the variable.
        env.append(
            {"name": "TORCH_ELASTIC_SHUTDOWN_TIMEOUT", "value": str(shutdown_timeout(settings))}
        )
    env += [
        # uid 1000 may have no home directory in the image; caches (torch extensions,
        # triton kernels) go under HOME / XDG_CACHE_HOME.
        {"name": "HOME", "value": "/tmp"},
        {"name": "XDG_CACHE_HOME", "value": "/tmp/.cache"},
        {"name": "TRITON_CACHE_DIR", "value": "/tmp/.cache/triton"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        # Downloaded hf:// models are large: keep them on the scratch volume, not /tmp.
        {"name": "HF_HOME", "value": f"{scratch_dir}/huggingface"},
        {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
    ]
    if size := scratch_size(spec, settings):
        # The trainer's export-space check: statvfs cannot see an emptyDir's sizeLimit.
        env.append({"name": SCRATCH_SIZE_ENV, "value": size})
    return env
