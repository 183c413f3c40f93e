"""Preflight: what would fail, found before anything is created or any GPU is held.

`ftjobs preflight FILE` prints it; `ftjobs submit` runs it first and stops on a failure.
Checks, each ok / warn / fail / skip:
  gpus      some schedulable node (matching nodeSelector) has gpusPerNode allocatable
            nvidia.com/gpu, and enough such nodes exist for `nodes` pods;
  memory    per-GPU model-state memory for the model size and ZeRO stage (sdk/memory.py,
            DeepSpeed's estimator formulas) against the GPUs' memory when nodes publish
            it (the nvidia.com/gpu.memory label of GPU feature discovery, MiB);
  scratch   the export (and an s3:// or hf:// model's download) fits in
            spec.resources.scratchSize (api/export_size.py; the trainer checks again);
  secret    the Secrets the storage schemes name (spec.storage.credentialsSecret, ...)
            exist and hold their keys (render.schemes says which);
  storage   model, dataset and output URIs answer with those credentials: objects to
            read exist, the output prefix accepts a write (a probe object, deleted again);
  hub       hf:// models and datasets: the repo and the revision exist (sdk/hub_check.py),
            and spec.hub.tokenSecret exists with the key HF_TOKEN.
Storage is checked with the Secret's credentials when the caller may read the Secret,
else with the caller's own (environment), which the report says. file:// URIs are paths
inside the pods (volumes): not checked here.

Without a cluster (`client=None`: no kubeconfig, or `ftjobs preflight --offline`), the
checks that need one (gpus, secret) are reported as skipped and the others still run.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ftjobs.api.export_size import bytes_per_weight, export_bytes
from ftjobs.api.job import FineTuneJob
from ftjobs.api.quantity import format_bytes, gibibytes_quantity, quantity_bytes
from ftjobs.api.spec import Storage
from ftjobs.k8s import KubeError, jobs_api
from ftjobs.render.schemes import SecretNeed, secret_needs
from ftjobs.sdk import memory
from ftjobs.sdk.client import Client
from ftjobs.sdk.hub_check import check_hub
from ftjobs.storage import StorageError, backend, is_remote, open_store, parse_uri, scheme_of
from ftjobs.storage.probe import probe_write

Status = Literal["ok", "warn", "fail", "skip"]
GPU_RESOURCE = "nvidia.com/gpu"
GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"  # MiB, from GPU feature discovery
# scheme -> the values of the keys of its credentials Secret (read by preflight only)
Credentials = dict[str, dict[str, str]]
PROBE_NAME = ".ftjobs-preflight"
NO_CLUSTER = "no cluster (no kubeconfig or --offline): not checked"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def add(self, name: str, status: Status, message: str) -> None:
        self.checks.append(Check(name, status, message))


def preflight(
    job: FineTuneJob,
    client: Client | None,
    *,
    namespace: str | None = None,
    params: int | None = None,
    gpu_memory_bytes: int | None = None,
    check_storage: bool = True,
) -> Report:
    """Run every check for `job` as it would run in `namespace` of the client's cluster.

    `client=None`: no cluster; the checks that need one are skipped (and say so).
    """
    ns = namespace or job.metadata.namespace or (client.namespace if client else "default")
    report = Report()
    nodes: list[jobs_api.NodeGpus] = []
    creds: Credentials = {}
    if client is None:
        for name in ("gpus", "secret"):
            report.add(name, "skip", NO_CLUSTER)
    else:
        nodes = _check_gpus(job, client, report)
        creds = _check_secret(job, client, ns, report)
        _check_hub_secret(job, client, ns, report)
    size = (params, max(params // 20, 1)) if params else _model_size(job, creds)
    _check_memory(job, report, size, gpu_memory_bytes, nodes)
    _check_scratch(job, report, size)
    check_hub(job, report.add)
    if check_storage:
        _check_storage(job, ns, creds, report)
    return report


# --- GPUs --------------------------------------------------------------------------------


def _check_gpus(job: FineTuneJob, client: Client, report: Report) -> list[jobs_api.NodeGpus]:
    res = job.spec.resources
    if res.gpus_per_node == 0:
        report.add("gpus", "skip", "no GPUs requested (CPU training)")
        return []
    try:
        nodes = jobs_api.gpu_nodes(client.kube, GPU_RESOURCE)
    except KubeError as exc:
        report.add("gpus", "warn", f"cannot list nodes to check GPUs: {exc.reason}")
        return []
    selector = res.node_selector
    # What the pods will tolerate: the spec's tolerations plus the GPU taint's, which the
    # renderer adds to GPU pods.
    tolerations = [t.model_dump(by_alias=True, exclude_none=True) for t in res.tolerations]
    tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    fitting = [
        n
        for n in nodes
        if not n.unschedulable
        and all(n.labels.get(k) == v for k, v in selector.items())
        and n.gpus >= res.gpus_per_node
        and all(_tolerated(t, tolerations) for t in n.taints)
    ]
    most = max((n.gpus for n in nodes), default=0)
    where = f" matching nodeSelector {selector}" if selector else ""
    if not fitting:
        report.add(
            "gpus",
            "fail",
            f"no schedulable node{where} has {res.gpus_per_node} allocatable {GPU_RESOURCE} "
            f"(most on any node: {most})",
        )
    elif len(fitting) < res.nodes:
        report.add(
            "gpus",
            "fail",
            f"{res.nodes} pods need {res.gpus_per_node} {GPU_RESOURCE} each on separate nodes; "
            f"only {len(fitting)} node(s){where} can hold one",
        )
    else:
        report.add(
            "gpus",
            "ok",
            f"{len(fitting)} node(s){where} have >= {res.gpus_per_node} {GPU_RESOURCE} "
            f"(need {res.nodes})",
        )
    return fitting


def _tolerated(taint: dict[str, Any], tolerations: list[dict[str, Any]]) -> bool:
    """Kubernetes' matching: PreferNoSchedule never blocks; otherwise some toleration
    must match the taint's effect (or all effects) and key/value."""
    if taint.get("effect") == "PreferNoSchedule":
        return True
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator", "Equal") == "Exists":
            if not tol.get("key") or tol["key"] == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


# --- memory ------------------------------------------------------------------------------


def _model_size(job: FineTuneJob, creds: Credentials | None = None) -> tuple[int, int] | None:
    uri = job.spec.model.uri
    if uri is None:  # model.fromJob: the parent's model is not known before it finishes
        return None
    if is_remote(uri):
        with contextlib.suppress(Exception), _credentials(uri, creds or {}):
            store = open_store(uri, storage=job.spec.storage)
            found = memory.params_from_config(json.loads(store.get_bytes("config.json")))
            if found:
                return found
    count = memory.params_from_name(uri)
    # Without a config, the embeddings are the usual largest layer: guess ~5% of the model.
    return (count, max(count // 20, 1)) if count else None


def _check_memory(
    job: FineTuneJob,
    report: Report,
    size: tuple[int, int] | None,
    gpu_memory_bytes: int | None,
    nodes: list[jobs_api.NodeGpus],
) -> None:
    spec = job.spec
    if size is None:
        report.add(
            "memory",
            "skip",
            f"model size unknown for {spec.model.uri or spec.model.from_job} "
            "(pass --params, e.g. --params 7e9)",
        )
        return
    total, largest = size
    ds = spec.deepspeed
    gpus = spec.resources.gpus_per_node
    est = memory.estimate(
        total,
        largest_layer_params=largest,
        zero_stage=ds.zero_stage,
        gpus_per_node=gpus,
        nodes=spec.resources.nodes,
        offload_optimizer=ds.offload_optimizer != "none",
        offload_parameters=ds.offload_parameters != "none",
        trainable_params=max(total // 100, 1) if spec.lora is not None else None,
        # QLoRA keeps the frozen base in 4-bit NF4: half a byte per weight.
        frozen_bytes_per_param=0.5 if spec.performance.quantization == "nf4" else 2.0,
    )
    what = (
        f"~{total / 1e9:.2f}B params, ZeRO-{ds.zero_stage}, {spec.resources.world_size} "
        f"process(es): model states {format_bytes(est.gpu_bytes)} per "
        f"{'GPU' if gpus else 'process'} ({est.formula}; activations not included)"
    )
    if est.cpu_bytes:
        what += f", {format_bytes(est.cpu_bytes)} CPU memory per node"
    if gpus == 0:
        report.add("memory", "ok", what)
        return
    capacity = gpu_memory_bytes or _published_gpu_memory(nodes)
    if capacity is None:
        report.add("memory", "ok", what + "; GPU memory unknown (pass --gpu-memory 80Gi)")
    elif est.gpu_bytes > capacity:
        report.add(
            "memory",
            "fail",
            f"{what} > {format_bytes(capacity)} per GPU: raise zeroStage, offload, add GPUs, "
            "use LoRA, or QLoRA (performance.quantization: nf4)",
        )
    else:
        report.add("memory", "ok", f"{what} <= {format_bytes(capacity)} per GPU")


def _published_gpu_memory(nodes: list[jobs_api.NodeGpus]) -> int | None:
    sizes = [
        int(n.labels[GPU_MEMORY_LABEL]) * 1024 * 1024
        for n in nodes
        if n.labels.get(GPU_MEMORY_LABEL, "").isdigit()
    ]
    return min(sizes) if sizes else None


# --- scratch -----------------------------------------------------------------------------


def _check_scratch(job: FineTuneJob, report: Report, size: tuple[int, int] | None) -> None:
    """The export (and a downloaded model) against spec.resources.scratchSize."""
    spec = job.spec
    if size is None:
        report.add("scratch", "skip", f"model size unknown for {spec.model.uri} (pass --params)")
        return
    export = export_bytes(spec, params=size[0])
    # s3:// and hf:// models are downloaded to the scratch volume first.
    # (model.fromJob: an earlier job's output, downloaded too.)
    local = (spec.model.uri or "").startswith("file://")
    download = 0 if local else size[0] * bytes_per_weight(spec)
    needed = export + download
    what = f"the export ~{format_bytes(export)}"
    if download:
        what += f" + the downloaded model ~{format_bytes(download)}"
    limit = spec.resources.scratch_size
    if limit is None:
        report.add(
            "scratch",
            "skip",
            f"{what} go to the node's disk (no spec.resources.scratchSize to compare); set it "
            f"to at least {gibibytes_quantity(needed)} to reserve the space",
        )
    elif quantity_bytes(limit) < needed:
        report.add(
            "scratch",
            "fail",
            f"spec.resources.scratchSize {limit} < {what} (~{format_bytes(needed)}); set it "
            f"to at least {gibibytes_quantity(needed)}",
        )
    else:
        report.add("scratch", "ok", f"{what} fit in spec.resources.scratchSize {limit}")


# --- Secret ------------------------------------------------------------------------------


def _check_secret(job: FineTuneJob, client: Client, namespace: str, report: Report) -> Credentials:
    """Checks the Secrets the storage schemes name (render.schemes); returns, by scheme,
    the credentials of those the caller may read."""
    needs = secret_needs(job.spec)
    if not needs:
        report.add("secret", "skip", "no storage.credentialsSecret (pods use ambient identity)")
    creds: Credentials = {}
    for need in needs:
        values = _check_one_secret(need, client, namespace, report)
        if values is not None:
            creds[need.scheme] = values
    return creds


def _check_one_secret(
    need: SecretNeed, client: Client, namespace: str, report: Report
) -> dict[str, str] | None:
    name, check = need.name, need.check
    try:
        keys = jobs_api.secret_keys(client.kube, namespace, name)
    except KubeError as exc:
        report.add(
            check, "warn", f"cannot read Secret {namespace}/{name} ({exc.reason}): not checked"
        )
        return None
    if keys is None:
        report.add(check, "fail", f"Secret {namespace}/{name} does not exist ({need.field})")
        return None
    missing = [k for k in need.required if k not in keys]
    if missing:
        report.add(check, "fail", f"Secret {namespace}/{name} lacks {', '.join(missing)}")
        return None
    report.add(check, "ok", f"Secret {namespace}/{name} has {', '.join(need.required)}")
    try:
        return jobs_api.secret_values(
            client.kube, namespace, name, [*need.required, *need.optional]
        )
    except KubeError:
        return None


def _check_hub_secret(job: FineTuneJob, client: Client, namespace: str, report: Report) -> None:
    name = job.spec.hub.token_secret
    if not name:
        return
    try:
        keys = jobs_api.secret_keys(client.kube, namespace, name)
    except KubeError as exc:
        report.add("hub secret", "warn", f"cannot read Secret {namespace}/{name} ({exc.reason})")
        return
    if keys is None:
        report.add("hub secret", "fail", f"Secret {namespace}/{name} does not exist")
    elif "HF_TOKEN" not in keys:
        report.add("hub secret", "fail", f"Secret {namespace}/{name} lacks HF_TOKEN")
    else:
        report.add("hub secret", "ok", f"Secret {namespace}/{name} has HF_TOKEN")


# --- storage -----------------------------------------------------------------------------


def _credentials(uri: str, creds: Credentials) -> contextlib.AbstractContextManager[None]:
    """The Secret's credentials for `uri`'s scheme, for the block only (its backend knows
    how its client takes them)."""
    scheme = scheme_of(uri)
    return backend(scheme).credentials(creds.get(scheme, {}))


def _whose(uri: str, creds: Credentials) -> str:
    if scheme_of(uri) in creds:
        return "the Secret's credentials"
    return "your credentials (environment)"


def _targets(job: FineTuneJob) -> list[tuple[str, str, bool]]:
    """(label, uri, is_prefix) of everything the job reads."""
    spec = job.spec
    out = [("dataset.train", spec.dataset.train, False)]
    if spec.model.uri is not None:  # a model.fromJob parent is checked by the controller
        out.insert(0, ("model", spec.model.uri, True))
    if spec.dataset.validation:
        out.append(("dataset.validation", spec.dataset.validation, False))
    if spec.dataset.test:
        out.append(("dataset.test", spec.dataset.test, False))
    return out


def _check_storage(job: FineTuneJob, namespace: str, creds: Credentials, report: Report) -> None:
    storage = job.spec.storage
    for label, uri, is_prefix in _targets(job):
        if uri.startswith("hf://"):
            continue  # the hub checks
        if not is_remote(uri):
            scheme = uri.split("://", 1)[0]
            report.add(f"storage {label}", "skip", f"{scheme}:// is not checked here ({uri})")
            continue
        whose = _whose(uri, creds)
        try:
            with _credentials(uri, creds):
                found = _readable(uri, is_prefix, storage)
        except Exception as exc:  # every storage or network failure is a finding
            report.add(f"storage {label}", "fail", f"{uri}: {_describe(exc)} ({whose})")
            continue
        if found:
            report.add(f"storage {label}", "ok", f"{uri} is readable ({whose})")
        else:
            report.add(f"storage {label}", "fail", f"{uri}: nothing there ({whose})")
    output = storage.output
    if not is_remote(output):
        report.add("storage output", "skip", f"{output} is a path inside the pods")
        return
    whose = _whose(output, creds)
    name = job.metadata.name or job.metadata.generate_name or "unnamed"
    try:
        with _credentials(output, creds):
            store = open_store(output, storage=storage).child(f"{namespace}/{name}")
            probe_write(store, PROBE_NAME)
    except Exception as exc:
        report.add("storage output", "fail", f"{output}: {_describe(exc)} ({whose})")
    else:
        report.add("storage output", "ok", f"{output} accepts writes ({whose})")


def _readable(uri: str, is_prefix: bool, storage: Storage) -> bool:
    """An object at `uri`, or objects under it."""
    parsed = parse_uri(uri)
    key = (parsed.prefix or "").strip("/")
    if key and not is_prefix:
        parent, _, leaf = key.rpartition("/")
        root = str(replace(parsed, prefix=parent))
        if open_store(root, storage=storage).exists(leaf):
            return True
    return bool(open_store(uri, storage=storage).list())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StorageError):
        return str(exc)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


def as_dicts(report: Report) -> list[dict[str, Any]]:
    return [{"check": c.name, "status": c.status, "message": c.message} for c in report.checks]
