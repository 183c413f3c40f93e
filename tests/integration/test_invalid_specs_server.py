"""Invalid specs on the real API server: it names exactly the fields `ftjobs validate` names,
and the controller never crashes on anything it accepts.

Every hand-written corpus file (tests/data/invalid) and every mutant of the examples
(tests/mutants.py) goes to the server as a dry-run create with strict field validation
(what `kubectl apply --validate=strict` sends), concurrently, into one namespace. The
set of field paths in the server's answer must equal the offline set, exactly.
Whatever the server accepts is then fed to the controller: the pure reconcile over the
stored (defaulted) objects, and the controller's own reconcile (`Controller.reconcile_key`
and `Controller.report`,
the code the handlers run) against the objects created for real.
"""

from __future__ import annotations

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from ftjobs.api import constants
from ftjobs.api.job import FineTuneJob
from ftjobs.controller.handlers import Controller
from ftjobs.controller.reconcile import Observed, ObservedJob, PodFailure, reconcile
from ftjobs.k8s import Kube
from tests.corpus import cases
from tests.integration.test_crd_server import crd_installed  # noqa: F401 (fixture)
from tests.mutants import SCHEMA, mutants, offline_paths

UNKNOWN_FIELD = re.compile(r'unknown field "([^"]+)"')
NOW = datetime(2030, 1, 1, tzinfo=UTC)
INT_GOT_FLOAT = "expected int, got float64 evaluating rule"


def server_paths(body: str) -> set[str]:
    """The field paths a refusal (a Kubernetes Status) names.

    Two quirks of the server are read for what they mean: causes whose field is `<nil>`
    restate an error at a named field ("Checked value must be of type integer ... in
    spec.x") or say the CEL rules were skipped after a type error; and with strict field
    validation, a mapping given for a scalar is reported as unknown fields under it
    (`unknown field "spec.task.a"` for `task: {a: b}`), which names the scalar.
    """
    status = json.loads(body)
    found = set(UNKNOWN_FIELD.findall(status.get("message", "")))
    for cause in (status.get("details") or {}).get("causes") or []:
        unknown = UNKNOWN_FIELD.findall(cause.get("message", ""))
        if unknown:
            found.update(unknown)
        elif cause.get("field", "<nil>") != "<nil>":
            found.add(cause["field"])
    return {_scalar_or_self(path) for path in found}


def _scalar_or_self(path: str) -> str:
    """`path`, cut back to the field whose value cannot have the next step (a scalar or a
    list given a key); a path that fits the schema, or names a real unknown field, stays."""
    steps = re.split(r"\.|(?=\[)", path)
    schema: dict[str, Any] = SCHEMA
    for i, step in enumerate(steps):
        extra = schema.get("additionalProperties")
        if step.startswith("[") and "items" in schema:
            schema = schema["items"]
        elif not step.startswith("[") and "properties" in schema:
            if step not in schema["properties"]:
                return path  # a real unknown field
            schema = schema["properties"][step]
        elif not step.startswith("[") and isinstance(extra, dict):
            schema = extra
        else:
            return re.sub(r"\.\[", "[", ".".join(steps[:i]))
    return path


def dry_run(api: client.CustomObjectsApi, namespace: str, doc: Any) -> tuple[Any, set[str], str]:
    """(stored object or None, refused paths, raw answer) of a strict dry-run create."""
    if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
        doc = {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}
    try:
        stored = api.create_namespaced_custom_object(
            constants.GROUP,
            constants.VERSION,
            namespace,
            constants.PLURAL,
            doc,
            dry_run="All",
            field_validation="Strict",
        )
    except ApiException as exc:
        if exc.status not in (400, 422):
            raise
        return None, server_paths(exc.body or "{}"), exc.body or ""
    return stored, set(), ""


def verdicts(
    api: client.CustomObjectsApi, namespace: str, docs: list[Any]
) -> list[tuple[Any, set[str], str]]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda d: dry_run(api, namespace, d), docs))


@pytest.fixture(scope="module")
def custom_api(k8s_api: Any, crd_installed: None) -> client.CustomObjectsApi:  # noqa: F811
    return client.CustomObjectsApi(k8s_api)


@pytest.fixture(scope="module")
def mutant_verdicts(
    custom_api: client.CustomObjectsApi, cluster: Any
) -> list[tuple[Any, tuple[Any, set[str], str]]]:
    name = f"t-mutants-{uuid.uuid4().hex[:8]}"
    assert cluster.kubectl("create", "namespace", name).returncode == 0
    try:
        found = mutants()
        return list(zip(found, verdicts(custom_api, name, [m.doc for m in found]), strict=True))
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false")


def test_corpus_fields_named_by_the_server_equal_the_offline_ones(
    custom_api: client.CustomObjectsApi, namespace: str
) -> None:
    corpus = cases()
    docs = [yaml.safe_load(c.path.read_text()) for c in corpus]
    wrong = []
    for case, doc, (stored, paths, raw) in zip(
        corpus, docs, verdicts(custom_api, namespace, docs), strict=True
    ):
        offline = offline_paths(doc)
        if case.expect not in offline:
            wrong.append(f"{case.id}: offline names {sorted(offline)}, header {case.expect}")
        if case.server_skip:
            continue  # documented as not checkable by the API server
        if stored is not None:
            wrong.append(f"{case.id}: accepted by the API server")
        elif paths != offline:
            wrong.append(f"{case.id}: server {sorted(paths)}, offline {sorted(offline)}\n{raw}")
    assert not wrong, "\n".join(wrong)


def test_mutant_fields_named_by_the_server_equal_the_offline_ones(
    mutant_verdicts: list[tuple[Any, tuple[Any, set[str], str]]],
) -> None:
    wrong = []
    for m, (stored, paths, raw) in mutant_verdicts:
        offline = offline_paths(m.doc)
        if m.whole_float:
            # The one known difference (docs/cli.md): the server takes `2.0` for an integer
            # and stores `2`, unless a CEL rule reads the field (the rule then fails on
            # the float); `ftjobs validate` refuses it. Checked as such, so a change shows.
            if offline != {m.path} or (
                stored is None and paths != offline and INT_GOT_FLOAT not in raw
            ):
                wrong.append(f"{m.id}: server {sorted(paths)}, offline {sorted(offline)}\n{raw}")
            continue
        if stored is not None and offline:
            wrong.append(f"{m.id}: the server accepts it, offline names {sorted(offline)}")
        elif paths != offline:
            wrong.append(f"{m.id}: server {sorted(paths)}, offline {sorted(offline)}\n{raw}")
    refused = sum(1 for _, (stored, _, _) in mutant_verdicts if stored is None)
    assert not wrong, f"{len(wrong)} of {len(mutant_verdicts)} differ:\n" + "\n".join(wrong)
    assert refused >= 200, refused


def test_the_path_comparison_catches_a_merely_related_path(
    custom_api: client.CustomObjectsApi, namespace: str
) -> None:
    """Negative control: `spec` as a list is refused at `spec`; a check that only asked
    "refused, and `spec` appears in the answer" passed for any refusal at all."""
    case = next(c for c in cases() if c.id == "spec-not-a-mapping")
    doc = yaml.safe_load(case.path.read_text())
    other = {**doc, "spec": {"task": "causal-lm"}}
    (_, paths, _), (_, other_paths, raw) = verdicts(custom_api, namespace, [doc, other])
    assert paths == {"spec"} == offline_paths(doc)
    assert "spec" in raw and other_paths != paths


OBSERVED = {
    "nothing yet": Observed(),
    "running": Observed(jobs=(ObservedJob("x-1", 1, active=1, ready=1),)),
    "failed retriably": Observed(
        jobs=(ObservedJob("x-1", 1, failed=1, failed_condition=True),),
        pod_failures=(PodFailure("x-1-0", exit_code=constants.EXIT_RETRIABLE),),
    ),
    "complete": Observed(jobs=(ObservedJob("x-1", 1, succeeded=1, complete=True),)),
}


def test_controller_reconciles_every_accepted_mutant_without_crashing(
    mutant_verdicts: list[tuple[Any, tuple[Any, set[str], str]]], cluster: Any, namespace: str
) -> None:
    accepted = [(m, stored) for m, (stored, _, _) in mutant_verdicts if stored is not None]
    assert accepted, "no mutant was accepted: nothing reached the controller"
    # The pure reconcile, over the stored objects (server defaults, uid, generation).
    for m, stored in accepted:
        try:
            job = FineTuneJob.model_validate(stored)
        except ValidationError:
            continue  # the controller's invalid-spec path; run for real below
        plans = {what: reconcile(job, observed, NOW) for what, observed in OBSERVED.items()}
        assert [o["kind"] for o in plans["nothing yet"].create].count("Job") == 1, m.id
        assert (plans["complete"].status or {}).get("phase") == "Succeeded", m.id
    # The controller's own reconcile against the server, once per distinct stored spec.
    distinct: dict[str, Any] = {}
    for m, stored in accepted:
        distinct.setdefault(json.dumps(stored["spec"], sort_keys=True), (m, stored))
    kube = Kube.connect(cluster.kubeconfig)
    controller = Controller(kube=kube)
    for i, (m, stored) in enumerate(distinct.values()):
        name = f"m{i:03d}"
        body = {**stored, "metadata": {"name": name, "namespace": namespace}}
        kube.create(body)
        for _ in range(2):  # create the attempt, then see it
            # Its changes, then its report (status, events), which the running controller
            # makes in a pool of its own.
            controller.report(controller.reconcile_key((namespace, name)))
        status = (kube.get_finetunejob(namespace, name) or {}).get("status") or {}
        assert status.get("phase") in ("Pending", "Queued", "Failed"), (m.id, status)
        if status["phase"] == "Failed":
            assert next(c for c in status["conditions"] if c["type"] == "Failed")["reason"] == (
                "InvalidSpec"
            ), (m.id, status)
