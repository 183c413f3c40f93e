"""Assembling the children of a FineTuneJob (docs/architecture.md).

The trainer's identity (`render_rbac`): the namespace's shared ServiceAccount, Role and
RoleBinding (render/identity.py), or a per-job Role for a job with its own account.
Per attempt: a headless Service for the rendezvous, a NetworkPolicy, and an Indexed Job
with one pod per node that carries the resolved config in a pod-template annotation
(render.config, mounted by a downwardAPI volume) (`render_attempt`).
`render_job` is both, in creation order (what a pod needs exists before the Job).
"""

from typing import Any

from ftjobs.api.constants import (
    LABEL_KUEUE_PRIORITY,
    LABEL_KUEUE_QUEUE,
    MASTER_PORT,
    SCRATCH_DIR,
    TERMINATION_LOG,
    TRAINER_IDENTITY,
)
from ftjobs.api.job import FineTuneJob
from ftjobs.api.parent import ParentJob
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.api.trainer_config import TrainerConfig
from ftjobs.render import (
    config,
    failure,
    hub,
    launch,
    rbac,
    scheduling,
    security,
    storage,
    volumes,
)
from ftjobs.render.identity import namespace_identity, uses_shared_identity
from ftjobs.render.meta import ChildNames, child_names, object_meta, selector_labels
from ftjobs.render.network import network_policy
from ftjobs.render.settings import RenderSettings

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
PORT_NAME = "rendezvous"


def _service(meta: dict[str, Any], *, name: str, attempt: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            # Headless: DNS answers with pod addresses, one record per pod host name.
            "clusterIP": "None",
            # Ranks resolve pod 0 while it starts, before any readiness (there is no probe).
            "publishNotReadyAddresses": True,
            "selector": selector_labels(name, attempt),
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": MASTER_PORT,
                    "targetPort": MASTER_PORT,
                    "protocol": "TCP",
                }
            ],
        },
    }


def _container(
    spec: FineTuneJobSpec,
    *,
    names: ChildNames,
    namespace: str,
    settings: RenderSettings,
) -> dict[str, Any]:
    return {
        "name": failure.CONTAINER,
        "image": spec.resources.image or settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": launch.command(
            spec,
            job_name=names.job,
            service=names.service,
            namespace=namespace,
            settings=settings,
        ),
        "env": [
            *launch.identity_env(),
            *launch.runtime_env(spec, scratch_dir=SCRATCH_DIR, settings=settings),
            *storage.storage_env(spec, settings),
            *hub.hub_env(spec),
            *storage.tracking_env(spec),
        ],
        "ports": [{"name": PORT_NAME, "containerPort": MASTER_PORT, "protocol": "TCP"}],
        "resources": scheduling.resources(spec, settings),
        "volumeMounts": volumes.volume_mounts(spec),
        "securityContext": security.container_security_context(settings),
        # The trainer writes its failure reason here; the controller puts it in events.
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _pod_template(
    resolved: TrainerConfig,
    *,
    name: str,
    attempt: int,
    names: ChildNames,
    namespace: str,
    settings: RenderSettings,
) -> dict[str, Any]:
    spec = resolved.spec
    meta = object_meta(names.job, namespace=namespace, name=name, uid="", attempt=attempt)
    pod_meta = {
        "labels": meta["labels"],
        "annotations": {
            DEFAULT_CONTAINER_ANNOTATION: failure.CONTAINER,
            **config.config_annotation(resolved),
        },
    }
    pod_spec: dict[str, Any] = {
        # With the Service of the same name, pod i gets the DNS name <job>-<i>.<service>.
        "subdomain": names.service,
        "restartPolicy": "Never",
        "serviceAccountName": trainer_service_account(spec, names),
        # Rank 0 patches the FineTuneJob status with this token.
        "automountServiceAccountToken": True,
        # No <SERVICE>_PORT variables from every Service in the namespace in the env.
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "securityContext": security.pod_security_context(settings),
        **scheduling.pod_scheduling(spec, settings),
        "containers": [_container(spec, names=names, namespace=namespace, settings=settings)],
        "volumes": volumes.volumes(spec, settings=settings),
    }
    pull = list(dict.fromkeys([*settings.image_pull_secrets, *(spec.image_pull_secrets or [])]))
    if pull:
        pod_spec["imagePullSecrets"] = [{"name": secret} for secret in pull]
    return {"metadata": pod_meta, "spec": pod_spec}


def _job(
    meta: dict[str, Any],
    resolved: TrainerConfig,
    *,
    name: str,
    attempt: int,
    names: ChildNames,
    namespace: str,
    settings: RenderSettings,
) -> dict[str, Any]:
    spec = resolved.spec
    nodes = spec.resources.nodes
    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": nodes,
        "parallelism": nodes,
        # The controller restarts the whole gang as a new attempt; see failure.py.
        "backoffLimit": 0,
        "podFailurePolicy": failure.pod_failure_policy(),
        # Kueue admits a queued Job by unsuspending it; a suspended spec starts suspended.
        "suspend": bool(spec.suspend or spec.queue_name),
        "template": _pod_template(
            resolved,
            name=name,
            attempt=attempt,
            names=names,
            namespace=namespace,
            settings=settings,
        ),
    }
    if spec.active_deadline_seconds is not None:
        # Per attempt: the Job's clock starts when it (re)starts running.
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    # No ttlSecondsAfterFinished: the controller observes finished Jobs to decide the next
    # attempt, so it deletes children itself when spec.ttlSecondsAfterFinished elapses.
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec}


def render_rbac(
    job: FineTuneJob,
    *,
    namespace: str,
    name: str,
    uid: str,
) -> list[dict[str, Any]]:
    """The trainer's identity: the namespace's shared one (render/identity.py) by default;
    with spec.serviceAccount, a per-job Role bound to the user's account (`name`) or to a
    per-job ServiceAccount carrying the given annotations (a cloud identity per job)."""
    if uses_shared_identity(job.spec):
        return namespace_identity(namespace)
    names = child_names(name, 1)

    def meta(object_name: str) -> dict[str, Any]:
        return object_meta(object_name, namespace=namespace, name=name, uid=uid)

    own = job.spec.service_account
    account: list[dict[str, Any]] = []
    if own is not None and own.name is None:
        sa_meta = meta(names.service_account)
        sa_meta["annotations"] = {**sa_meta.get("annotations", {}), **(own.annotations or {})}
        account = [rbac.service_account(sa_meta)]
    return [
        *account,
        rbac.role(meta(names.role), name=name),
        rbac.role_binding(
            meta(names.role_binding),
            role_name=names.role,
            service_account_name=trainer_service_account(job.spec, names),
            namespace=namespace,
        ),
    ]


def trainer_service_account(spec: FineTuneJobSpec, names: ChildNames) -> str:
    """spec.serviceAccount.name (the user's own), the per-job one with
    spec.serviceAccount.annotations, else the namespace's shared trainer identity."""
    own = spec.service_account
    if own is not None and own.name:
        return own.name
    return TRAINER_IDENTITY if uses_shared_identity(spec) else names.service_account


def attempt_network(*, namespace: str, name: str, uid: str, attempt: int) -> list[dict[str, Any]]:
    """The attempt's headless Service (pod DNS names) and NetworkPolicy: what its Job needs
    beside it, the same whatever the spec (the controller re-creates them on its own when a
    crash left the Job without them)."""
    names = child_names(name, attempt)

    def meta(object_name: str) -> dict[str, Any]:
        return object_meta(object_name, namespace=namespace, name=name, uid=uid, attempt=attempt)

    return [
        _service(meta(names.service), name=name, attempt=attempt),
        network_policy(meta(names.network_policy), name=name, attempt=attempt),
    ]


def render_attempt(
    job: FineTuneJob,
    *,
    namespace: str,
    name: str,
    uid: str,
    attempt: int,
    resume: bool,
    settings: RenderSettings = RenderSettings(),
    parent: ParentJob | None = None,
) -> list[dict[str, Any]]:
    """Headless Service, NetworkPolicy and Indexed Job (with the config) of attempt `attempt`.

    `parent`: model.fromJob resolved by the controller (required when the spec has it)."""
    spec = job.spec
    names = child_names(name, attempt)

    def meta(object_name: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
        return object_meta(
            object_name,
            namespace=namespace,
            name=name,
            uid=uid,
            attempt=attempt,
            extra_labels=extra,
        )

    if spec.model.from_job is not None and parent is None:
        raise ValueError("model.fromJob must be resolved before rendering (pass parent)")
    resolved = config.trainer_config(
        spec,
        name=name,
        namespace=namespace,
        uid=uid,
        attempt=attempt,
        resume=resume,
        parent=parent,
    )
    spec = resolved.spec
    # The queue label goes on the Job only: Kueue's Job integration reads it there, and on
    # the pods it would make Kueue's pod integration treat them as workloads of their own.
    queue = {LABEL_KUEUE_QUEUE: spec.queue_name} if spec.queue_name else None
    if queue is not None and spec.queue_priority_class:
        queue[LABEL_KUEUE_PRIORITY] = spec.queue_priority_class
    return [
        *attempt_network(namespace=namespace, name=name, uid=uid, attempt=attempt),
        _job(
            meta(names.job, queue),
            resolved,
            name=name,
            attempt=attempt,
            names=names,
            namespace=namespace,
            settings=settings,
        ),
    ]


def render_job(
    job: FineTuneJob,
    *,
    namespace: str,
    name: str,
    uid: str,
    attempt: int,
    resume: bool,
    settings: RenderSettings = RenderSettings(),
    parent: ParentJob | None = None,
) -> list[dict[str, Any]]:
    """Every child of `attempt`: the trainer's RBAC, then Service, NetworkPolicy and Job."""
    return [
        *render_rbac(job, namespace=namespace, name=name, uid=uid),
        *render_attempt(
            job,
            namespace=namespace,
            name=name,
            uid=uid,
            attempt=attempt,
            resume=resume,
            settings=settings,
            parent=parent,
        ),
    ]
