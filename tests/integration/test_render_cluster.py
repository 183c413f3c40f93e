"""Rendered objects on a real control plane (kube-apiserver, Job controller, kwok nodes).

What unit tests cannot show: the pods are admitted in a namespace enforcing the Pod
Security Standard `restricted`; the Job controller names and indexes them as the torchrun
line expects (host name `<job>-<i>`, subdomain = the headless Service, completion index
in the variable the command expands); GPU pods tolerate the GPU nodes' taint; the
podFailurePolicy turns the trainer's exit codes into the Job failure the controller
classifies; and the trainer's ServiceAccount may patch only its own FineTuneJob's status.
"""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from ftjobs.api import constants as c
from ftjobs.render import child_names, is_namespace_identity, render_job
from ftjobs.sdk.schema import crd_yaml
from tests.builders import JobBuilder, make_job
from tests.fixtures.controlplane import ControlPlane, wait_until

# The kwok stage hook: a running pod with this annotation terminates with that exit code.
EXIT_CODE_ANNOTATION = "ftjobs.dev/test-exit-code"


def kubectl_json(cluster: ControlPlane, *args: str) -> Any:
    r = cluster.kubectl(*args, "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="session")
def crd(cluster: ControlPlane) -> None:
    """The FineTuneJob CRD, so the children have a real owner (uid, garbage collection)."""
    r = cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=crd_yaml())
    assert r.returncode == 0, r.stderr
    r = cluster.kubectl("wait", "--for=condition=Established", f"crd/{c.CRD_NAME}", "--timeout=60s")
    assert r.returncode == 0, r.stderr


@pytest.fixture
def restricted(cluster: ControlPlane, namespace: str) -> str:
    r = cluster.kubectl(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )
    assert r.returncode == 0, r.stderr
    return namespace


def submit(
    cluster: ControlPlane,
    namespace: str,
    builder: JobBuilder,
    *,
    attempt: int = 1,
    pod_annotations: dict[str, str] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Create the FineTuneJob (for its uid) and the rendered children; (name, objects)."""
    name = f"r-{uuid.uuid4().hex[:8]}"
    builder.set("metadata.name", name).namespace(namespace)
    job = builder.build()
    r = cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(job.to_manifest()))
    assert r.returncode == 0, r.stderr
    uid = json.loads(r.stdout)["metadata"]["uid"]
    objects = render_job(
        job, namespace=namespace, name=name, uid=uid, attempt=attempt, resume=attempt > 1
    )
    if pod_annotations:
        kind = {o["kind"]: o for o in objects}
        kind["Job"]["spec"]["template"]["metadata"]["annotations"].update(pod_annotations)
    # The namespace's shared trainer identity is there once for all jobs (as the
    # controller makes it): applied, the job's own objects created.
    shared = [o for o in objects if is_namespace_identity(o)]
    if shared:
        path = Path(tempfile.mkdtemp()) / "identity.yaml"
        path.write_text(yaml.safe_dump_all(shared, sort_keys=False))
        r = cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", str(path))
        assert r.returncode == 0, r.stdout + r.stderr
    path = Path(tempfile.mkdtemp()) / "objects.yaml"
    path.write_text(
        yaml.safe_dump_all([o for o in objects if not is_namespace_identity(o)], sort_keys=False)
    )
    r = cluster.kubectl("create", "-n", namespace, "-f", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    # PodSecurity only warns about a Job's template; the pods are what it refuses.
    assert "violate PodSecurity" not in r.stderr, r.stderr
    return name, objects


def pods(cluster: ControlPlane, namespace: str, name: str, attempt: int) -> list[dict[str, Any]]:
    selector = f"{c.LABEL_JOB}={name},{c.LABEL_ATTEMPT}={attempt}"
    items: list[dict[str, Any]] = kubectl_json(
        cluster, "get", "pods", "-n", namespace, "-l", selector
    )["items"]
    return items


def running_pods(
    cluster: ControlPlane, namespace: str, name: str, attempt: int, count: int
) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        got = pods(cluster, namespace, name, attempt)
        running = [p for p in got if p["status"].get("phase") == "Running"]
        return running if len(running) == count else None

    try:
        result: list[dict[str, Any]] = wait_until(f"{count} running pods", ready, 90, interval=0.5)
    except Exception:
        events = cluster.kubectl("get", "events", "-n", namespace).stdout
        raise AssertionError(f"pods of {name} not running; events:\n{events}") from None
    return result


def test_gpu_pods_are_admitted_restricted_indexed_and_on_gpu_nodes(
    cluster: ControlPlane, restricted: str, crd: None
) -> None:
    builder = make_job().nodes(2).gpus(8).zero(3).bf16().cpu("8").memory("32Gi").shm("8Gi")
    name, _ = submit(cluster, restricted, builder.credentials("s3-credentials"), attempt=2)
    names = child_names(name, 2)
    got = sorted(
        running_pods(cluster, restricted, name, 2, 2),
        key=lambda p: int(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]),
    )
    for index, pod in enumerate(got):
        spec = pod["spec"]
        # <job>-<i>.<service> is the torchrun master address for i = 0.
        assert spec["hostname"] == f"{names.job}-{index}"
        assert spec["subdomain"] == names.service
        assert spec["nodeName"].startswith("kwok-gpu-")
        env = spec["containers"][0]["env"]
        # The Job controller keeps our single definition of the index variable.
        assert [e["name"] for e in env].count("JOB_COMPLETION_INDEX") == 1
        assert pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == str(
            index
        )
    assert len({p["spec"]["nodeName"] for p in got}) == 2  # 8 GPUs each: one pod per node


def test_cpu_pods_are_admitted_and_the_service_selects_them(
    cluster: ControlPlane, restricted: str, crd: None
) -> None:
    builder = make_job().nodes(2).procs(2).toleration("dedicated", "ml").node_selector(type="kwok")
    name, _ = submit(cluster, restricted, builder)
    running_pods(cluster, restricted, name, 1, 2)
    service = child_names(name, 1).service

    def endpoints() -> bool:
        slices = kubectl_json(
            cluster,
            "get",
            "endpointslices",
            "-n",
            restricted,
            "-l",
            f"kubernetes.io/service-name={service}",
        )["items"]
        hosts = {e.get("hostname") for s in slices for e in s.get("endpoints") or []}
        return hosts == {f"{service}-0", f"{service}-1"}

    wait_until("both pods behind the headless Service", endpoints, 60, interval=0.5)


def test_a_queued_job_is_created_suspended(
    cluster: ControlPlane, namespace: str, crd: None
) -> None:
    name, _ = submit(cluster, namespace, make_job().queue("team-a"))
    job = kubectl_json(cluster, "get", "job", child_names(name, 1).job, "-n", namespace)
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"][c.LABEL_KUEUE_QUEUE] == "team-a"
    assert pods(cluster, namespace, name, 1) == []


def failed_condition(cluster: ControlPlane, namespace: str, job: str) -> dict[str, Any]:
    def failed() -> dict[str, Any] | None:
        obj = kubectl_json(cluster, "get", "job", job, "-n", namespace)
        for cond in obj.get("status", {}).get("conditions") or []:
            if cond["type"] == "Failed" and cond["status"] == "True":
                return dict(cond)
        return None

    result: dict[str, Any] = wait_until(f"Job {job} failed", failed, 90, interval=0.5)
    return result


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (c.EXIT_PERMANENT, "PodFailurePolicy"),
        (c.EXIT_RETRIABLE, "PodFailurePolicy"),
        (1, "BackoffLimitExceeded"),
    ],
)
def test_exit_codes_fail_the_whole_job_at_once(
    cluster: ControlPlane, namespace: str, crd: None, code: int, reason: str
) -> None:
    name, _ = submit(cluster, namespace, make_job().nodes(2))
    running = running_pods(cluster, namespace, name, 1, 2)
    rank1 = next(
        p
        for p in running
        if p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "1"
    )
    r = cluster.kubectl(
        "annotate",
        "pod",
        rank1["metadata"]["name"],
        "-n",
        namespace,
        f"{EXIT_CODE_ANNOTATION}={code}",
    )
    assert r.returncode == 0, r.stderr
    cond = failed_condition(cluster, namespace, child_names(name, 1).job)
    assert cond["reason"] == reason, cond
    if reason == "PodFailurePolicy":
        # What the controller parses to classify the failure once the pods are gone.
        match = re.search(r"exit code (\d+)", cond["message"])
        assert match and int(match.group(1)) == code, cond["message"]
        assert "container trainer" in cond["message"].lower(), cond["message"]


def can_i(cluster: ControlPlane, namespace: str, sa: str, *args: str) -> bool:
    r = cluster.kubectl(
        "auth", "can-i", *args, "-n", namespace, f"--as=system:serviceaccount:{namespace}:{sa}"
    )
    return r.stdout.strip() == "yes"


def test_the_trainer_may_patch_only_its_own_status(
    cluster: ControlPlane, namespace: str, crd: None
) -> None:
    # A job with an identity of its own: its Role names it alone.
    own = {"annotations": {"example.com/identity": "team-a"}}
    name, _ = submit(cluster, namespace, make_job().spec("serviceAccount", own))
    other, _ = submit(cluster, namespace, make_job())
    sa = child_names(name, 1).service_account
    res = f"{c.PLURAL}.{c.GROUP}"
    assert can_i(cluster, namespace, sa, "patch", f"{res}/{name}", "--subresource=status")
    assert can_i(cluster, namespace, sa, "get", f"{res}/{name}")
    assert not can_i(cluster, namespace, sa, "patch", f"{res}/{other}", "--subresource=status")
    assert not can_i(cluster, namespace, sa, "patch", f"{res}/{name}")
    assert not can_i(cluster, namespace, sa, "delete", f"{res}/{name}")
    assert not can_i(cluster, namespace, sa, "list", res)
    assert not can_i(cluster, namespace, sa, "get", "secrets")
    # The namespace's shared identity: RBAC allows every job's status (the admission policy
    # keeps each pod to its own job: tests/integration/test_trainer_policy.py), and
    # nothing more.
    shared = c.TRAINER_IDENTITY
    assert can_i(cluster, namespace, shared, "patch", f"{res}/{other}", "--subresource=status")
    assert not can_i(cluster, namespace, shared, "patch", f"{res}/{other}")
    assert not can_i(cluster, namespace, shared, "delete", f"{res}/{other}")
    assert not can_i(cluster, namespace, shared, "list", res)
    assert not can_i(cluster, namespace, shared, "get", "secrets")
