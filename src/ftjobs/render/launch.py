"""The trainer's command line (torchrun) and the environment that identifies the pod.

One command shape for every job, single- or multi-node: torchrun's static rendezvous
with pod 0 of the attempt's headless Service as master. Pod `i` of an Indexed Job is
`<job>-<i>.<service>`, so the master address is known before any pod exists, and each
pod's node rank is its completion index. A single node reaches itself the same way
(the Service publishes not-ready addresses), so there is no `--standalone` special case
whose behaviour would differ from what multi-node jobs run.

The command is exec form with Kubernetes `$(VAR)` expansion rather than `sh -c`:
torchrun is PID 1 and receives SIGTERM itself (it forwards it to the workers, which
checkpoint and exit EXIT_RETRIABLE); a shell would swallow the signal unless it traps
and forwards it, and the image would need a shell at all.

Exit codes: stock torchrun exits 1 when any worker fails, whatever the worker's code,
so the Job's podFailurePolicy (failure.py) and the controller see EXIT_RETRIABLE and
EXIT_PERMANENT only if the launcher propagates the worker's code. `RenderSettings.launcher`
names the program; it takes torchrun's arguments so a propagating wrapper is a drop-in.
"""

from typing import Any

from ftjobs.api.constants import CONFIG_FILE_NAME, CONFIG_MOUNT_DIR, LABEL_JOB, MASTER_PORT
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.render.settings import RenderSettings

# Set by the Job controller on Indexed Jobs too; declared here so the `$(...)` expansion in
# the command visibly refers to a variable of the container (the Job controller then
# leaves an existing definition alone).
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
TRAINER_MODULE = "ftjobs.trainer"
CONFIG_PATH = f"{CONFIG_MOUNT_DIR}/{CONFIG_FILE_NAME}"
SHUTDOWN_MARGIN_SECONDS = 10


def master_address(job_name: str, service: str, namespace: str) -> str:
    """DNS name of pod 0: `<job>-0.<service>.<namespace>.svc` (cluster domain via search)."""
    return f"{job_name}-0.{service}.{namespace}.svc"


def command(
    spec: FineTuneJobSpec,
    *,
    job_name: str,
    service: str,
    namespace: str,
    settings: RenderSettings,
) -> list[str]:
    """torchrun over `python -m ftjobs.trainer --config <mounted job.json>`."""
    res = spec.resources
    return [
        *settings.launcher,
        f"--nnodes={res.nodes}",
        f"--nproc-per-node={res.procs_per_node}",
        f"--node-rank=$({COMPLETION_INDEX_ENV})",
        f"--master-addr={master_address(job_name, service, namespace)}",
        f"--master-port={MASTER_PORT}",
        f"--rdzv-conf=timeout={settings.rendezvous_timeout_seconds}",
        # Restarts are whole-gang and resume from a checkpoint: the controller owns them.
        "--max-restarts=0",
        "--module",
        TRAINER_MODULE,
        "--config",
        CONFIG_PATH,
    ]


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
    ]


def shutdown_timeout(settings: RenderSettings) -> int:
    """Seconds torchrun gives workers between its SIGTERM and SIGKILL.

    torchrun's default is 30 s, whatever the pod's grace period; a ZeRO-3 checkpoint of a
    large model takes longer. Leave torchrun a few seconds of the grace period to exit.
    """
    return max(settings.termination_grace_seconds - SHUTDOWN_MARGIN_SECONDS, 1)


def cpu_cores(quantity: str) -> float | None:
    """Cores of a CPU quantity ("4", "500m", "1.5"); None for forms not worth parsing here."""
    try:
        if quantity.endswith("m"):
            return int(quantity[:-1]) / 1000
        return float(quantity)
    except ValueError:
        return None


def threads_per_process(spec: FineTuneJobSpec) -> int:
    """torchrun sets OMP_NUM_THREADS=1 when unset: CPU training would use one core per rank."""
    cores = cpu_cores(spec.resources.cpu)
    if cores is None:
        return 1
    return max(int(cores // spec.resources.procs_per_node), 1)


def runtime_env(
    spec: FineTuneJobSpec, *, scratch_dir: str, settings: RenderSettings
) -> list[dict[str, Any]]:
    """Process settings: graceful shutdown, and a trainer on a read-only root filesystem."""
    env = [
        # An environment variable rather than --shutdown-timeout: torch releases without
        # the flag would refuse the command line; they ignore the variable.
        {"name": "TORCH_ELASTIC_SHUTDOWN_TIMEOUT", "value": str(shutdown_timeout(settings))},
        {"name": "OMP_NUM_THREADS", "value": str(threads_per_process(spec))},
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
    if not spec.model.uri.startswith("hf://"):
        # Nothing should reach the Hub when the model comes from storage; fail fast instead.
        env.append({"name": "HF_HUB_OFFLINE", "value": "1"})
    return env
