"""The controller under nothing but the Helm chart's RBAC, on every path it takes.

For both watch modes (the chart's per-namespace Role, and its cluster-wide ClusterRole),
the controller authenticates as the chart's ServiceAccount and drives one FineTuneJob per
path at once: success, retry, pruning of old attempts, cancel, TTL, suspend/resume. Any
RBAC refusal in its log fails the test; a negative control removes one verb and shows
the refusal is seen.
"""

from __future__ import annotations

import re
import tempfile
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from ftjobs.api.constants import ANNOTATION_CANCEL, API_VERSION, EXIT_RETRIABLE, KIND
from tests.e2e.harness import Api, ControllerProcess, ftj_manifest, install_crd, wait_for
from tests.fixtures.controlplane import ensure_binaries, free_port
from tests.integration.test_helm import (
    controller_container,
    docs,
    helm_install,
    helm_uninstall,
    kubectl_ok,
    template,
)


@pytest.fixture(scope="module")
def helm() -> str:
    return str(ensure_binaries(("helm",))["helm"])


def sa_kubeconfig(cluster: Any, namespace: str, account: str) -> str:
    """A kubeconfig that authenticates as ServiceAccount `namespace/account` (and only that)."""
    token = kubectl_ok(cluster, "create", "token", account, "-n", namespace, "--duration=1h")
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": "sa", "user": {"token": token.strip()}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}],
        "current-context": "sa",
    }
    path = Path(tempfile.mkdtemp()) / "sa.kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    return str(path)


# What the controller does, one FineTuneJob per path, all at once: each takes the admin
# Api (to play the pods' exits and the user's requests) and the job's name.
def _succeed(api: Api, cluster: Any, ns: str, name: str, attempt: int = 1) -> None:
    for pod in api.running_pods(ns, name, attempt, 1):
        cluster.pod_exit(pod["metadata"]["name"], ns, 0)
    api.wait_phase(ns, name, "Succeeded", timeout=90)


def _fail_retriably(api: Api, cluster: Any, ns: str, name: str, attempt: int) -> None:
    for pod in api.running_pods(ns, name, attempt, 1):
        cluster.pod_exit(pod["metadata"]["name"], ns, EXIT_RETRIABLE, "lost a peer")
    wait_for(
        f"{name} attempt {attempt + 1}",
        lambda: api.status(ns, name).get("attempt") == attempt + 1,
        90,
    )


def path_succeeds(api: Api, cluster: Any, ns: str, name: str) -> None:
    _succeed(api, cluster, ns, name)


def path_retry(api: Api, cluster: Any, ns: str, name: str) -> None:
    _fail_retriably(api, cluster, ns, name, 1)
    _succeed(api, cluster, ns, name, attempt=2)
    assert api.status(ns, name)["restarts"] == 1


def path_prune(api: Api, cluster: Any, ns: str, name: str) -> None:
    _fail_retriably(api, cluster, ns, name, 1)
    _fail_retriably(api, cluster, ns, name, 2)
    # Attempt 3 runs: attempt 1's Job, Service and NetworkPolicy are pruned, attempt 2's kept.
    wait_for(
        f"{name}: attempt 1 pruned",
        lambda: (
            sorted(j["metadata"]["name"] for j in api.jobs(ns, name)) == [f"{name}-2", f"{name}-3"]
        ),
        90,
    )
    assert api.kube.get_or_none("v1", "Service", ns, f"{name}-1") is None
    assert api.kube.get_or_none("networking.k8s.io/v1", "NetworkPolicy", ns, f"{name}-1") is None
    _succeed(api, cluster, ns, name, attempt=3)


def path_cancel(api: Api, cluster: Any, ns: str, name: str) -> None:
    api.running_pods(ns, name, 1, 1)
    api.kube.merge_patch(
        API_VERSION, KIND, ns, name, {"metadata": {"annotations": {ANNOTATION_CANCEL: "test"}}}
    )
    api.wait_phase(ns, name, "Cancelled", timeout=90)
    wait_for(f"{name}: jobs deleted", lambda: not api.jobs(ns, name), 60)


def path_ttl(api: Api, cluster: Any, ns: str, name: str) -> None:
    _succeed(api, cluster, ns, name)
    wait_for(
        f"{name}: children deleted after the TTL",
        lambda: (
            not api.jobs(ns, name)
            and api.kube.get_or_none("v1", "Service", ns, f"{name}-1") is None
            and api.kube.get_or_none("v1", "ServiceAccount", ns, f"{name}-trainer") is None
            and api.kube.get_or_none("rbac.authorization.k8s.io/v1", "Role", ns, f"{name}-trainer")
            is None
        ),
        90,
    )


def path_suspend_resume(api: Api, cluster: Any, ns: str, name: str) -> None:
    api.running_pods(ns, name, 1, 1)
    api.kube.merge_patch(API_VERSION, KIND, ns, name, {"spec": {"suspend": True}})
    api.wait_phase(ns, name, "Queued", timeout=90)
    wait_for(
        f"{name}: Job suspended",
        lambda: api.kube.get("batch/v1", "Job", ns, f"{name}-1")["spec"].get("suspend") is True,
        60,
    )
    api.kube.merge_patch(API_VERSION, KIND, ns, name, {"spec": {"suspend": False}})
    api.wait_phase(ns, name, "Running", timeout=90)
    _succeed(api, cluster, ns, name)
    assert api.status(ns, name)["restarts"] == 0


PATHS: dict[str, tuple[Callable[[Api, Any, str, str], None], dict[str, Any]]] = {
    "ok": (path_succeeds, {}),
    "retry": (path_retry, {}),
    "prune": (path_prune, {"failurePolicy": {"maxRestarts": 3, "backoffSeconds": 1}}),
    "cancel": (path_cancel, {}),
    "ttl": (path_ttl, {"ttlSecondsAfterFinished": 1}),
    "susp": (path_suspend_resume, {}),
}
# An RBAC refusal (not, say, a namespace being deleted): "User "system:serviceaccount:..."
# cannot create resource ...".
RBAC_DENIED = re.compile(r"system:serviceaccount:[^\s]+ cannot ")


@pytest.mark.parametrize("mode", ["one-namespace", "all-namespaces"])
def test_every_controller_path_runs_with_only_the_charts_rbac(
    helm: str, cluster: Any, namespace: str, mode: str
) -> None:
    """The controller, authenticated as the chart's ServiceAccount with the chart's rules
    (watch-namespace Role, or the cluster-wide ClusterRole), drives success, retry,
    pruning, cancel, TTL and suspend/resume; and the chart's probes hit paths it answers."""
    release = f"ftjobs-{mode[:3]}-{namespace[-6:]}"
    sets = [f"watchNamespaces={{{namespace}}}"] if mode == "one-namespace" else []
    helm_install(helm, cluster, release, namespace, *sets)
    rendered = docs(template(helm, cluster, release, namespace, *sets))
    container = controller_container(rendered)
    deployment = next(o for o in rendered if o["kind"] == "Deployment")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    health_port = free_port()
    install_crd(cluster)
    scope = ["--namespace", namespace] if sets else ["--all-namespaces"]
    proc = ControllerProcess(
        sa_kubeconfig(cluster, namespace, account),
        *scope,
        "--lease-namespace",
        namespace,
        "--lease-name",
        release,
        "--lease-duration",
        "4",
        "--lease-renew",
        "1",
        "--resync-seconds",
        "5",
        "--health-port",
        str(health_port),
        name=f"chart-rbac-{mode}",
    ).start()
    try:
        wait_for("the controller to lead", lambda: '"leading"' in proc.logs(), 60)
        api = Api(cluster.kubeconfig)
        for name, (_, spec) in PATHS.items():
            api.create_ftj(ftj_manifest(name, namespace, **spec))
        with ThreadPoolExecutor(len(PATHS)) as pool:
            futures = {
                name: pool.submit(path, api, cluster, namespace, name)
                for name, (path, _) in PATHS.items()
            }
            failed = {}
            for name, future in futures.items():
                try:
                    future.result()
                except Exception as exc:
                    failed[name] = exc
        assert not failed, f"{failed}\n{proc.logs()[-3000:]}"
        assert not RBAC_DENIED.search(proc.logs()), proc.logs()[-3000:]
        for probe in ("livenessProbe", "readinessProbe"):
            get = container[probe]["httpGet"]
            assert get["port"] == "health"
            url = f"http://127.0.0.1:{health_port}{get['path']}"
            with urllib.request.urlopen(url, timeout=5) as resp:
                assert resp.status == 200, (probe, url)
    finally:
        proc.stop()
        helm_uninstall(helm, cluster, release, namespace)


def test_rbac_check_catches_a_missing_rule(helm: str, cluster: Any, namespace: str) -> None:
    """Negative control: the chart installed, then its Role without `delete` on Jobs;
    cancel cannot finish, and the refusal shows in the log as the check above looks for it."""
    release = f"ftjobs-neg-{namespace[-6:]}"
    sets = [f"watchNamespaces={{{namespace}}}"]
    helm_install(helm, cluster, release, namespace, *sets)
    rendered = docs(template(helm, cluster, release, namespace, *sets))
    role = next(o for o in rendered if o["kind"] == "Role" and o["metadata"]["name"] == release)
    for rule in role["rules"]:
        if rule["resources"] == ["jobs"]:
            rule["verbs"].remove("delete")
    kubectl_ok(cluster, "apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(role))
    deployment = next(o for o in rendered if o["kind"] == "Deployment")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    install_crd(cluster)
    proc = ControllerProcess(
        sa_kubeconfig(cluster, namespace, account),
        "--namespace",
        namespace,
        "--no-leader-elect",
        name="chart-rbac-negative",
    ).start()
    try:
        api = Api(cluster.kubeconfig)
        api.create_ftj(ftj_manifest("cancel", namespace))
        api.running_pods(namespace, "cancel", 1, 1)
        api.kube.merge_patch(
            API_VERSION,
            KIND,
            namespace,
            "cancel",
            {"metadata": {"annotations": {ANNOTATION_CANCEL: "test"}}},
        )
        wait_for("the refusal in the log", lambda: RBAC_DENIED.search(proc.logs()), 60)
        assert api.jobs(namespace, "cancel")
    finally:
        proc.stop()
        helm_uninstall(helm, cluster, release, namespace)
