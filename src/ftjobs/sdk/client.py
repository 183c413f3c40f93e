"""`ftjobs.sdk.Client`: FineTuneJobs on a cluster, for people (the CLI) and for CI.

    client = Client(context="prod", namespace="ml")
    result = client.submit(load_job("job.yaml"))          # validated, idempotent
    final = client.wait(result.name, timeout=3600, on_update=print)
    print(final.phase, final.status.metrics)

Every call goes through the Kubernetes adapter (ftjobs.k8s); nothing here imports the
kubernetes client. Errors are `ClientError` subclasses with a message fit for a terminal.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ftjobs.api.job import FineTuneJob
from ftjobs.api.status import TERMINAL_PHASES, FineTuneJobStatus
from ftjobs.api.timestamps import now_time
from ftjobs.api.validation import FieldError, SpecError, check_update
from ftjobs.k8s import AlreadyExists, KubeError, KubeNotFound, KubePermanent, jobs_api

# The class below has a `list` method; annotations inside it use this alias.
Objects = list[dict[str, Any]]


class ClientError(Exception):
    """A user-facing failure of an SDK call."""


UNREACHABLE_HINT = (
    "check the server URL of the context (`kubectl config view --minify`), pick another "
    "with --context, or pass --kubeconfig FILE"
)


def describe(exc: KubeError) -> str:
    """What went wrong and what to do, in the CLI's words (no client-library internals)."""
    if exc.reason == "Unreachable":
        return f"{exc.message}; {UNREACHABLE_HINT}"
    if exc.status == 401:
        return (
            "the API server refused the kubeconfig's credentials (401 Unauthorized): the token "
            "or certificate expired or is wrong; refresh it (e.g. your cloud's get-credentials)"
        )
    if exc.status == 403:
        return f"forbidden (403): {exc.message}; ask for RBAC on finetunejobs.ftjobs.dev"
    return f"Kubernetes API: {exc}"


class JobNotFound(ClientError):
    pass


class SpecConflict(ClientError):
    """A FineTuneJob of that name exists with a different spec."""


class WaitTimeout(ClientError):
    def __init__(self, message: str, last: JobView) -> None:
        super().__init__(message)
        self.last = last


@dataclass(frozen=True)
class JobView:
    """A stored FineTuneJob as the SDK's callers read it."""

    name: str
    namespace: str
    status: FineTuneJobStatus
    raw: dict[str, Any] = field(repr=False)

    @property
    def phase(self) -> str:
        # StrEnum or plain str (the models keep enum values as strings): str() is the value.
        return str(self.status.phase) if self.status.phase else "Pending"

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL_PHASES

    @property
    def reason(self) -> str:
        """Why it ended (or what it waits for): the last failing condition, else the message."""
        for cond in reversed(self.status.conditions):
            if cond.type == "Failed" and cond.status == "True":
                return f"{cond.reason}: {cond.message}" if cond.message else cond.reason
        return self.status.message or ""

    @property
    def queued_since(self) -> str | None:
        """When the current wait in the Kueue queue began (the Queued condition turned True),
        or None when it does not wait in a queue."""
        for cond in self.status.conditions:
            if cond.type == "Queued" and cond.status == "True" and self.phase == "Queued":
                return cond.last_transition_time
        return None

    @classmethod
    def of(cls, obj: dict[str, Any]) -> JobView:
        meta = obj.get("metadata", {})
        try:
            status = FineTuneJobStatus.model_validate(obj.get("status") or {})
        except ValidationError:
            # A status from a newer controller: show what can be read rather than fail.
            status = FineTuneJobStatus.model_construct(**(obj.get("status") or {}))
        return cls(meta.get("name", ""), meta.get("namespace", ""), status, obj)


@dataclass(frozen=True)
class SubmitResult:
    name: str
    namespace: str
    created: bool  # False: the same job existed already (idempotent re-submit)


class Client:
    """Talks to the API server of a kubeconfig context (or the pod's service account)."""

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str | None = None,
    ) -> None:
        try:
            conn = jobs_api.connect(kubeconfig, context)
        except KubeError as exc:
            raise ClientError(exc.message) from None
        self.kube = conn.kube
        self.context = conn.context
        self.namespace = namespace or conn.namespace

    def _ns(self, namespace: str | None) -> str:
        return namespace or self.namespace

    # --- submit --------------------------------------------------------------------------

    def submit(
        self,
        job: FineTuneJob,
        *,
        namespace: str | None = None,
        name: str | None = None,
        generate_name: bool = False,
    ) -> SubmitResult:
        """Create the FineTuneJob. Same name and same spec as a stored one: a no-op;
        a different spec: SpecConflict. With `generate_name` the server picks a unique
        name from the job's name (a new job every time)."""
        ns = self._ns(namespace or job.metadata.namespace)
        manifest = job.to_manifest()
        meta = manifest.setdefault("metadata", {})
        meta["namespace"] = ns
        if name:
            meta["name"] = name
        if generate_name:
            base = meta.pop("name", None) or meta.get("generateName") or "ftj"
            meta["generateName"] = base if base.endswith("-") else f"{base}-"
        if not meta.get("name") and not meta.get("generateName"):
            raise SpecError([FieldError("metadata.name", "required (or use --generate-name)")])
        try:
            created = jobs_api.create_job(self.kube, ns, manifest)
        except AlreadyExists:
            self._check_same(job, ns, meta["name"])
            return SubmitResult(meta["name"], ns, created=False)
        except KubePermanent as exc:
            if exc.status == 422:
                # The CRD's schema or CEL rules refused it (offline validation passed).
                raise SpecError([FieldError("", exc.message)], "API server") from None
            raise ClientError(describe(exc)) from None
        except KubeError as exc:
            raise ClientError(describe(exc)) from None
        return SubmitResult(created["metadata"]["name"], ns, created=True)

    def _check_same(self, job: FineTuneJob, namespace: str, name: str) -> None:
        stored = self.get(name, namespace=namespace).raw
        try:
            existing = FineTuneJob.model_validate(stored)
        except ValidationError:
            raise SpecConflict(
                f"FineTuneJob {namespace}/{name} exists and its spec is not readable"
            ) from None
        # Compared as validated models: the API server's defaults equal the models' defaults,
        # so a spec written with and without default fields is the same spec.
        if existing.spec.model_dump() == job.spec.model_dump():
            return
        changed = sorted({e.path for e in check_update(existing.spec, job.spec)})
        differ = _differing_fields(
            existing.spec.model_dump(by_alias=True), job.spec.model_dump(by_alias=True)
        )
        fields = ", ".join(differ or changed) or "spec"
        raise SpecConflict(
            f"FineTuneJob {namespace}/{name} already exists with a different spec "
            f"(differs in: {fields}); choose another --name, use --generate-name, or "
            f"delete it first (kubectl delete ftj {name} -n {namespace})"
        )

    # --- read ----------------------------------------------------------------------------

    def get(self, name: str, *, namespace: str | None = None) -> JobView:
        ns = self._ns(namespace)
        obj = _call(jobs_api.get_job, self.kube, ns, name)
        if obj is None:
            raise JobNotFound(f"FineTuneJob {ns}/{name} not found")
        return JobView.of(obj)

    def list(self, *, namespace: str | None = None, all_namespaces: bool = False) -> list[JobView]:
        ns = None if all_namespaces else self._ns(namespace)
        items = _call(jobs_api.list_jobs, self.kube, ns)
        views = [JobView.of(o) for o in items]
        return sorted(views, key=lambda v: (v.namespace, v.name))

    def events(self, name: str, *, namespace: str | None = None) -> Objects:
        """core/v1 Events about the job, oldest first."""
        events: Objects = _call(jobs_api.job_events, self.kube, self._ns(namespace), name)
        return events

    # --- wait ----------------------------------------------------------------------------

    def wait(
        self,
        name: str,
        *,
        namespace: str | None = None,
        timeout: float | None = None,
        poll_seconds: float = 1.0,
        on_update: Callable[[JobView], None] | None = None,
    ) -> JobView:
        """Until the job is Succeeded, Failed or Cancelled; `on_update` sees every change
        of phase, attempt or progress. Raises WaitTimeout after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last_key: tuple[Any, ...] | None = None
        while True:
            view = self.get(name, namespace=namespace)
            key = (
                view.phase,
                view.status.attempt,
                view.status.progress.model_dump() if view.status.progress else None,
                view.status.message,
            )
            if key != last_key:
                last_key = key
                if on_update is not None:
                    on_update(view)
            if view.finished:
                return view
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"FineTuneJob {view.namespace}/{name} still {view.phase} after {timeout:g}s",
                    view,
                )
            remaining = poll_seconds if deadline is None else deadline - time.monotonic()
            time.sleep(max(0.0, min(poll_seconds, remaining)))

    # --- cancel --------------------------------------------------------------------------

    def cancel(self, name: str, *, namespace: str | None = None) -> JobView:
        """Ask the controller to stop the job: it deletes the attempt's pods and ends the
        job in phase Cancelled; the FineTuneJob and its outputs stay."""
        ns = self._ns(namespace)
        view = self.get(name, namespace=ns)
        if view.finished:
            return view
        stamp = now_time()
        return JobView.of(_call(jobs_api.request_cancel, self.kube, ns, name, stamp))

    # --- logs ----------------------------------------------------------------------------

    def pods(
        self, name: str, *, namespace: str | None = None, attempt: int | None = None
    ) -> Objects:
        """Pods of one attempt (the current one by default), sorted by rank."""
        ns = self._ns(namespace)
        if attempt is None:
            attempt = self.get(name, namespace=ns).status.attempt or None
        pods: Objects = _call(jobs_api.attempt_pods, self.kube, ns, name, attempt)
        return pods

    def logs(
        self,
        name: str,
        *,
        namespace: str | None = None,
        rank: int | None = None,
        attempt: int | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
    ) -> Iterator[tuple[int | None, str]]:
        """(rank, line) of the attempt's pods (rank 0 first), or of one rank; following
        several pods, their lines interleave as they arrive."""
        ns = self._ns(namespace)
        pods = self.pods(name, namespace=ns, attempt=attempt)
        if rank is not None:
            pods = [p for p in pods if jobs_api.pod_rank(p) == rank]
        if not pods:
            which = f" rank {rank}" if rank is not None else ""
            raise ClientError(f"no pods{which} for FineTuneJob {ns}/{name} (yet)")
        if follow and len(pods) > 1:
            # every rank at once: one stream per pod, lines as they arrive
            yield from _merged(
                [(jobs_api.pod_rank(p), self._pod_lines(ns, p, True, tail_lines)) for p in pods]
            )
            return
        for pod in pods:
            for line in self._pod_lines(ns, pod, follow, tail_lines):
                yield jobs_api.pod_rank(pod), line

    def _pod_lines(
        self, ns: str, pod: dict[str, Any], follow: bool, tail_lines: int | None
    ) -> Iterator[str]:
        name = pod["metadata"]["name"]
        try:
            yield from jobs_api.stream_log(
                self.kube, ns, name, follow=follow, tail_lines=tail_lines
            )
        except KubeError as exc:
            raise ClientError(f"logs of {name}: {exc.message}") from None


def _merged(streams: list[tuple[int | None, Iterator[str]]]) -> Iterator[tuple[int | None, str]]:
    """Interleave blocking line iterators (one thread each) in arrival order; the first
    error is raised once every stream has stopped or failed."""
    out: queue.Queue[tuple[int | None, str] | BaseException | None] = queue.Queue()

    def pump(rank: int | None, lines: Iterator[str]) -> None:
        try:
            for line in lines:
                out.put((rank, line))
        except BaseException as exc:
            out.put(exc)
        finally:
            out.put(None)

    for rank, lines in streams:
        threading.Thread(target=pump, args=(rank, lines), daemon=True).start()
    running, error = len(streams), None
    while running:
        item = out.get()
        if item is None:
            running -= 1
        elif isinstance(item, BaseException):
            error = error or item
        else:
            yield item
    if error is not None:
        raise error


def _differing_fields(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted camelCase paths where two spec dumps differ (for the conflict message)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted({*old, *new}):
            out += _differing_fields(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return out
    return [] if old == new else [path or "spec"]


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Run an adapter call; its errors become ClientErrors (the CLI sees no adapter types)."""
    try:
        return fn(*args)
    except KubeNotFound as exc:
        raise JobNotFound(f"not found: {exc.message}") from None
    except KubeError as exc:
        raise ClientError(describe(exc)) from None


def summary_of(view: JobView) -> dict[str, Any]:
    """The job's summary.json from its output storage (the trainer writes it at the end),
    else the same keys as far as the status has them (phase, metrics, output model)."""
    from ftjobs.api.trainer_config import job_output_uri

    raw_spec = (view.raw.get("spec") or {}).get("storage") or {}
    output = raw_spec.get("output")
    stored: dict[str, Any] = {}
    if output and view.phase == "Succeeded":
        from ftjobs.api.spec import Storage
        from ftjobs.storage import open_store

        try:
            store = open_store(
                job_output_uri(output, view.namespace, view.name),
                storage=Storage.model_validate(raw_spec),
            )
            stored = json.loads(store.get_bytes("summary.json"))
        except Exception:
            stored = {}  # unreachable from here (credentials, network): use the status
    status = view.status
    metrics = status.metrics.model_dump(by_alias=True, mode="json") if status.metrics else None
    derived: dict[str, Any] = {
        "name": view.name,
        "namespace": view.namespace,
        "phase": view.phase,
        "reason": view.reason if view.phase != "Succeeded" else "",
        "attempt": status.attempt,
        "restarts": status.restarts,
        "startTime": status.start_time,
        "completionTime": status.completion_time,
        "outputModel": status.output_model,
        "metrics": metrics,
        "source": "summary.json" if stored else "status",
    }
    return {**derived, **stored, "phase": view.phase, "source": derived["source"]}
