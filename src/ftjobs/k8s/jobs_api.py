"""The Kubernetes calls of the user side (SDK and CLI): connect like kubectl, read/write
FineTuneJobs, their events, pods and logs, and the few cluster facts preflight needs.

It builds on the adapter's `Kube` (plain dicts, classified errors) and adds what the
controller never needs: kubeconfig contexts and their default namespace, field-selected
lists, streamed pod logs, nodes and Secrets (existence and key names only).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config

from ftjobs.api.constants import (
    ANNOTATION_CANCEL,
    API_VERSION,
    COMPLETION_INDEX_ANNOTATION,
    KIND,
    LABEL_ATTEMPT,
    LABEL_JOB,
    PLURAL,
)
from ftjobs.k8s.client import Kube, resource_path
from ftjobs.k8s.errors import KubeError, KubeNotFound, classify_status, connection_error

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


NO_KUBECONFIG = (
    "no kubeconfig found (looked at --kubeconfig, $KUBECONFIG and ~/.kube/config): pass "
    "--kubeconfig FILE or set KUBECONFIG=FILE (your cloud's `get-credentials` command writes "
    "one), and --context NAME to pick a cluster in it"
)


@dataclass
class Connection:
    """A connected adapter and the namespace kubectl would use for this context."""

    kube: Kube
    namespace: str
    context: str | None


def connect(kubeconfig: str | None = None, context: str | None = None) -> Connection:
    """Connect as kubectl does: --kubeconfig, else $KUBECONFIG (':'-separated files are
    merged), else ~/.kube/config, else the pod's service account; --context picks a context
    and the context's namespace is the default one."""
    cfg = client.Configuration()
    env_paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    have_file = bool(kubeconfig) or any(Path(p).expanduser().exists() for p in env_paths)
    have_file = have_file or Path("~/.kube/config").expanduser().exists()
    if not have_file and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        namespace = _in_cluster_namespace()
        return Connection(Kube(client.ApiClient(cfg)), namespace, None)
    if not have_file:
        raise KubeError(0, "NoKubeconfig", NO_KUBECONFIG)
    # One $KUBECONFIG file is passed explicitly (the client reads the variable only once,
    # at import); None lets it merge several ':'-separated files or read ~/.kube/config.
    kubeconfig = kubeconfig or (env_paths[0] if len(env_paths) == 1 else None)
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        names = [str(c.get("name")) for c in contexts or []]
        if context and context not in names:
            raise KubeError(
                0,
                "NoContext",
                f"context {context!r} is not in the kubeconfig ({', '.join(names) or 'none'}); "
                "see `kubectl config get-contexts`",
            )
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=cfg
        )
    except KubeError:
        raise
    except Exception as exc:  # the client's parsers raise YAML, config, OS and type errors
        source = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise KubeError(
            0,
            "BadKubeconfig",
            f"cannot use the kubeconfig {source}: {first}. Check it with `kubectl config view`, "
            "or pass another with --kubeconfig FILE / KUBECONFIG",
        ) from None
    chosen = next((c for c in contexts if c.get("name") == context), active) if context else active
    namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    return Connection(Kube(client.ApiClient(cfg)), namespace, (chosen or {}).get("name"))


def _in_cluster_namespace() -> str:
    try:
        return IN_CLUSTER_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


# --- FineTuneJobs ------------------------------------------------------------------------


def create_job(kube: Kube, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """POST a FineTuneJob; AlreadyExists and the API server's validation errors propagate."""
    return kube.create(manifest, namespace=namespace)


def get_job(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    return kube.get_finetunejob(namespace, name)


def list_jobs(kube: Kube, namespace: str | None, selector: str = "") -> list[dict[str, Any]]:
    """FineTuneJobs of a namespace (None: all namespaces)."""
    return kube.list(API_VERSION, KIND, namespace, selector)


def request_cancel(kube: Kube, namespace: str, name: str, when: str) -> dict[str, Any]:
    return kube.patch_finetunejob_annotations(namespace, name, {ANNOTATION_CANCEL: when})


def job_events(kube: Kube, namespace: str, name: str) -> list[dict[str, Any]]:
    """core/v1 Events about the FineTuneJob, oldest first."""
    selector = f"involvedObject.kind={KIND},involvedObject.name={name}"
    doc = kube.request(
        "GET", resource_path("v1", "Event", namespace), query={"fieldSelector": selector}
    )
    items: list[dict[str, Any]] = doc.get("items", [])
    return sorted(items, key=_event_time)


def _event_time(event: dict[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("metadata", {}).get("creationTimestamp")
        or ""
    )


# --- pods and logs -----------------------------------------------------------------------


def attempt_pods(
    kube: Kube, namespace: str, name: str, attempt: int | None = None
) -> list[dict[str, Any]]:
    """Pods of the FineTuneJob (of one attempt when given), sorted by rank."""
    selector = f"{LABEL_JOB}={name}"
    if attempt is not None:
        selector += f",{LABEL_ATTEMPT}={attempt}"
    pods = kube.list("v1", "Pod", namespace, selector)
    return sorted(pods, key=lambda p: (pod_attempt(p), pod_rank(p) or 0))


def pod_rank(pod: dict[str, Any]) -> int | None:
    value = (pod.get("metadata", {}).get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION)
    return int(value) if value is not None and str(value).isdigit() else None


def pod_attempt(pod: dict[str, Any]) -> int:
    value = (pod.get("metadata", {}).get("labels") or {}).get(LABEL_ATTEMPT, "0")
    return int(value) if str(value).isdigit() else 0


def stream_log(
    kube: Kube,
    namespace: str,
    pod: str,
    *,
    follow: bool = False,
    tail_lines: int | None = None,
    container: str | None = None,
) -> Iterator[str]:
    """Lines of a pod's log; with `follow`, until the container ends (or the caller stops)."""
    query: dict[str, str] = {}
    if follow:
        query["follow"] = "true"
    if tail_lines is not None:
        query["tailLines"] = str(tail_lines)
    if container:
        query["container"] = container
    path = resource_path("v1", "Pod", namespace, pod, "log")
    try:
        req = kube.api.param_serialize(
            "GET",
            path,
            query_params=list(query.items()),
            header_params={"Accept": "*/*"},
            auth_settings=["BearerToken"],
        )
        # No read timeout when following: a quiet trainer is not a dead connection.
        timeout = None if follow else kube.timeout
        resp = kube.api.call_api(*req, _request_timeout=timeout)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise connection_error(exc, kube.api.configuration.host) from exc
    except client.ApiException as exc:
        raise classify_status(exc.status or 0, exc.body, exc.headers) from exc
    raw = resp.response  # the urllib3 response, unread
    if not 200 <= resp.status <= 299:
        raise classify_status(resp.status, raw.read(), resp.headers)
    pending = b""
    try:
        for chunk in raw.stream(4096, decode_content=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line.decode("utf-8", errors="replace")
        if pending:
            yield pending.decode("utf-8", errors="replace")
    finally:
        raw.release_conn()


# --- what preflight reads ----------------------------------------------------------------


@dataclass(frozen=True)
class NodeGpus:
    name: str
    labels: dict[str, str]
    taints: list[dict[str, Any]]
    gpus: int
    unschedulable: bool


def gpu_nodes(kube: Kube, resource: str = "nvidia.com/gpu") -> list[NodeGpus]:
    """Every node with its allocatable count of `resource` (0 when it has none)."""
    nodes = kube.request("GET", "/api/v1/nodes").get("items", [])
    out = []
    for node in nodes:
        alloc = (node.get("status") or {}).get("allocatable") or {}
        try:
            gpus = int(str(alloc.get(resource, "0")))
        except ValueError:
            gpus = 0
        spec = node.get("spec") or {}
        out.append(
            NodeGpus(
                name=node["metadata"]["name"],
                labels=node["metadata"].get("labels") or {},
                taints=spec.get("taints") or [],
                gpus=gpus,
                unschedulable=bool(spec.get("unschedulable")),
            )
        )
    return out


def secret_keys(kube: Kube, namespace: str, name: str) -> list[str] | None:
    """The key names of a Secret (None if it does not exist). Values are never returned."""
    try:
        secret = kube.get("v1", "Secret", namespace, name)
    except KubeNotFound:
        return None
    return sorted({*(secret.get("data") or {}), *(secret.get("stringData") or {})})


def secret_values(kube: Kube, namespace: str, name: str, keys: list[str]) -> dict[str, str]:
    """Decoded values of `keys` (for preflight's storage check only; never printed)."""
    data = kube.get("v1", "Secret", namespace, name).get("data") or {}
    return {k: base64.b64decode(data[k]).decode() for k in keys if k in data}


__all__ = [
    "ANNOTATION_CANCEL",
    "PLURAL",
    "Connection",
    "NodeGpus",
    "attempt_pods",
    "connect",
    "create_job",
    "get_job",
    "gpu_nodes",
    "job_events",
    "list_jobs",
    "pod_attempt",
    "pod_rank",
    "request_cancel",
    "secret_keys",
    "secret_values",
    "stream_log",
]
