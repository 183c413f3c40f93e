"""The Helm chart and the kustomize base against the real API server.

helm lint (values schema included), `helm template | kubectl apply --dry-run=server`,
`helm install` (the Deployment and RBAC exist as rendered, its pods pass Pod Security
"restricted"), the chart and manifests/base agree, the base applies with a server-side
dry-run. The controller under nothing but the chart's RBAC: test_chart_rbac.py.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from ftjobs.controller.__main__ import parse_args
from tests.e2e.harness import install_crd, wait_for
from tests.fixtures.controlplane import ensure_binaries

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "ftjobs"
BASE = ROOT / "manifests" / "base"
# Labels only Helm adds (release bookkeeping); everything else must match the base.
HELM_ONLY_LABELS = {"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"}


@pytest.fixture(scope="module")
def helm() -> str:
    return str(ensure_binaries(("helm",))["helm"])


def run(cmd: list[str], cluster: Any, *, input: str | None = None) -> str:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, input=input, env=cluster.env(), timeout=180
    )
    assert proc.returncode == 0, f"{' '.join(cmd[:3])} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def kubectl_ok(cluster: Any, *args: str, input: str | None = None) -> str:
    """kubectl with the cluster's kubeconfig; asserts success, returns stdout."""
    kubectl = [str(cluster.bins["kubectl"]), "--kubeconfig", cluster.kubeconfig]
    return run([*kubectl, *args], cluster, input=input)


def template(helm: str, cluster: Any, release: str, namespace: str, *sets: str) -> str:
    args = [helm, "template", release, str(CHART), "--namespace", namespace]
    for s in sets:
        args += ["--set", s]
    return run(args, cluster)


def helm_install(helm: str, cluster: Any, release: str, namespace: str, *sets: str) -> None:
    args = [helm, "install", release, str(CHART), "--namespace", namespace, "--wait=false"]
    for s in sets:
        args += ["--set", s]
    run([*args, "--kubeconfig", cluster.kubeconfig], cluster)


def helm_uninstall(helm: str, cluster: Any, release: str, namespace: str) -> None:
    subprocess.run(
        [helm, "uninstall", release, "-n", namespace, "--kubeconfig", cluster.kubeconfig],
        capture_output=True,
        env=cluster.env(),
    )


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind_name(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def controller_container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    dep = next(o for o in objs if o["kind"] == "Deployment")
    container: dict[str, Any] = dep["spec"]["template"]["spec"]["containers"][0]
    return container


# --- offline-ish: lint and agreement ------------------------------------------------------


def test_helm_lint_strict_and_values_schema(helm: str, cluster: Any) -> None:
    out = run([helm, "lint", "--strict", str(CHART)], cluster)
    assert "0 chart(s) failed" in out
    bad = subprocess.run(
        [helm, "lint", str(CHART), "--set", "replicaCount=-1", "--set", "nope=1"],
        capture_output=True,
        text=True,
        env=cluster.env(),
    )
    assert bad.returncode != 0
    assert "replicaCount" in bad.stdout + bad.stderr


@pytest.mark.parametrize(
    "sets",
    [(), ("watchNamespaces={team-a,team-b}", "leaderElection.enabled=false", "verbose=true")],
    ids=["all-namespaces", "watch-namespaces"],
)
def test_rendered_args_are_the_controllers_flags(
    helm: str, cluster: Any, sets: tuple[str, ...]
) -> None:
    container = controller_container(docs(template(helm, cluster, "ftjobs", "ops", *sets)))
    assert container["command"] == ["python", "-m", "ftjobs.controller"]
    args = parse_args(container["args"])  # the controller's own parser accepts them
    if sets:
        assert args.namespace == ["team-a", "team-b"] and not args.leader_elect
    else:
        assert args.all_namespaces and args.leader_elect and args.lease_namespace == "ops"
    assert args.image == "ghcr.io/ftjobs/trainer:0.1.0"


def test_s3_endpoint_value_reaches_the_controller(helm: str, cluster: Any) -> None:
    """storage.endpoint/region become the controller's default for jobs that leave them
    unset; the controller must accept the flags the chart passes."""
    rendered = template(
        helm,
        cluster,
        "ftjobs",
        "ops",
        "storage.endpoint=http://minio.storage:9000",
        "storage.region=eu-west-1",
    )
    container = controller_container(docs(rendered))
    assert "--s3-endpoint=http://minio.storage:9000" in container["args"]
    parse_args(container["args"])


def test_watch_namespace_mode_has_no_cluster_wide_job_rights(helm: str, cluster: Any) -> None:
    objs = docs(template(helm, cluster, "ftjobs", "ops", "watchNamespaces={team-a,team-b}"))
    roles = [o for o in objs if o["kind"] == "Role" and o["metadata"]["name"] == "ftjobs"]
    assert {r["metadata"]["namespace"] for r in roles} == {"team-a", "team-b"}
    cluster_roles = [
        o
        for o in objs
        if o["kind"] == "ClusterRole"
        and not any("aggregate-to" in k for k in o["metadata"]["labels"])
    ]
    assert [r["metadata"]["name"] for r in cluster_roles] == ["ftjobs-observer"]
    for rule in cluster_roles[0]["rules"]:
        assert rule["resources"] in (["customresourcedefinitions"], ["namespaces"])
        assert set(rule["verbs"]) == {"get", "list", "watch"}


def test_no_secret_access_anywhere(helm: str, cluster: Any) -> None:
    for sets in [(), ("watchNamespaces={a}",)]:
        for obj in docs(template(helm, cluster, "ftjobs", "ops", *sets)):
            for rule in obj.get("rules") or []:
                assert "secrets" not in rule["resources"], obj["metadata"]["name"]
                assert "*" not in rule["resources"] and "*" not in rule["verbs"]


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    """Drop Helm's bookkeeping labels and the kustomize-added part-of label's origin."""
    obj = yaml.safe_load(yaml.safe_dump(obj))
    for meta in (obj["metadata"], obj.get("spec", {}).get("template", {}).get("metadata", {})):
        labels = meta.get("labels") or {}
        for key in HELM_ONLY_LABELS:
            labels.pop(key, None)
    return obj


def test_kustomize_base_agrees_with_the_chart(helm: str, cluster: Any) -> None:
    chart = by_kind_name(
        [_strip(o) for o in docs(template(helm, cluster, "ftjobs", "ftjobs-system"))]
    )
    kustomized = run([str(cluster.bins["kubectl"]), "kustomize", str(BASE)], cluster)
    base = by_kind_name([_strip(o) for o in docs(kustomized)])
    crd = ("CustomResourceDefinition", "finetunejobs.ftjobs.dev")
    assert crd in base
    assert set(base) - {crd, ("Namespace", "ftjobs-system")} == set(chart)
    for key, obj in chart.items():
        other = base[key]
        for field in ("rules", "roleRef", "subjects"):
            assert obj.get(field) == other.get(field), f"{key} {field}"
    c_dep, b_dep = chart[("Deployment", "ftjobs")], base[("Deployment", "ftjobs")]
    assert c_dep["spec"] == b_dep["spec"]
    c_svc, b_svc = chart[("Service", "ftjobs-metrics")], base[("Service", "ftjobs-metrics")]
    assert c_svc["spec"] == b_svc["spec"]
    policies = [k for k in chart if k[0].startswith("ValidatingAdmissionPolicy")]
    assert len(policies) == 2, chart.keys()
    for key in policies:
        assert chart[key]["spec"] == base[key]["spec"], key
    assert set(base[crd].keys()) >= {"spec"}


def test_trainer_admission_policy_is_on_by_default_and_can_be_switched_off(
    helm: str, cluster: Any
) -> None:
    kinds = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    objs = docs(template(helm, cluster, "rel", "ops"))
    policies = {o["kind"]: o for o in objs if o["kind"] in kinds}
    assert set(policies) == kinds
    name = policies["ValidatingAdmissionPolicy"]["metadata"]["name"]
    assert name == "rel-ftjobs-trainer-own-job"
    assert policies["ValidatingAdmissionPolicyBinding"]["spec"]["policyName"] == name
    off = docs(template(helm, cluster, "rel", "ops", "trainer.admissionPolicy.enabled=false"))
    assert not [o for o in off if o["kind"] in kinds]


def test_names_follow_name_overrides(helm: str, cluster: Any) -> None:
    objs = docs(template(helm, cluster, "rel", "ops", "fullnameOverride=ml-operator"))
    names = {o["metadata"]["name"] for o in objs}
    assert "ml-operator" in names and not any(n.startswith("rel") for n in names)
    objs = docs(template(helm, cluster, "rel", "ops", "nameOverride=ftj"))
    dep = next(o for o in objs if o["kind"] == "Deployment")
    assert dep["metadata"]["name"] == "rel-ftj"
    assert dep["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "ftj"


def test_trainer_image_pull_secrets_extra_args_and_env_reach_the_controller(
    helm: str, cluster: Any
) -> None:
    container = controller_container(
        docs(
            template(
                helm,
                cluster,
                "ftjobs",
                "ops",
                "trainer.imagePullSecrets={regcred,mirror}",
                "extraArgs={--lease-renew=3}",
                "extraEnv[0].name=HTTPS_PROXY",
                "extraEnv[0].value=http://proxy:3128",
            )
        )
    )
    args = parse_args(container["args"])  # the controller's own parser accepts them
    assert args.image_pull_secret == ["regcred", "mirror"]
    assert args.lease_renew == 3.0
    assert {"name": "HTTPS_PROXY", "value": "http://proxy:3128"} in container["env"]


def test_trainer_image_follows_the_app_version(helm: str, cluster: Any) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    container = controller_container(docs(template(helm, cluster, "ftjobs", "ops")))
    assert parse_args(container["args"]).image == f"ghcr.io/ftjobs/trainer:{chart['appVersion']}"
    pinned = controller_container(
        docs(template(helm, cluster, "ftjobs", "ops", "trainer.image=reg.example/t:9"))
    )
    assert parse_args(pinned["args"]).image == "reg.example/t:9"


def test_security_context_and_pdb_are_configurable(helm: str, cluster: Any) -> None:
    objs = docs(
        template(
            helm,
            cluster,
            "ftjobs",
            "ops",
            "podSecurityContext.runAsUser=2000",
            "securityContext.readOnlyRootFilesystem=false",
            "podDisruptionBudget.enabled=true",
            "replicaCount=2",
        )
    )
    dep = next(o for o in objs if o["kind"] == "Deployment")
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 2000
    ctr = dep["spec"]["template"]["spec"]["containers"][0]
    assert ctr["securityContext"]["readOnlyRootFilesystem"] is False
    pdb = next(o for o in objs if o["kind"] == "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert not [
        o for o in docs(template(helm, cluster, "f", "ops")) if o["kind"] == "PodDisruptionBudget"
    ]


# --- against the API server ---------------------------------------------------------------


def test_helm_template_applies_with_server_dry_run(helm: str, cluster: Any, namespace: str) -> None:
    for sets in [(), (f"watchNamespaces={{{namespace}}}",)]:
        rendered = run(
            [
                helm,
                "template",
                f"dry-{uuid.uuid4().hex[:5]}",
                str(CHART),
                "--include-crds",
                "--namespace",
                namespace,
                *[a for s in sets for a in ("--set", s)],
            ],
            cluster,
        )
        out = kubectl_ok(
            cluster, "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=rendered
        )
        assert "deployment.apps/" in out and "(server dry run)" in out


def test_kustomize_base_applies_with_server_dry_run(cluster: Any) -> None:
    created = cluster.kubectl("get", "namespace", "ftjobs-system").returncode != 0
    if created:
        # Objects inside a namespace that a dry-run only pretends to create cannot be
        # checked; the namespace itself is then applied as an update (dry run too).
        cluster.kubectl("create", "namespace", "ftjobs-system", check=True)
    try:
        out = kubectl_ok(
            cluster,
            "apply",
            "--dry-run=server",
            "--server-side",
            "--force-conflicts",
            "-k",
            str(BASE),
        )
        kinds = ("customresourcedefinition", "clusterrole", "deployment", "service")
        for kind in (*kinds, "validatingadmissionpolicy", "validatingadmissionpolicybinding"):
            assert kind in out, out
    finally:
        if created:
            cluster.kubectl("delete", "namespace", "ftjobs-system", "--wait=false")


@pytest.fixture
def release(helm: str, cluster: Any, namespace: str) -> Iterator[tuple[str, str]]:
    """The chart installed into a fresh namespace that enforces Pod Security "restricted"."""
    cluster.kubectl(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        check=True,
    )
    name = f"ftjobs-{namespace[-8:]}"
    helm_install(helm, cluster, name, namespace, f"watchNamespaces={{{namespace}}}")
    try:
        yield name, namespace
    finally:
        helm_uninstall(helm, cluster, name, namespace)


def test_helm_install_creates_deployment_and_rbac_as_rendered(
    helm: str, cluster: Any, k8s_api: Any, release: tuple[str, str]
) -> None:
    name, namespace = release
    rendered = by_kind_name(
        docs(template(helm, cluster, name, namespace, f"watchNamespaces={{{namespace}}}"))
    )
    apps = client.AppsV1Api(k8s_api)
    rbac = client.RbacAuthorizationV1Api(k8s_api)
    dep = apps.read_namespaced_deployment(name, namespace)
    want = rendered[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]
    got = k8s_api.sanitize_for_serialization(dep.spec.template.spec.containers[0])
    for key in ("image", "command", "args", "ports", "securityContext", "resources"):
        assert got[key] == want[key], key
    role = k8s_api.sanitize_for_serialization(rbac.read_namespaced_role(name, namespace))
    assert role["rules"] == rendered[("Role", name)]["rules"]
    binding = rbac.read_namespaced_role_binding(name, namespace)
    assert binding.subjects[0].name == name
    lease_role = rbac.read_namespaced_role(f"{name}-leader-election", namespace)
    assert lease_role.rules[0].resources == ["leases"]
    observer = rbac.read_cluster_role(f"{name}-observer")
    assert [r.resources for r in observer.rules] == [["customresourcedefinitions"], ["namespaces"]]
    # The ReplicaSet's pod passes admission in a namespace enforcing "restricted".
    core = client.CoreV1Api(k8s_api)
    selector = f"app.kubernetes.io/instance={name}"
    wait_for(
        "the controller pod to be admitted",
        lambda: core.list_namespaced_pod(namespace, label_selector=selector).items,
        60,
    )


def test_aggregated_roles_let_namespace_editors_run_jobs(
    cluster: Any, namespace: str, release: tuple[str, str]
) -> None:
    """A user bound to the built-in `edit` ClusterRole may create FineTuneJobs, `view` may
    only read them: the chart's ClusterRoles are aggregated by the API server's
    controller-manager. The negative control: a user with no binding may do neither."""
    kubectl_ok(
        cluster,
        "create",
        "rolebinding",
        "alice-edit",
        "--clusterrole=edit",
        "--user=alice",
        "-n",
        namespace,
    )
    kubectl_ok(
        cluster,
        "create",
        "rolebinding",
        "bob-view",
        "--clusterrole=view",
        "--user=bob",
        "-n",
        namespace,
    )

    def can(user: str, verb: str) -> bool:
        kubectl = [str(cluster.bins["kubectl"]), "--kubeconfig", cluster.kubeconfig]
        proc = subprocess.run(
            [
                *kubectl,
                "auth",
                "can-i",
                verb,
                "finetunejobs.ftjobs.dev",
                "-n",
                namespace,
                "--as",
                user,
            ],
            capture_output=True,
            text=True,
            env=cluster.env(),
        )
        return proc.stdout.strip() == "yes"

    wait_for("edit to aggregate the chart's role", lambda: can("alice", "create"), 60)
    assert can("alice", "delete") and can("bob", "list")
    assert not can("bob", "create") and not can("carol", "list")


def test_helm_upgrade_applies_crd_changes_by_the_documented_step(
    helm: str, cluster: Any, k8s_api: Any, release: tuple[str, str], tmp_path: Path
) -> None:
    """Helm never upgrades crds/: README's step (apply the CRD server-side, then helm
    upgrade) must bring a changed CRD and changed values onto the cluster."""
    name, namespace = release
    install_crd(cluster)
    crd = yaml.safe_load((CHART / "crds/finetunejobs.ftjobs.dev.yaml").read_text())
    marker = f"upgrade-{namespace[-6:]}"
    crd["metadata"].setdefault("annotations", {})["ftjobs.dev/test-upgrade"] = marker
    new_crds = tmp_path / "crds"
    new_crds.mkdir()
    (new_crds / "crd.yaml").write_text(yaml.safe_dump(crd))
    kubectl_ok(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(new_crds))
    run(
        [
            helm,
            "upgrade",
            name,
            str(CHART),
            "--namespace",
            namespace,
            "--kubeconfig",
            cluster.kubeconfig,
            "--reuse-values",
            "--set",
            "workers=3",
            "--wait=false",
        ],
        cluster,
    )
    ext = client.ApiextensionsV1Api(k8s_api)
    stored = ext.read_custom_resource_definition("finetunejobs.ftjobs.dev")
    assert stored.metadata.annotations["ftjobs.dev/test-upgrade"] == marker
    dep = client.AppsV1Api(k8s_api).read_namespaced_deployment(name, namespace)
    assert "--workers=3" in dep.spec.template.spec.containers[0].args
    assert f"--namespace={namespace}" in dep.spec.template.spec.containers[0].args
