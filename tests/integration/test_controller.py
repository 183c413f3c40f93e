"""The controller on the real control plane: children, phases, failures, suspend, Kueue,
cancel, deletion, RBAC of the trainer's account, PSS restricted, secrets kept secret.

One controller subprocess (`python -m ftjobs.controller --all-namespaces`) serves the
module; kwok runs the pods on fake CPU and GPU nodes and `kwok_pod_exit` ends them with
the exit code a trainer would return.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from ftjobs.api.constants import (
    CONFIG_ANNOTATION,
    EXIT_PERMANENT,
    EXIT_RETRIABLE,
    LABEL_KUEUE_QUEUE,
    TRAINER_IDENTITY,
)
from ftjobs.api.status import Progress
from ftjobs.api.trainer_policy import POLICY_NAME
from ftjobs.k8s import Kube
from ftjobs.k8s.errors import KubeError
from ftjobs.trainer.progress_k8s import KubernetesProgressReporter
from tests.e2e.harness import (
    Api,
    ControllerProcess,
    ftj_manifest,
    install_crd,
    kubectl,
    serve_controller,
    service_account_token,
    token_kubeconfig,
    wait_for,
)

SECRET_VALUE = f"s3cr3t-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def api(cluster: Any) -> Api:
    install_crd(cluster)
    return Api(cluster.kubeconfig)


@pytest.fixture(scope="module")
def controller(cluster: Any, api: Api) -> Iterator[ControllerProcess]:
    yield from serve_controller(cluster, "ftjobs-it")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exit_pods(
    cluster: Any, api: Api, ns: str, name: str, attempt: int, code: int, message: str = ""
) -> None:
    """End the attempt's running pods as a trainer would (kwok test hook of the fixture)."""
    for pod in api.running_pods(ns, name, attempt, 1):
        cluster.pod_exit(pod["metadata"]["name"], ns, code, message)


def owner_uids(obj: dict[str, Any]) -> set[str]:
    return {r["uid"] for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")}


def condition(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == ctype)


def run_to_running(api: Api, ns: str, name: str, **spec: Any) -> dict[str, Any]:
    api.create_ftj(ftj_manifest(name, ns, **spec))
    return api.wait_phase(ns, name, "Running")


# --- the happy path -----------------------------------------------------------------------


def test_children_with_owner_references_then_running_then_succeeded(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    name = "happy"
    created = api.create_ftj(ftj_manifest(name, namespace, resources={"nodes": 2}))
    uid = created["metadata"]["uid"]
    status = api.wait_phase(namespace, name, "Running")
    assert status["attempt"] == 1 and status["observedGeneration"] == 1
    assert status.get("startTime")
    kube = api.kube
    job = kube.get("batch/v1", "Job", namespace, f"{name}-1")
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 2
    svc = kube.get("v1", "Service", namespace, f"{name}-1")
    assert svc["spec"]["clusterIP"] == "None"
    for api_version, kind, obj_name in [
        ("v1", "Service", f"{name}-1"),
        ("networking.k8s.io/v1", "NetworkPolicy", f"{name}-1"),
        ("batch/v1", "Job", f"{name}-1"),
    ]:
        obj = kube.get(api_version, kind, namespace, obj_name)
        assert owner_uids(obj) == {uid}, f"{kind} {obj_name} is not owned by the FineTuneJob"
    # The trainer's config is no ConfigMap: the Job's pod template carries it, and every
    # pod has it as the annotation its downwardAPI volume turns into job.json.
    assert not kubectl(
        cluster, "get", "configmaps", "-n", namespace, "-o", "name", "-l", f"ftjobs.dev/job={name}"
    ).strip()
    assert api.trainer_config(namespace, f"{name}-1")["attempt"] == 1
    # What docs/architecture.md tells a user to run to read it.
    path = "{.spec.template.metadata.annotations['ftjobs\\.dev/trainer-config']}"
    shown = kubectl(cluster, "get", "job", f"{name}-1", "-n", namespace, "-o", f"jsonpath={path}")
    assert json.loads(shown) == api.trainer_config(namespace, f"{name}-1")
    # The trainer runs as the namespace's shared identity: there, and nobody's to delete.
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == TRAINER_IDENTITY
    for api_version, kind in [
        ("v1", "ServiceAccount"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ]:
        assert owner_uids(kube.get(api_version, kind, namespace, TRAINER_IDENTITY)) == set()
    pods = api.running_pods(namespace, name, 1, 2)
    template = job["spec"]["template"]["metadata"]["annotations"]
    for pod in pods:
        assert pod["metadata"]["annotations"][CONFIG_ANNOTATION] == template[CONFIG_ANNOTATION]
    assert all(p["spec"].get("nodeName") for p in pods)
    for pod in pods:
        cluster.pod_exit(pod["metadata"]["name"], namespace, 0)
    status = api.wait_phase(namespace, name, "Succeeded")
    assert status["completionTime"] >= status["startTime"]
    assert condition(status, "Succeeded")["status"] == "True"
    assert status["outputModel"].endswith(f"/{namespace}/{name}/model")
    out = kubectl(
        cluster,
        "wait",
        "-n",
        namespace,
        "--for=condition=Succeeded",
        f"ftj/{name}",
        "--timeout=30s",
    )
    assert "condition met" in out
    reasons = {e["reason"] for e in api.events(namespace, name)}
    assert {"Created", "Running", "Succeeded"} <= reasons


def test_gpu_job_lands_on_gpu_nodes(
    api: Api, controller: ControllerProcess, namespace: str
) -> None:
    name = "gpus"
    run_to_running(
        api,
        namespace,
        name,
        resources={"nodes": 2, "gpusPerNode": 8},
        hyperparameters={"globalBatchSize": 16, "microBatchSize": 1},
    )
    for pod in api.running_pods(namespace, name, 1, 2):
        node = api.kube.get("v1", "Node", None, pod["spec"]["nodeName"])
        assert node["status"]["allocatable"].get("nvidia.com/gpu") == "8"


# --- failures -----------------------------------------------------------------------------


def test_retriable_exit_starts_attempt_two_that_resumes(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    name = "retry"
    run_to_running(api, namespace, name)
    exit_pods(cluster, api, namespace, name, 1, EXIT_RETRIABLE, "lost rendezvous peer")
    status = api.wait_phase(namespace, name, "Restarting", "Pending", "Running")
    wait_for("attempt 2", lambda: api.status(namespace, name).get("attempt") == 2, 60)
    status = api.status(namespace, name)
    assert status["restarts"] == 1
    config = api.trainer_config(namespace, f"{name}-2")
    assert config["attempt"] == 2 and config["resume"] is True
    api.wait_phase(namespace, name, "Running")
    reasons = [e["reason"] for e in api.events(namespace, name)]
    assert "Restarting" in reasons and "AttemptCreated" in reasons


def test_permanent_exit_fails_at_once_with_the_message(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    name = "perm"
    run_to_running(api, namespace, name)
    exit_pods(
        cluster, api, namespace, name, 1, EXIT_PERMANENT, "dataset.fields.text: no column 'text'"
    )
    status = api.wait_phase(namespace, name, "Failed")
    failed = condition(status, "Failed")
    assert failed["reason"] == "PermanentFailure"
    assert "no column 'text'" in failed["message"]
    time.sleep(3)  # longer than the 1 s backoff: no second attempt may appear
    assert [j["metadata"]["name"] for j in api.jobs(namespace, name)] == [f"{name}-1"]
    assert api.status(namespace, name)["restarts"] == 0


def test_restarts_exhausted_fails(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    name = "exhaust"
    run_to_running(api, namespace, name, failurePolicy={"maxRestarts": 1})
    exit_pods(cluster, api, namespace, name, 1, EXIT_RETRIABLE)
    wait_for("attempt 2 running", lambda: api.status(namespace, name).get("attempt") == 2, 60)
    exit_pods(cluster, api, namespace, name, 2, EXIT_RETRIABLE)
    status = api.wait_phase(namespace, name, "Failed")
    assert condition(status, "Failed")["reason"] == "RestartsExhausted"
    assert status["restarts"] == 1


def test_the_same_failure_twice_stops_the_retries(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    name = "repeat"
    policy = {"maxRestarts": 5, "maxRepeatedFailures": 2}
    run_to_running(api, namespace, name, failurePolicy=policy)
    message = "RuntimeError: CUDA error: an illegal memory access at step {}"
    exit_pods(cluster, api, namespace, name, 1, EXIT_RETRIABLE, message.format(17))
    wait_for("attempt 2 running", lambda: api.status(namespace, name).get("attempt") == 2, 60)
    exit_pods(cluster, api, namespace, name, 2, EXIT_RETRIABLE, message.format(18))
    status = api.wait_phase(namespace, name, "Failed")
    failed = condition(status, "Failed")
    assert failed["reason"] == "RepeatedFailure", failed
    assert "attempts 1-2 failed the same way" in failed["message"]
    assert "illegal memory access" in failed["message"]
    assert status["restarts"] == 1 and status["lastFailure"]["attempts"] == 2
    assert "RepeatedFailure" in [e["reason"] for e in api.events(namespace, name)]
    time.sleep(3)  # longer than the backoff: no third attempt may appear
    assert len(api.jobs(namespace, name)) == 2


# --- deletion, cancel, TTL ----------------------------------------------------------------


def test_delete_garbage_collects_children(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    name = "gc"
    run_to_running(api, namespace, name)
    kubectl(cluster, "delete", "-n", namespace, f"ftj/{name}", "--wait=true", "--timeout=30s")

    def gone() -> bool:
        left = []
        for api_version, kind in [
            ("batch/v1", "Job"),
            ("v1", "Service"),
            ("networking.k8s.io/v1", "NetworkPolicy"),
            ("v1", "ServiceAccount"),
            ("rbac.authorization.k8s.io/v1", "Role"),
            ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ]:
            left += [
                o["metadata"]["name"]
                for o in api.kube.list(api_version, kind, namespace, f"ftjobs.dev/job={name}")
            ]
        return not left and not api.pods(namespace, name)

    wait_for("children garbage-collected", gone, 90)


def test_cancel_keeps_the_record_and_deletes_jobs(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    name = "cancel"
    run_to_running(api, namespace, name)
    kubectl(cluster, "annotate", "-n", namespace, f"ftj/{name}", "ftjobs.dev/cancel-requested=test")
    status = api.wait_phase(namespace, name, "Cancelled")
    assert condition(status, "Failed")["reason"] == "Cancelled"
    wait_for("jobs deleted", lambda: not api.jobs(namespace, name), 30)
    assert api.ftj(namespace, name) is not None


def test_ttl_deletes_children_but_keeps_the_record(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    name = "ttl"
    run_to_running(api, namespace, name, ttlSecondsAfterFinished=1)
    exit_pods(cluster, api, namespace, name, 1, 0)
    api.wait_phase(namespace, name, "Succeeded")
    wait_for(
        "children deleted",
        lambda: (
            not api.jobs(namespace, name)
            and api.kube.get_or_none("v1", "Service", namespace, f"{name}-1") is None
        ),
        30,
    )
    assert api.phase(namespace, name) == "Succeeded"


def test_active_deadline_fails_the_job(
    api: Api, controller: ControllerProcess, namespace: str
) -> None:
    name = "deadline"
    run_to_running(api, namespace, name, activeDeadlineSeconds=3)
    status = api.wait_phase(namespace, name, "Failed", timeout=30)
    assert condition(status, "Failed")["reason"] == "DeadlineExceeded"
    assert status["restarts"] == 0
    wait_for(
        "pods stopped",
        lambda: (
            not [
                p
                for p in api.pods(namespace, name)
                if (p.get("status") or {}).get("phase") == "Running"
            ]
        ),
        60,
    )


# --- suspend and Kueue --------------------------------------------------------------------


def test_suspend_then_resume(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    name = "susp"

    def set_suspend(value: bool) -> None:
        patch = json.dumps({"spec": {"suspend": value}}, separators=(",", ":"))
        kubectl(cluster, "patch", "-n", namespace, f"ftj/{name}", "--type=merge", "-p", patch)

    run_to_running(api, namespace, name)
    set_suspend(True)
    status = api.wait_phase(namespace, name, "Queued")
    assert condition(status, "Suspended")["status"] == "True"
    wait_for(
        "job suspended",
        lambda: (
            api.kube.get("batch/v1", "Job", namespace, f"{name}-1")["spec"].get("suspend") is True
        ),
        30,
    )
    wait_for(
        "pods stopped",
        lambda: (
            not [p for p in api.pods(namespace, name) if not p["metadata"].get("deletionTimestamp")]
        ),
        60,
    )
    set_suspend(False)
    # Attempt 1 ran and checkpointed on SIGTERM; its config starts clean, so attempt 2
    # resumes from LATEST. Not a failure, not a restart.
    wait_for("attempt 2", lambda: api.status(namespace, name).get("attempt") == 2, 60)
    status = api.wait_phase(namespace, name, "Running")
    assert condition(status, "Suspended")["status"] == "False"
    assert status["restarts"] == 0 and status["attempt"] == 2
    assert api.trainer_config(namespace, f"{name}-2")["resume"] is True


def test_kueue_job_waits_until_admitted(
    api: Api, controller: ControllerProcess, namespace: str
) -> None:
    name = "queued"
    api.create_ftj(ftj_manifest(name, namespace, queueName="team-a"))
    status = api.wait_phase(namespace, name, "Queued")
    assert condition(status, "Queued")["reason"] == "AwaitingAdmission"
    job = wait_for("job", lambda: api.kube.get_or_none("batch/v1", "Job", namespace, f"{name}-1"))
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"][LABEL_KUEUE_QUEUE] == "team-a"
    time.sleep(2)  # the controller must not unsuspend it itself
    assert api.kube.get("batch/v1", "Job", namespace, f"{name}-1")["spec"]["suspend"] is True
    assert not api.pods(namespace, name)
    # Kueue admits the workload: it unsuspends the Job.
    api.kube.merge_patch("batch/v1", "Job", namespace, f"{name}-1", {"spec": {"suspend": False}})
    status = api.wait_phase(namespace, name, "Running")
    assert condition(status, "Queued")["status"] == "False"
    # Kueue preempts it: suspended again, back to Queued, not a restart.
    api.kube.merge_patch("batch/v1", "Job", namespace, f"{name}-1", {"spec": {"suspend": True}})
    status = api.wait_phase(namespace, name, "Queued")
    assert status["restarts"] == 0 and status["attempt"] == 1


# --- the trainer's account, pod security, secrets ----------------------------------------


def test_trainer_account_may_patch_its_own_status_and_nothing_else(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    """RBAC gives the namespace's shared trainer identity get/patch on FineTuneJob status
    and nothing else; that it is its own job's status only is the admission policy's part
    (tests/integration/test_trainer_policy.py has the cases)."""
    name = "rbac"
    run_to_running(api, namespace, name)
    api.create_ftj(ftj_manifest("other", namespace))
    who = f"--as=system:serviceaccount:{namespace}:{TRAINER_IDENTITY}"

    def can(*args: str) -> str:
        return kubectl(cluster, "auth", "can-i", "-n", namespace, who, *args, check=False).strip()

    assert can("patch", f"finetunejobs.ftjobs.dev/{name}", "--subresource=status") == "yes"
    assert can("get", f"finetunejobs.ftjobs.dev/{name}", "--subresource=status") == "yes"
    # A Role cannot name "the pod's own job": RBAC allows every job's status ...
    assert can("patch", "finetunejobs.ftjobs.dev/other", "--subresource=status") == "yes"
    assert can("patch", f"finetunejobs.ftjobs.dev/{name}") == "no"
    assert can("delete", f"finetunejobs.ftjobs.dev/{name}") == "no"
    assert can("list", "finetunejobs.ftjobs.dev") == "no"
    assert can("get", "secrets") == "no"
    assert can("create", "pods") == "no"
    assert can("patch", "jobs.batch") == "no"
    # ... and admission refuses the other job's to the trainer pod's own token.
    kube = Kube.connect(trainer_kubeconfig(cluster, api, namespace, name))
    kube.patch_finetunejob_status(namespace, name, {"progress": {"step": 1}})
    with pytest.raises(KubeError) as refused:
        kube.patch_finetunejob_status(namespace, "other", {"progress": {"step": 1}})
    assert refused.value.status == 403 and POLICY_NAME in refused.value.message
    assert "progress" not in api.status(namespace, "other")


def trainer_kubeconfig(cluster: Any, api: Api, namespace: str, name: str) -> str:
    """What rank 0 of `name`'s first attempt authenticates with: its pod's ServiceAccount,
    the token bound to the pod as the kubelet's projected token is (the trainer admission
    policy admits the shared identity's writes only from a pod of the job's own Job)."""
    pod = api.running_pods(namespace, name, 1, 1)[0]
    token = service_account_token(cluster, namespace, pod["spec"]["serviceAccountName"], pod)
    path = Path(cluster.kubeconfig).parent / f"trainer-{namespace}-{name}.yaml"
    return str(token_kubeconfig(cluster, token, path, namespace))


def test_progress_reporter_publishes_through_the_trainer_account(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    name = "progress"
    run_to_running(api, namespace, name)
    kube = Kube.connect(trainer_kubeconfig(cluster, api, namespace, name))
    reporter = KubernetesProgressReporter(namespace, name, kube=kube, interval=0.5)
    for step in range(1, 4):
        reporter.report(Progress(step=step, total_steps=4, loss=2.0 / step, percent=step * 25))
    reporter.checkpoint(3, f"s3://outputs/runs/{namespace}/{name}/checkpoints/step-000000003")
    assert reporter.flush(10)
    status = api.status(namespace, name)
    assert status["progress"]["step"] == 3 and status["progress"]["totalSteps"] == 4
    assert status["latestCheckpoint"]["step"] == 3
    # The controller's next transitions leave the trainer's fields alone.
    exit_pods(cluster, api, namespace, name, 1, 0)
    status = api.wait_phase(namespace, name, "Succeeded")
    assert status["progress"]["step"] == 3 and status["latestCheckpoint"]["step"] == 3
    reporter.finished({})
    # The same account cannot touch another FineTuneJob's status.
    api.create_ftj(ftj_manifest("victim", namespace))
    stray = KubernetesProgressReporter(namespace, "victim", kube=kube, interval=0)
    stray.report(Progress(step=99))
    stray.flush(3)
    stray.close()
    assert stray.errors >= 1 and stray.sent == 0
    assert "progress" not in api.status(namespace, "victim")


def test_reporter_throttles_progress_but_not_checkpoints(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    name = "throttle"
    run_to_running(api, namespace, name)
    kube = Kube.connect(trainer_kubeconfig(cluster, api, namespace, name))
    reporter = KubernetesProgressReporter(namespace, name, kube=kube, interval=30)
    for step in range(1, 51):
        reporter.report(Progress(step=step, total_steps=100))
    wait_for("the first report", lambda: reporter.sent >= 1, 10)
    time.sleep(1)
    assert reporter.sent == 1, "50 reports within the interval must make one request"
    reporter.checkpoint(50, "s3://outputs/ckpt/step-50")
    wait_for("the checkpoint, at once", lambda: reporter.sent >= 2, 10)
    status = api.status(namespace, name)
    assert status["latestCheckpoint"]["step"] == 50
    assert status["progress"]["step"] == 50  # the newest progress rides along
    reporter.finished({})
    assert reporter.errors == 0


def test_reporter_never_stops_training_when_the_api_is_down() -> None:
    # The adapter itself, pointed at a port where nothing listens.
    kube = Kube(closed_port_client(), timeout=0.5)
    reporter = KubernetesProgressReporter("ns", "x", kube=kube, interval=0, timeout=0.5)
    started = time.monotonic()
    for step in range(200):
        reporter.report(Progress(step=step))
    reporter.checkpoint(1, "s3://x/ckpt")
    elapsed = time.monotonic() - started
    assert elapsed < 0.5, f"reporting blocked the training loop for {elapsed:.2f}s"
    reporter.finished({})
    assert reporter.sent == 0 and reporter.errors >= 1


def closed_port_client() -> Any:
    cfg = client.Configuration()
    cfg.host = "https://127.0.0.1:9"  # discard port: nothing listens
    cfg.verify_ssl = False
    return client.ApiClient(cfg)


def test_pods_admitted_under_pss_restricted(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    kubectl(
        cluster,
        "label",
        "namespace",
        namespace,
        "--overwrite",
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )
    name = "restricted"
    run_to_running(api, namespace, name, resources={"nodes": 2})
    assert len(api.running_pods(namespace, name, 1, 2)) == 2


def test_secret_value_never_appears_in_logs_events_or_status(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    api.kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3-creds", "namespace": namespace},
            "stringData": {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": SECRET_VALUE},
        }
    )
    name = "secret"
    run_to_running(
        api,
        namespace,
        name,
        storage={"output": "s3://outputs/runs", "credentialsSecret": "s3-creds"},
    )
    exit_pods(cluster, api, namespace, name, 1, EXIT_RETRIABLE, "storage hiccup")
    wait_for("attempt 2", lambda: api.status(namespace, name).get("attempt") == 2, 60)
    exit_pods(cluster, api, namespace, name, 2, 0)
    api.wait_phase(namespace, name, "Succeeded")
    assert SECRET_VALUE not in controller.logs()
    assert SECRET_VALUE not in json.dumps(api.events(namespace, name))
    assert SECRET_VALUE not in json.dumps(api.ftj(namespace, name))
    # The pods get it only as a reference to the Secret.
    job = api.kube.get("batch/v1", "Job", namespace, f"{name}-2")
    assert SECRET_VALUE not in json.dumps(job)


# --- HA -----------------------------------------------------------------------------------


def test_two_replicas_only_one_acts_and_a_standby_takes_over(
    cluster: Any, api: Api, namespace: str
) -> None:
    lease = f"ftjobs-ha-{uuid.uuid4().hex[:6]}"
    args = (
        "--namespace",
        namespace,
        "--lease-name",
        lease,
        "--lease-duration",
        "3",
        "--lease-renew",
        "0.5",
    )
    first = ControllerProcess(cluster.kubeconfig, *args, name="ha1").start()
    wait_for("first leads", lambda: '"leading"' in first.logs(), 60)
    health_port = free_port()
    second = ControllerProcess(
        cluster.kubeconfig, *args, "--health-port", str(health_port), name="ha2"
    ).start()
    try:
        wait_for("second waits", lambda: "waiting for the leader lease" in second.logs(), 60)
        # A standby is alive (liveness must not kill it) and says what it is.
        health = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{health_port}/healthz", timeout=5).read()
        )
        assert health["role"] == "standby"
        api.create_ftj(ftj_manifest("ha-a", namespace))
        api.wait_phase(namespace, "ha-a", "Running")
        assert '"leading"' not in second.logs()
        # By record, not by substring: the random lease name in the standby's log may hold "ha-a".
        assert not [r for r in second.log_records() if str(r.get("ftj", "")).endswith("/ha-a")]
        first.kill()
        wait_for("second leads", lambda: '"leading"' in second.logs(), 30)
        api.create_ftj(ftj_manifest("ha-b", namespace))
        api.wait_phase(namespace, "ha-b", "Running")
        assert [j["metadata"]["name"] for j in api.jobs(namespace, "ha-a")] == ["ha-a-1"]
    finally:
        first.kill()
        second.stop()


# --- model.fromJob ------------------------------------------------------------------------


def from_job_manifest(name: str, namespace: str, parent: str) -> dict[str, Any]:
    manifest = ftj_manifest(name, namespace)
    manifest["spec"]["model"] = {"fromJob": parent}
    return manifest


def test_from_job_waits_for_the_parent_then_starts_from_its_model(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str
) -> None:
    run_to_running(api, namespace, "parent-a")
    api.create_ftj(from_job_manifest("child-a", namespace, "parent-a"))
    waiting = wait_for(
        "child-a waiting for its parent",
        lambda: (
            (s := api.status(namespace, "child-a"))
            .get("message", "")
            .startswith("spec.model.fromJob: waiting")
            and s
        ),
        30,
    )
    assert waiting["phase"] == "Pending" and not waiting.get("attempt")
    assert api.kube.get_or_none("batch/v1", "Job", namespace, "child-a-1") is None
    exit_pods(cluster, api, namespace, "parent-a", 1, 0)
    parent = api.wait_phase(namespace, "parent-a", "Succeeded")
    status = api.wait_phase(namespace, "child-a", "Running", timeout=60)
    assert status["baseModel"] == parent["outputModel"]
    config = api.trainer_config(namespace, "child-a-1")
    assert config["spec"]["model"]["uri"] == parent["outputModel"]
    assert config["parent"] == {
        "name": "parent-a",
        "namespace": namespace,
        "uri": parent["outputModel"],
    }
    assert "FromJob" in {e["reason"] for e in api.events(namespace, "child-a")}


@pytest.mark.parametrize("parent_fails", [False, True], ids=["missing", "failed"])
def test_from_job_fails_with_the_field_path_when_the_parent_cannot_be_used(
    cluster: Any, api: Api, controller: ControllerProcess, namespace: str, parent_fails: bool
) -> None:
    parent = "parent-b" if parent_fails else "no-such-job"
    if parent_fails:
        run_to_running(api, namespace, parent)
        exit_pods(cluster, api, namespace, parent, 1, EXIT_PERMANENT, "bad data")
        api.wait_phase(namespace, parent, "Failed")
    api.create_ftj(from_job_manifest("child-b", namespace, parent))
    status = api.wait_phase(namespace, "child-b", "Failed")
    failed = condition(status, "Failed")
    assert failed["reason"] == "FromJobUnusable"
    assert failed["message"].startswith("spec.model.fromJob: ")
    assert ("ended Failed" if parent_fails else "not found") in failed["message"]
    assert api.kube.get_or_none("batch/v1", "Job", namespace, "child-b-1") is None
