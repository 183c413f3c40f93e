"""The trainer admission policy without a cluster: the chart and manifests/base ship the
same policy, it names the shared identity and the CRD, and the pod-name rule it encodes
tells every FineTuneJob's trainer pods apart (tests/integration/test_trainer_policy.py
runs the policy itself in the API server)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ftjobs.api.constants import GROUP, PLURAL, TRAINER_IDENTITY
from ftjobs.api.lifecycle import FailurePolicy
from ftjobs.api.resources import Resources
from ftjobs.api.trainer_policy import POD_SUFFIX_PATTERN, POLICY_NAME, policy_spec
from ftjobs.api.types import JOB_NAME_MAX, JOB_NAME_PATTERN
from ftjobs.render.meta import child_names

ROOT = Path(__file__).resolve().parents[3]
BASE = ROOT / "manifests" / "base"
CHART = ROOT / "helm" / "ftjobs"
# Kubernetes' names.MaxGeneratedNameLength: a generateName prefix longer than this is cut
# (63 minus the 5 random characters the API server appends).
MAX_GENERATED_NAME_PREFIX = 63 - 5


def base_docs() -> dict[str, dict[str, Any]]:
    docs = yaml.safe_load_all((BASE / "trainer-policy.yaml").read_text())
    return {d["kind"]: d for d in docs}


def chart_docs() -> dict[str, dict[str, Any]]:
    """The chart's template as Helm renders it for release "ftjobs" (fullname "ftjobs"):
    its only template actions are the switch, the name and the labels."""
    text = (CHART / "templates" / "trainer-policy.yaml").read_text()
    lines = [
        line.replace('{{ include "ftjobs.fullname" . }}', "ftjobs")
        for line in text.splitlines()
        if not line.strip().startswith("{{-")
    ]
    assert not any("{{" in line for line in lines), "template actions the test does not know"
    return {d["kind"]: d for d in yaml.safe_load_all("\n".join(lines))}


def test_the_chart_and_the_base_ship_the_same_policy_and_binding() -> None:
    base, chart = base_docs(), chart_docs()
    assert (
        set(base)
        == set(chart)
        == {
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        }
    )
    for kind in base:
        assert base[kind]["spec"] == chart[kind]["spec"], kind
        assert base[kind]["metadata"]["name"] == chart[kind]["metadata"]["name"] == POLICY_NAME
    assert base["ValidatingAdmissionPolicy"]["spec"] == policy_spec()
    binding = base["ValidatingAdmissionPolicyBinding"]["spec"]
    assert binding == {"policyName": POLICY_NAME, "validationActions": ["Deny"]}
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert "trainer-policy.yaml" in kustomization["resources"]


def test_the_chart_switch_is_on_by_default() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["trainer"]["admissionPolicy"] == {"enabled": True}
    template = (CHART / "templates" / "trainer-policy.yaml").read_text()
    assert template.startswith("{{- if .Values.trainer.admissionPolicy.enabled }}\n")
    assert template.endswith("{{- end }}\n")


def test_the_policy_matches_updates_of_finetunejobs_by_the_shared_identity_only() -> None:
    spec = policy_spec()
    assert spec["failurePolicy"] == "Fail"
    (rule,) = spec["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == [GROUP] and rule["operations"] == ["UPDATE"]
    assert set(rule["resources"]) == {PLURAL, f"{PLURAL}/status"}
    (condition,) = spec["matchConditions"]
    assert f'":{TRAINER_IDENTITY}"' in condition["expression"]
    assert "request.userInfo.username ==" in condition["expression"]
    assert spec["validations"][0]["reason"] == "Forbidden"


def owns(job: str, pod: str) -> bool:
    """The policy's rule, in Python: the same prefix test and the same pattern."""
    prefix = f"{job}-"
    return pod.startswith(prefix) and re.search(POD_SUFFIX_PATTERN, pod[len(prefix) :]) is not None


# Names that are prefixes of each other's pod names, dashes and digits included.
JOBS = ["a", "a-1", "a-1-0", "a-10", "a1", "b", "ab", "a-b", "a-1-1"]


def trainer_pods(job: str) -> list[str]:
    return [f"{job}-{attempt}-{index}-x7k2p" for attempt in (1, 2, 10) for index in (0, 1, 12)]


@pytest.mark.parametrize("job", JOBS)
def test_a_jobs_trainer_pods_match_it_and_no_other_job(job: str) -> None:
    assert all(re.fullmatch(JOB_NAME_PATTERN, j) for j in JOBS)
    for pod in trainer_pods(job):
        assert owns(job, pod), pod
        others = [other for other in JOBS if other != job and owns(other, pod)]
        assert not others, f"{pod} (of {job}) also matches {others}"


@pytest.mark.parametrize(
    "pod",
    ["a-0-0-x7k2p", "a-1-0-x7k2", "a-1-0-x7k2pq", "a-1-01-x7k2p", "a-01-0-x7k2p", "a-1-0-X7K2P",
     "a-1-x7k2p", "a-1-0-x7k2p-1", "a-1-0", "xa-1-0-x7k2p", "a"],
)  # fmt: skip
def test_names_not_of_an_attempt_pod_match_no_job(pod: str) -> None:
    assert not owns("a", pod)


def test_no_trainer_pod_name_is_ever_truncated() -> None:
    """The Job controller names a pod of an Indexed Job `<job>-<index>-` plus 5 random
    characters, cutting `<job>` when that prefix is longer than 58 characters; a cut name
    would no longer carry `<name>-<attempt>-`. The longest name, the most nodes and an
    attempt far beyond any restart budget still fit."""
    name = "a" * JOB_NAME_MAX
    nodes = Resources.model_fields["nodes"].metadata
    most_nodes = max(m.le for m in nodes if hasattr(m, "le"))
    restarts = FailurePolicy.model_fields["max_restarts"].metadata
    most_restarts = max(m.le for m in restarts if hasattr(m, "le"))
    for attempt in (1, most_restarts + 1, 10**10):
        job = child_names(name, attempt).job
        assert job == f"{name}-{attempt}"
        assert len(f"{job}-{most_nodes - 1}-") <= MAX_GENERATED_NAME_PREFIX, attempt
