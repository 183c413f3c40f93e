"""The kopf shell: watches feed a work queue; workers reconcile one FineTuneJob at a time.

kopf does what it is good at (watch streams with reconnects and re-lists, liveness,
logging); the level-triggered logic is ours. Watch events of FineTuneJobs and of their
child Jobs (by the `ftjobs.dev/job` label) only enqueue the owner's key; a worker reads
the FineTuneJob and its Jobs afresh, computes the pure plan and makes its changes up to the
Job; the rest of the changes and the report follow in pools of their own. The Job's
status aggregates its pods (active/ready/failed), so Job events cover pod transitions
but one: a pod stuck before starting (a missing Secret, an image that cannot be pulled,
no node that fits) changes nothing in its Job. Pod events of the `ftjobs.dev/job`
label therefore enqueue the owner when what `observe.pod_waiting` reports changes. A
periodic resync re-enqueues every known key; every `reread_every`-th one reads them afresh.

Only `on.event` handlers are used: they keep no state on the object, so kopf writes
no annotations or finalizers of its own (deleting a FineTuneJob never waits for the
controller). The adapter's error taxonomy drives the queue the way kopf's TemporaryError
and KubePermanent drive kopf's own handlers: a KubeRetriable re-enqueues the key after
its delay; a KubePermanent is reported and waits for the next change or the resync.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from pydantic import ValidationError

from ftjobs.api.constants import GROUP, LABEL_JOB, PLURAL, VERSION
from ftjobs.api.job import FineTuneJob
from ftjobs.api.status import FineTuneJobStatus
from ftjobs.controller import metrics
from ftjobs.controller.child_cache import ChildCache, version
from ftjobs.controller.execute import Executed, execute_changes, execute_report, split_at_job
from ftjobs.controller.observe import observe, parent_to_read, pod_waiting
from ftjobs.controller.queue import WorkQueue
from ftjobs.controller.reconcile import Observed, Plan, reads_children, reconcile, reconcile_invalid
from ftjobs.k8s import Kube, KubePermanent, KubeRetriable
from ftjobs.render import JOB, RenderSettings, is_namespace_identity

log = logging.getLogger("ftjobs.controller")
Key = tuple[str, str]


# How long a namespace's shared trainer identity, once created or found, is taken to exist.
IDENTITY_RECHECK_SECONDS = 600.0
# How long a report (status patch, events) waits while other jobs' changes are being made
# or are queued: in a burst every job's Job goes first (each FineTuneJob status patch costs
# the API server a validation of the whole custom object), but no report waits for long.
REPORT_HOLD_SECONDS = 2.0
# Threads making the rest of reconciles' changes (after the Job, controller/execute.py
# split_at_job), and threads reporting.
FINISH_THREADS = 8
REPORT_THREADS = 4


@dataclass
class Reconciled:
    """A reconcile whose first changes (up to its Job) are made: the changes left to make,
    what is left to report, and when to look again."""

    key: Key
    obj: dict[str, Any] | None  # the FineTuneJob as last stored; None: it is gone
    plan: Plan
    requests: Counter[str]
    requeue: float | None = None
    fresh: bool = False  # the job's first reconcile: it read no children
    rest: Plan = field(default_factory=Plan)  # changes after the Job's creation stage


@dataclass
class Controller:
    """State shared by the handlers (passed to kopf as its `memo`)."""

    kube: Kube
    settings: RenderSettings = field(default_factory=RenderSettings)
    workers: int = 16
    resync_seconds: float = 60.0
    # Every how many resyncs the FineTuneJobs and their Jobs are read afresh (GET, LIST);
    # the others re-reconcile what the watches delivered, as client-go's informers resync.
    reread_every: int = 10
    queue: WorkQueue = field(default_factory=WorkQueue)
    known: set[Key] = field(default_factory=set)
    phases: metrics.PhaseBook = field(default_factory=metrics.PhaseBook)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Last relevant state seen per watched object: events that change nothing the plan
    # reads (our own status patches, the trainer's progress, Job bookkeeping) are dropped.
    seen: dict[tuple[str, Key], tuple[Any, ...]] = field(default_factory=dict)
    # The newest stored FineTuneJob per key, from its watch and from our own writes'
    # responses: a reconcile reads it instead of GETting the object (see `latest`).
    bodies: dict[Key, dict[str, Any]] = field(default_factory=dict)
    bodies_lock: threading.Lock = field(default_factory=threading.Lock)
    # Namespaces whose shared trainer identity this process created or found, and when:
    # a job's plan creates it only when unknown or older than IDENTITY_RECHECK_SECONDS
    # (someone may have deleted it; pods of a Job cannot be admitted without it).
    identities: dict[str, float] = field(default_factory=dict)
    # The child Jobs and pods the watches deliver, read instead of LISTs (child_cache.py).
    children: ChildCache = field(default_factory=ChildCache)
    # Threads that make the rest of a reconcile's changes, and threads that report
    # (status patch, events) after them; apart from the workers' threads, so neither holds
    # up the next job's Job.
    finish_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(
            FINISH_THREADS, thread_name_prefix="ftjobs-finish"
        )
    )
    report_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(
            REPORT_THREADS, thread_name_prefix="ftjobs-report"
        )
    )
    # Reconciles making changes right now (read before reporting, see `follow_up`).
    changing: int = 0
    follow_ups: set[asyncio.Task[None]] = field(default_factory=set)
    # Set (and replaced) whenever `changing` or the queue gets shorter.
    nudged: asyncio.Event = field(default_factory=asyncio.Event)

    def enqueue_if_changed(
        self,
        ref: tuple[str, Key],
        signature: tuple[Any, ...],
        key: Key,
        unseen: tuple[Any, ...] | None = None,
    ) -> None:
        """Enqueue `key` when `signature` differs from the last one seen for `ref` (or from
        `unseen` for an object not seen before)."""
        if self.seen.get(ref, unseen) == signature:
            self.seen[ref] = signature
            return
        self.seen[ref] = signature
        self.queue.add(key)

    def remember_creating(self, obj: dict[str, Any]) -> None:
        """A child Job we are about to create is known as it will be stored: the watch
        event of our own create then changes nothing and costs no reconcile (the reconcile
        creating it plans from that state already). Remembered before the create: under
        load the watch event often arrives before the create call returns."""
        if JOB.matches(obj):
            meta = obj.get("metadata", {})
            ref = ("job", (meta.get("namespace", ""), meta.get("name", "")))
            self.seen.setdefault(ref, job_signature(obj))

    # --- one reconcile (runs in a worker thread: the adapter is synchronous) -------------

    def remember_body(self, key: Key, body: dict[str, Any]) -> None:
        """Keep `body` as the newest known FineTuneJob `key` unless what is kept is newer:
        our own write's response may arrive before the watch events that precede it.
        Only for a FineTuneJob the watch knows: a reconcile still running when its object
        was deleted must not leave the deleted object behind to be reconciled again."""
        with self.bodies_lock:  # the watch (event loop) and workers (threads) both write
            if key not in self.known:
                return
            kept = self.bodies.get(key)
            if kept is not None and version(kept) > version(body):
                return
            self.bodies[key] = body

    def latest(self, key: Key) -> dict[str, Any] | None:
        """The FineTuneJob to reconcile: the newest body known (at least as new as our own
        last write and as the watch event that enqueued the key), or a GET when none is."""
        obj = self.bodies.get(key)
        if obj is None:
            obj = self.kube.get_finetunejob(*key)
            if obj is not None:
                self.remember_body(key, obj)
        return obj

    def reconcile_key(self, key: Key) -> Reconciled:
        """Plan one FineTuneJob and make its changes up to its Job; the rest (`finish`) and
        the report (status, events: `report`) follow in pools of their own."""
        with self.kube.counting() as requests:
            return self._reconcile_key(key, requests)

    def _reconcile_key(self, key: Key, requests: Counter[str]) -> Reconciled:
        ns, name = key
        obj = self.latest(key)
        if obj is None:
            self.phases.set(key, None)
            return Reconciled(key, None, Plan(), requests)
        now = datetime.now(UTC)
        try:
            job = FineTuneJob.model_validate(obj)
        except ValidationError as exc:
            fresh = False
            plan = _invalid_plan(obj, exc, now)
        else:
            # A job's first reconcile reads nothing (reads_children), unless it must read
            # the parent job its model comes from.
            parent = parent_to_read(job)
            fresh = not reads_children(job)
            if not fresh or parent is not None:
                observed = observe(self.kube, ns, name, parent, cache=self.children)
            else:
                observed = Observed()
            plan = self._known_identity(ns, reconcile(job, observed, now, self.settings))
        first, rest = split_at_job(plan)
        done = Reconciled(key, obj, plan, requests, plan.requeue_after, fresh, rest)
        self._made(done, execute_changes(self.kube, obj, first, self.remember_creating))
        return done

    def finish(self, done: Reconciled) -> None:
        """Make the changes of a reconcile left after its Job's creation stage."""
        if done.obj is None or done.rest.empty:
            return
        rest, done.rest = done.rest, Plan()
        with self.kube.counting(done.requests):
            self._made(done, execute_changes(self.kube, done.obj, rest, self.remember_creating))

    def _made(self, done: Reconciled, changed: Executed) -> None:
        """What the controller learns from changes made: identities and Jobs that exist,
        the FineTuneJob as an annotation patch stored it, and whether to look again now."""
        ns = done.key[0]
        if any(is_namespace_identity(o) for o in changed.stored):
            self.identities[ns] = time.monotonic()
        for body in changed.stored:
            if JOB.matches(body):
                self.children.created(done.key, body)
        if done.fresh and any(JOB.matches(b) for b in changed.stored) and not changed.adopted:
            # A new job's children are the ones just created: nothing to LIST later.
            self.children.mark_synced(done.key)
        if changed.updated is not None:
            self.remember_body(done.key, changed.updated)
            done.obj = changed.updated
        if changed.adopted:
            done.requeue = 0.0  # a half-done earlier reconcile: look at what it left, now

    def _known_identity(self, ns: str, plan: Plan) -> Plan:
        """`plan` without the namespace's shared trainer identity when it is known to exist."""
        seen = self.identities.get(ns)
        if seen is None or time.monotonic() - seen > IDENTITY_RECHECK_SECONDS:
            return plan
        return replace(plan, create=tuple(o for o in plan.create if not is_namespace_identity(o)))

    def report(self, done: Reconciled) -> None:
        """Patch the status and post the events of a reconcile whose changes are made (it
        makes those left first). Its requests wait for the rate limit behind other jobs'
        changes."""
        self.finish(done)
        ns, name = done.key
        plan, obj = done.plan, done.obj
        if obj is None:
            return
        if not plan.empty:
            with self.kube.counting(done.requests), self.kube.low_priority():
                updated = execute_report(self.kube, obj, plan)
            if updated is not None:
                self.remember_body(done.key, updated)
            _count(plan)
        phase = (plan.status or {}).get("phase") or (obj.get("status") or {}).get("phase")
        self.phases.set(done.key, phase)
        if plan.events:
            log.info(
                "reconciled",
                extra={
                    "ftj": f"{ns}/{name}",
                    "generation": obj.get("metadata", {}).get("generation"),
                    "phase": phase,
                    "events": [e.reason for e in plan.events],
                    # This reconcile's API requests (tests/integration/
                    # test_controller_requests.py reads it).
                    "requests": done.requests.total(),
                },
            )

    # --- the asyncio side ----------------------------------------------------------------

    async def worker(self) -> None:
        while True:
            key = cast(Key, await self.queue.get())
            started = time.monotonic()
            self.changing += 1
            self._nudge()  # the queue is one shorter
            try:
                done = await asyncio.to_thread(self.reconcile_key, key)
            except Exception as exc:  # handled by kind in _failed
                self.changing -= 1
                self._nudge()
                self._failed(key, exc)
                self._finished(key, started)
                continue
            # The rest of the changes and the report go on in pools of their own while this
            # worker takes the next key; the key stays in progress (no second reconcile of
            # it) until they are done.
            task = asyncio.create_task(self.follow_up(done))
            self.follow_ups.add(task)
            task.add_done_callback(functools.partial(self._reported, done=done, started=started))

    async def follow_up(self, done: Reconciled) -> None:
        """Make the changes of `done` left after its Job, then report them: after other
        jobs' changes, waiting (up to REPORT_HOLD_SECONDS) while any are being made or
        keys wait for one."""
        loop = asyncio.get_running_loop()
        try:
            if not done.rest.empty:
                await loop.run_in_executor(self.finish_pool, self.finish, done)
        finally:
            self.changing -= 1
            self._nudge()
        deadline = loop.time() + REPORT_HOLD_SECONDS
        while self.changing or len(self.queue):
            try:
                await asyncio.wait_for(self.nudged.wait(), deadline - loop.time())
            except TimeoutError:
                break
        await loop.run_in_executor(self.report_pool, self.report, done)

    def _nudge(self) -> None:
        """Wake the reports waiting for quiet (`follow_up`) to look again."""
        self.nudged.set()
        self.nudged = asyncio.Event()

    def _reported(self, task: asyncio.Task[None], *, done: Reconciled, started: float) -> None:
        self.follow_ups.discard(task)
        if task.cancelled():  # the controller stops
            self._finished(done.key, started)
            return
        exc = task.exception()
        if exc is not None:
            self._failed(done.key, exc)
        else:
            metrics.RECONCILES.labels("ok").inc()
            if done.requeue is not None:
                self.queue.add_after(done.key, done.requeue)
        self._finished(done.key, started)

    def _failed(self, key: Key, exc: BaseException) -> None:
        ref = "/".join(key)
        if isinstance(exc, KubeRetriable):
            metrics.API_ERRORS.labels("retriable", exc.reason).inc()
            metrics.RECONCILES.labels("retry").inc()
            log.warning("retrying", extra={"ftj": ref, "error": str(exc)})
            self.queue.add_after(key, exc.delay)
        elif isinstance(exc, KubePermanent):
            # Not retried at once: the next change of the object or its Jobs, or the
            # resync, tries again.
            metrics.API_ERRORS.labels("permanent", exc.reason).inc()
            metrics.RECONCILES.labels("error").inc()
            log.error("reconcile failed", extra={"ftj": ref, "error": str(exc)})
        else:
            metrics.RECONCILES.labels("error").inc()
            log.error("reconcile crashed", extra={"ftj": ref}, exc_info=exc)
            self.queue.add_after(key, 5.0)

    def _finished(self, key: Key, started: float) -> None:
        metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        self.queue.done(key)

    async def resync(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(self.resync_seconds)
            rounds += 1
            if rounds % self.reread_every == 0:
                # The safety net for watch events that never came (an object deleted while
                # a watch was reconnecting): read afresh. Every resync would cost two
                # requests a job a minute, more than a job's whole life (docs/benchmarks.md).
                self.children.unsync_all()
                with self.bodies_lock:
                    self.bodies.clear()
            for key in list(self.known):
                self.queue.add(key)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        # asyncio's default pool has min(32, CPUs + 4) threads: on a small node fewer than
        # the workers, which would then queue behind each other's API calls.
        loop.set_default_executor(
            ThreadPoolExecutor(self.workers + 2, thread_name_prefix="ftjobs-reconcile")
        )
        self.tasks = [loop.create_task(self.worker()) for _ in range(self.workers)]
        self.tasks.append(loop.create_task(self.resync()))

    async def stop(self) -> None:
        tasks = [*self.tasks, *self.follow_ups]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.finish_pool.shutdown(wait=False, cancel_futures=True)
        self.report_pool.shutdown(wait=False, cancel_futures=True)


def _invalid_plan(obj: dict[str, Any], exc: ValidationError, now: datetime) -> Plan:
    try:
        status = FineTuneJobStatus.model_validate(obj.get("status") or {})
    except ValidationError:
        status = FineTuneJobStatus()
    errors = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
    )
    return reconcile_invalid(status, obj["metadata"].get("generation"), errors, now)


def _count(plan: Plan) -> None:
    if plan.status and "phase" in plan.status:
        metrics.TRANSITIONS.labels(plan.status["phase"]).inc()
    if plan.status and "restarts" in plan.status:
        metrics.RESTARTS.inc()
    if plan.queue_wait_seconds is not None:
        metrics.QUEUE_WAIT_SECONDS.observe(plan.queue_wait_seconds)


def ftj_signature(body: Any) -> tuple[Any, ...]:
    """What of a FineTuneJob makes a reconcile necessary: the spec (its generation), the
    annotations (cancel), deletion. Status changes are the controller's own writes or
    the trainer's progress; the periodic resync covers anything else."""
    meta = body.get("metadata", {})
    annotations = meta.get("annotations") or {}
    return (
        meta.get("uid"),
        meta.get("generation"),
        tuple(sorted((k, v) for k, v in annotations.items() if k.startswith(GROUP))),
        meta.get("deletionTimestamp"),
    )


def job_signature(body: Any) -> tuple[Any, ...]:
    """The parts of a child Job that `observe` reads (see observe.observe_job)."""
    meta = body.get("metadata", {})
    status = body.get("status") or {}
    conditions = tuple((c.get("type"), c.get("status")) for c in status.get("conditions") or [])
    # No uid: a Job's DELETED event forgets its signature, and the signature of a Job we
    # are about to create is remembered before the server gives it one.
    return (
        meta.get("deletionTimestamp"),
        bool((body.get("spec") or {}).get("suspend")),
        status.get("active"),
        status.get("ready"),
        status.get("succeeded"),
        status.get("failed"),
        conditions,
    )


# A pod not seen before counts as not stuck: its creation, scheduling and start are news
# its Job's status carries (active, ready), not the pod's.
POD_NOT_STUCK: tuple[Any, ...] = (None, None)


def pod_signature(body: Any) -> tuple[Any, ...]:
    """What `observe.pod_waiting` reports for a trainer pod: why it is stuck, or nothing.
    A pod going through its normal start changes nothing here."""
    waiting = pod_waiting(body)
    return (waiting.reason, waiting.message) if waiting else POD_NOT_STUCK


def _child_event(
    memo: Controller,
    kind: str,
    event: Any,
    body: Any,
    namespace: str | None,
    name: str,
    labels: Mapping[str, str],
    signature: Callable[[Any], tuple[Any, ...]],
) -> None:
    """Enqueue the owning FineTuneJob of a child Job or pod when what it reads changed."""
    key = _owner_key(namespace, labels)
    if key is None:
        return
    deleted = event.get("type") == "DELETED"
    full = event.get("object") or dict(body)
    if kind == "job":
        memo.children.job_event(key, full, deleted=deleted)
    else:
        memo.children.pod_event(key, full, deleted=deleted)
    if deleted:
        memo.seen.pop((kind, (namespace or "", name)), None)
        if kind == "job":
            memo.queue.add(key)
        return
    unseen = POD_NOT_STUCK if kind == "pod" else None
    memo.enqueue_if_changed((kind, (namespace or "", name)), signature(body), key, unseen)


def _owner_key(namespace: str | None, labels: Mapping[str, str]) -> Key | None:
    owner = labels.get(LABEL_JOB)
    return (namespace, owner) if namespace and owner else None


def connection_info(cfg: Any) -> kopf.ConnectionInfo:
    """kopf's credentials from a kubernetes.client.Configuration."""
    auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    token = auth.split(" ", 1)[1] if auth and " " in auth else auth
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        token=token,
        username=cfg.username or None,
        password=cfg.password or None,
    )


class NoDiffBase(kopf.DiffBaseStorage):
    """No "essence" of objects: kopf builds one per watch event (a deep copy of the whole
    body) to detect changes for on.create/on.update handlers, which this operator has
    none of; it was a fifth of the controller's CPU in a burst (docs/benchmarks.md).
    Nothing is ever stored on the objects either."""

    # The signatures are kopf's (it passes these keywords); nothing is read from them.
    def build(self, *, body: Any, extra_fields: Any = None) -> Any:  # noqa: ARG002
        return None

    def fetch(self, *, body: Any) -> Any:  # noqa: ARG002
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:  # noqa: ARG002
        return None


def make_registry() -> kopf.OperatorRegistry:
    """The kopf handlers, on a registry of their own (importing registers nothing)."""
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    async def _startup(settings: kopf.OperatorSettings, memo: Controller, **_: Any) -> None:
        # kopf posts k8s Events for its own handler outcomes; ours are the plan's.
        settings.posting.enabled = False
        # Only stateless on.event handlers exist; pin kopf's progress storage under our
        # prefix so nothing it might write collides with another kopf operator.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = NoDiffBase()
        settings.persistence.finalizer = f"{GROUP}/kopf-finalizer"
        # Only the Jobs and pods of FineTuneJobs, selected by the API server: the handlers'
        # `labels=` filter alone is applied after kopf has received and processed every
        # Job and pod event of the watched namespaces (all of a cluster's, with
        # --all-namespaces).
        settings.watching.label_selectors["batch", "jobs"] = LABEL_JOB
        settings.watching.label_selectors["pods"] = LABEL_JOB
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        # One line per handled watch event is noise (and CPU) at scale; keep warnings.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        memo.start()

    @kopf.on.login(registry=registry)
    def _login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
        # A registry of our own has none of kopf's default login handlers; log in with the
        # adapter's configuration (--kubeconfig, $KUBECONFIG or the pod's account), so kopf
        # and the adapter always talk to the same server as the same user.
        return connection_info(memo.kube.api.configuration)

    @kopf.on.cleanup(registry=registry)
    async def _cleanup(memo: Controller, **_: Any) -> None:
        await memo.stop()

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def _finetunejob(
        event: Any,
        body: Any,
        namespace: str | None,
        name: str,
        memo: Any,
        **_: Any,
    ) -> None:
        if not namespace or not name:
            return
        key = (namespace, name)
        if event.get("type") == "DELETED":
            with memo.bodies_lock:
                memo.known.discard(key)
                memo.bodies.pop(key, None)
            memo.queue.forget(key)
            memo.children.forget(key)
            memo.phases.set(key, None)
            memo.seen.pop(("ftj", key), None)
            return
        memo.known.add(key)
        memo.remember_body(key, event.get("object") or dict(body))
        memo.enqueue_if_changed(("ftj", key), ftj_signature(body), key)

    @kopf.on.event("batch", "v1", "jobs", labels={LABEL_JOB: kopf.PRESENT}, registry=registry)
    async def _child_job(event: Any, body: Any, namespace: str | None, name: str,
                         labels: Mapping[str, str], memo: Any, **_: Any) -> None:  # fmt: skip
        # A deleted Job is news (the attempt is gone); a deleted pod is not (its Job says).
        _child_event(memo, "job", event, body, namespace, name, labels, job_signature)

    @kopf.on.event("", "v1", "pods", labels={LABEL_JOB: kopf.PRESENT}, registry=registry)
    async def _trainer_pod(event: Any, body: Any, namespace: str | None, name: str,
                           labels: Mapping[str, str], memo: Any, **_: Any) -> None:  # fmt: skip
        _child_event(memo, "pod", event, body, namespace, name, labels, pod_signature)

    return registry
