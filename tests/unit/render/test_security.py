"""The pods are admissible under the Pod Security Standard `restricted`.

`restricted_violations` encodes the checks of the restricted profile (Kubernetes
docs, "Pod Security Standards", v1.30 policy) for the fields a pod spec can carry, so a
rendered pod that drifts from it fails here before a cluster refuses it.
"""

from typing import Any

import pytest

from ftjobs.render import RenderSettings
from tests.builders import make_job
from tests.unit.render.helpers import by_kind, container, pod_spec, render

ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    out: list[str] = []
    psc = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            out.append(flag)
    for vol in pod.get("volumes", []):
        kinds = set(vol) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            out.append(f"volume {vol['name']}: {kinds}")
    if psc.get("runAsUser") == 0:
        out.append("pod runAsUser 0")
    if psc.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
        pod_seccomp_ok = False
    else:
        pod_seccomp_ok = True
    for ctr in pod.get("containers", []) + pod.get("initContainers", []):
        sc = ctr.get("securityContext", {})
        name = ctr["name"]
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            out.append(f"{name}: capabilities must drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: capabilities add {caps['add']}")
        if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
            out.append(f"{name}: runAsNonRoot")
        if sc.get("runAsUser") == 0:
            out.append(f"{name}: runAsUser 0")
        if ctr.get("ports") and any(p.get("hostPort") for p in ctr["ports"]):
            out.append(f"{name}: hostPort")
        seccomp = sc.get("seccompProfile", {}).get("type")
        if not (seccomp in ("RuntimeDefault", "Localhost") or (seccomp is None and pod_seccomp_ok)):
            out.append(f"{name}: seccompProfile")
    return out


def test_the_checker_catches_violations() -> None:
    assert restricted_violations({"containers": [{"name": "x"}]}) == [
        "x: allowPrivilegeEscalation must be false",
        "x: capabilities must drop ALL",
        "x: runAsNonRoot",
        "x: seccompProfile",
    ]
    assert restricted_violations({"hostNetwork": True, "volumes": [{"name": "h", "hostPath": {}}]})


@pytest.mark.parametrize(
    "builder",
    [
        make_job("cpu"),
        make_job("gpu").nodes(4).gpus(8).shm("64Gi").credentials("s3"),
        make_job("sched").toleration("a", "b").priority("p").scheduler("s").queue("q"),
    ],
    ids=["cpu", "gpu", "scheduling"],
)
def test_rendered_pods_are_restricted(builder: Any) -> None:
    assert restricted_violations(pod_spec(render(builder))) == []


def test_non_root_fixed_uid_and_read_only_root() -> None:
    objects = render(make_job("llm"))
    psc = pod_spec(objects)["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] == psc["runAsGroup"] == psc["fsGroup"] == 1000
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(objects)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["allowPrivilegeEscalation"] is False
    settings = RenderSettings(run_as_user=2000, read_only_root_filesystem=False)
    objects = render(make_job("llm"), settings=settings)
    assert pod_spec(objects)["securityContext"]["runAsUser"] == 2000
    assert container(objects)["securityContext"]["readOnlyRootFilesystem"] is False
    assert restricted_violations(pod_spec(objects)) == []


def test_no_service_links_in_the_environment() -> None:
    assert pod_spec(render(make_job("llm")))["enableServiceLinks"] is False


def test_only_pods_of_the_same_attempt_reach_an_attempts_pods() -> None:
    objects = by_kind(render(make_job("llm").build(), attempt=3))
    policy = objects["NetworkPolicy"]
    pods = objects["Job"]["spec"]["template"]["metadata"]["labels"]
    same = {"ftjobs.dev/job": "llm", "ftjobs.dev/attempt": "3"}
    # The policy selects exactly this attempt's pods and admits only them, on any port.
    assert policy["spec"]["podSelector"] == {"matchLabels": same}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{"from": [{"podSelector": {"matchLabels": same}}]}]
    assert same.items() <= pods.items()
    other_attempt = by_kind(render(make_job("llm").build(), attempt=4))["NetworkPolicy"]
    assert other_attempt["spec"]["podSelector"] != policy["spec"]["podSelector"]
