"""The one Kubernetes API adapter: plain dicts in and out over the kubernetes client.

Objects travel as the JSON dicts the API server speaks (what `render` produces), not as
the client's generated model classes: no (slow) deserialisation, and the controller and
the trainer stay independent of the client's object model. Authentication, TLS and the
connection pool are the kubernetes client's (kubeconfig or in-cluster service account).

Writes are conflict-safe: create-or-adopt (AlreadyExists -> read; ours if it carries our
owner reference), JSON merge patches of the few fields we own, status through the
status subresource, deletes that accept KubeNotFound.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import urllib3
from kubernetes import client, config

from ftjobs.api.constants import API_VERSION, KIND, MANAGER, PLURAL
from ftjobs.api.timestamps import now_time
from ftjobs.k8s.errors import (
    AlreadyExists,
    KubeNotFound,
    KubePermanent,
    KubeRetriable,
    classify_status,
    connection_error,
)
from ftjobs.k8s.ratelimit import TokenBucket

# (apiVersion, kind) -> resource plural, for the kinds ftjobs reads or writes.
RESOURCES: dict[tuple[str, str], str] = {
    ("v1", "Service"): "services",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "Pod"): "pods",
    ("v1", "Event"): "events",
    ("v1", "Secret"): "secrets",
    ("v1", "Namespace"): "namespaces",
    ("v1", "Node"): "nodes",
    ("batch/v1", "Job"): "jobs",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    ("rbac.authorization.k8s.io/v1", "Role"): "roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rolebindings",
    ("coordination.k8s.io/v1", "Lease"): "leases",
    ("kueue.x-k8s.io/v1beta2", "Workload"): "workloads",
    (API_VERSION, KIND): PLURAL,
}

MERGE_PATCH = "application/merge-patch+json"

# The request counter of the unit of work in progress (`Kube.counting`), if any.
_COUNTING: contextvars.ContextVar[Counter[str] | None] = contextvars.ContextVar(
    "ftjobs_k8s_counting", default=None
)


# Whether the requests in progress may wait behind urgent ones (`Kube.low_priority`).
_LOW_PRIORITY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "ftjobs_k8s_low_priority", default=False
)


def resource_path(
    api_version: str,
    kind: str,
    namespace: str | None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    plural = RESOURCES[(api_version, kind)]
    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


# A request that went out on a kept-alive connection the server had just closed is sent
# again this many times, at once, on a fresh connection (see `Kube.request`).
DROPPED_CONNECTION_RETRIES = 1


def resource_of(path: str) -> str:
    """The resource (plural, with its subresource) a request path names: what
    `resource_path` built, read back for metrics."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    # /api/v1/... or /apis/<group>/<version>/...
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    if len(rest) >= 3:
        return f"{rest[0]}/{rest[2]}"
    return rest[0] if rest else ""


def load_client(kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient from `kubeconfig`, $KUBECONFIG, ~/.kube/config or the pod's account."""
    cfg = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        config.load_kube_config(config_file=path, client_configuration=cfg)  # type: ignore[no-untyped-call]
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    # Enough connections for the controller's worker threads.
    cfg.connection_pool_maxsize = 32
    return client.ApiClient(cfg)


class Kube:
    """Typed-enough verbs over the raw API; counts its requests (metrics, benchmarks)."""

    def __init__(
        self, api: client.ApiClient, *, timeout: float = 30.0, limit: TokenBucket | None = None
    ) -> None:
        self.api = api
        self.timeout = timeout
        # Client-side rate limit (--kube-api-qps/--kube-api-burst); None: none.
        self.limit = limit
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        # Called with the HTTP verb and the resource (e.g. "jobs", "finetunejobs/status")
        # before each request (the controller's metrics, the benchmark's profile).
        self.on_request: Callable[[str, str], None] | None = None

    @classmethod
    def connect(cls, kubeconfig: str | None = None, *, qps: float = 0.0, burst: int = 0) -> Kube:
        """A client of `kubeconfig`; `qps` > 0 limits it to `qps` requests a second on
        average and `burst` at once (client-go's QPS/Burst)."""
        limit = TokenBucket(qps, burst or max(1, int(2 * qps))) if qps > 0 else None
        return cls(load_client(kubeconfig), limit=limit)

    # --- the one place that does HTTP ----------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        if self.limit is not None:
            self.limit.take(urgent=not _LOW_PRIORITY.get())
        scope = _COUNTING.get()
        with self._lock:
            self.requests[method] += 1
            if scope is not None:
                scope[method] += 1
        if self.on_request is not None:
            self.on_request(method, resource_of(path))
        req = self.api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        # A create by generateName is the one write that may not go twice: a retry of one
        # that did get through would make a second object (a second training run).
        named_by_server = (
            method == "POST"
            and isinstance(body, dict)
            and not body.get("metadata", {}).get("name")
            and bool(body.get("metadata", {}).get("generateName"))
        )
        retries = 0 if named_by_server else DROPPED_CONNECTION_RETRIES
        for retry in range(retries + 1):
            try:
                resp = self.api.call_api(*req, _request_timeout=self.timeout)
                data = resp.read()  # type: ignore[no-untyped-call]
                break
            except urllib3.exceptions.ProtocolError as exc:
                # The server closed a kept-alive connection as the request went out on it
                # (an API server drops idle ones): urllib3 retries only idempotent methods
                # then, Go's client any request that got no answer. Every write of ours may
                # go twice (a create by name that got through answers AlreadyExists, which
                # callers handle; patches are idempotent; an event is informative), so once
                # more on a fresh connection, at once.
                if retry == retries:
                    raise connection_error(exc, self.api.configuration.host) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise connection_error(exc, self.api.configuration.host) from exc
            except client.ApiException as exc:
                raise classify_status(exc.status or 0, exc.body, exc.headers) from exc
        if not 200 <= resp.status <= 299:
            raise classify_status(resp.status, data, resp.headers)
        return json.loads(data) if data else {}

    @contextlib.contextmanager
    def counting(self, counter: Counter[str] | None = None) -> Iterator[Counter[str]]:
        """Count, by HTTP verb, the requests made inside the block, including those of
        threads started with a copy of its context (`contextvars.copy_context`): the
        requests of one reconcile while other workers make theirs. `counter`: go on
        counting into one (a unit of work continued in another thread)."""
        counter = Counter() if counter is None else counter
        token = _COUNTING.set(counter)
        try:
            yield counter
        finally:
            _COUNTING.reset(token)

    @contextlib.contextmanager
    def low_priority(self) -> Iterator[None]:
        """Requests inside the block wait for the rate limit behind those outside it (a
        report on work done waits for the work of other jobs; see ratelimit.TokenBucket)."""
        token = _LOW_PRIORITY.set(True)
        try:
            yield
        finally:
            _LOW_PRIORITY.reset(token)

    # --- reads ---------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        return self.request("GET", resource_path(api_version, kind, namespace, name))

    def get_or_none(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        try:
            return self.get(api_version, kind, namespace, name)
        except KubeNotFound:
            return None

    def list(
        self, api_version: str, kind: str, namespace: str | None, selector: str = ""
    ) -> list[dict[str, Any]]:
        query = {"labelSelector": selector} if selector else {}
        # resourceVersion=0 would serve from the watch cache but may be stale; the
        # controller needs to see the Jobs it just created, so read from etcd.
        doc = self.request("GET", resource_path(api_version, kind, namespace), query=query)
        items: list[dict[str, Any]] = doc.get("items", [])
        return items

    # --- writes --------------------------------------------------------------------------

    def create(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        ns = namespace or obj.get("metadata", {}).get("namespace")
        return self.request(
            "POST",
            resource_path(obj["apiVersion"], obj["kind"], ns),
            body=obj,
            query={"fieldManager": MANAGER},
        )

    def create_or_adopt(self, obj: dict[str, Any], owner_uid: str) -> dict[str, Any]:
        """Create `obj`; if it exists already and is ours (owner reference), use it."""
        try:
            return self.create(obj)
        except AlreadyExists:
            meta = obj["metadata"]
            existing = self.get(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
            owners = existing.get("metadata", {}).get("ownerReferences") or []
            if any(ref.get("uid") == owner_uid for ref in owners):
                return existing
            if owners:
                # Left by a deleted FineTuneJob of the same name: the garbage collector
                # removes it shortly.
                raise KubeRetriable(
                    409, "OwnedByAnother", f"{obj['kind']} {meta['name']} awaits GC", delay=3.0
                ) from None
            raise KubePermanent(
                409,
                "NotOwned",
                f"{obj['kind']} {meta['name']} exists and is not owned by this FineTuneJob",
            ) from None

    def merge_patch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        return self.request(
            "PATCH",
            resource_path(api_version, kind, namespace, name, subresource),
            body=patch,
            content_type=MERGE_PATCH,
            query={"fieldManager": MANAGER},
        )

    def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        propagation: str = "Background",
    ) -> bool:
        """Delete; False when it was already gone."""
        try:
            self.request(
                "DELETE",
                resource_path(api_version, kind, namespace, name),
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": propagation,
                },
            )
            return True
        except KubeNotFound:
            return False

    # --- FineTuneJobs --------------------------------------------------------------------

    def get_finetunejob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get_or_none(API_VERSION, KIND, namespace, name)

    def patch_finetunejob_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        return self.merge_patch(API_VERSION, KIND, namespace, name, {"status": status}, "status")

    def patch_finetunejob_annotations(
        self, namespace: str, name: str, annotations: dict[str, str | None]
    ) -> dict[str, Any]:
        return self.merge_patch(
            API_VERSION, KIND, namespace, name, {"metadata": {"annotations": annotations}}
        )

    def post_event(
        self,
        involved: dict[str, Any],
        type_: str,
        reason: str,
        message: str,
        component: str = MANAGER,
    ) -> dict[str, Any]:
        """A core/v1 Event about `involved` (a stored object), as `kubectl describe` shows."""
        meta = involved["metadata"]
        stamp = now_time()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", API_VERSION),
                "kind": involved.get("kind", KIND),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": os.environ.get("HOSTNAME", "local"),
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        return self.create(event)


# The package (ftjobs.k8s) is the facade: it re-exports these with the errors.
__all__ = ["RESOURCES", "Kube", "load_client", "resource_of", "resource_path"]
