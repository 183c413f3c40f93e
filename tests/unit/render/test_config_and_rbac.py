"""The attempt's trainer config (a Job pod-template annotation) and the trainer's RBAC."""

import json
from typing import Any

import pytest

from ftjobs.api import constants as c
from ftjobs.api.trainer_config import TrainerConfig
from ftjobs.render.config import ConfigTooLarge, config_json
from tests.builders import make_job
from tests.unit.render.helpers import NAMESPACE, UID, by_kind, render, trainer_config_json

BUILDERS = {
    "cpu": make_job("cpu"),
    "zero3": make_job("big").nodes(4).gpus(8).zero(3).bf16().shm("64Gi").credentials("s3"),
    "lora": make_job("lora").lora(r=16, alpha=32, target_modules=["q_proj", "v_proj"]),
    "raw": make_job("raw").spec("deepspeed.overrides", {"zero_optimization": {"x": [1, None]}}),
}


@pytest.mark.parametrize("key", BUILDERS)
@pytest.mark.parametrize(("attempt", "resume"), [(1, False), (3, True)])
def test_config_json_parses_back_into_the_trainer_config(
    key: str, attempt: int, resume: bool
) -> None:
    job = BUILDERS[key].build()
    objects = render(job, attempt=attempt, resume=resume)
    # No object of its own: the Job's pod template carries it (one API write fewer).
    assert "ConfigMap" not in by_kind(objects)
    template = by_kind(objects)["Job"]["spec"]["template"]
    text = template["metadata"]["annotations"][c.CONFIG_ANNOTATION]
    assert trainer_config_json(objects) == text
    config = TrainerConfig.model_validate_json(text)
    assert config.spec == job.spec
    assert (config.name, config.namespace, config.uid) == (job.metadata.name, NAMESPACE, UID)
    assert (config.attempt, config.resume) == (attempt, resume)
    assert config.output_uri == f"s3://outputs/finetunes/{NAMESPACE}/{job.metadata.name}"
    # camelCase (what the CRD and the user's YAML say), keys sorted for stable bytes.
    data = json.loads(text)
    assert "outputUri" in data and "output_uri" not in data
    assert json.dumps(data, sort_keys=True, indent=2) + "\n" == text
    assert text == config_json(config)


def test_resume_is_the_callers_not_the_specs() -> None:
    job = make_job("llm").checkpoint(resume=True).build()
    fresh = trainer_config_json(render(job, resume=False))
    assert TrainerConfig.model_validate_json(fresh).resume is False
    assert TrainerConfig.model_validate_json(fresh).spec.checkpointing.resume is True


def _with_overrides(filler: int) -> list[dict[str, Any]]:
    job = make_job("big").spec("deepspeed.overrides", {"filler": "a" * filler})
    return render(job)


def test_a_config_too_large_for_the_annotation_is_refused_naming_the_field() -> None:
    # The bound is exact: key plus JSON bytes up to CONFIG_MAX_BYTES fit, one more does not.
    base = len(c.CONFIG_ANNOTATION) + len(trainer_config_json(_with_overrides(0)).encode())
    room = c.CONFIG_MAX_BYTES - base
    fits = trainer_config_json(_with_overrides(room))
    assert len(c.CONFIG_ANNOTATION) + len(fits.encode()) == c.CONFIG_MAX_BYTES
    with pytest.raises(ConfigTooLarge) as err:
        _with_overrides(room + 1)
    message = str(err.value)
    assert f"{c.CONFIG_MAX_BYTES + 1} bytes" in message
    assert c.CONFIG_ANNOTATION in message
    assert "largest: spec.deepspeed (" in message
    # Well below the API server's 256 KiB for all of a pod's annotations together.
    assert c.CONFIG_MAX_BYTES <= 256 * 1024 // 2


def test_todays_configs_are_far_below_the_bound() -> None:
    for builder in BUILDERS.values():
        assert len(trainer_config_json(render(builder))) < c.CONFIG_MAX_BYTES // 10


def test_a_per_job_role_allows_only_reading_and_patching_its_own_job() -> None:
    irsa = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/ftjobs-s3"}
    objects = by_kind(render(make_job("llm").spec("serviceAccount", {"annotations": irsa})))
    rules = objects["Role"]["rules"]
    assert rules == [
        {
            "apiGroups": [c.GROUP],
            "resources": [c.PLURAL],
            "resourceNames": ["llm"],
            "verbs": ["get"],
        },
        {
            "apiGroups": [c.GROUP],
            "resources": [f"{c.PLURAL}/status"],
            "resourceNames": ["llm"],
            "verbs": ["get", "patch"],
        },
    ]
    verbs = {v for r in rules for v in r["verbs"]}
    assert not verbs & {"create", "delete", "update", "list", "watch", "*"}


def test_by_default_the_pods_run_as_the_namespaces_shared_trainer_identity() -> None:
    objects = render(make_job("llm"))
    shared = [o for o in objects if o["metadata"]["name"] == c.TRAINER_IDENTITY]
    assert sorted(o["kind"] for o in shared) == ["Role", "RoleBinding", "ServiceAccount"]
    kinds = by_kind(objects)
    assert kinds["Job"]["spec"]["template"]["spec"]["serviceAccountName"] == c.TRAINER_IDENTITY
    for obj in shared:
        # The namespace's, not the job's: no owner, no job label, kept when the job goes.
        assert "ownerReferences" not in obj["metadata"]
        assert c.LABEL_JOB not in obj["metadata"]["labels"]
    # The same verbs as a per-job Role, on every FineTuneJob of the namespace: the
    # admission policy (docs/security.md) narrows each pod to its own job.
    rules = kinds["Role"]["rules"]
    assert all("resourceNames" not in r for r in rules)
    assert {v for r in rules for v in r["verbs"]} == {"get", "patch"}
    assert {r for rule in rules for r in rule["resources"]} == {c.PLURAL, f"{c.PLURAL}/status"}
    # Nothing else of the job is named like it, and a job name can never be (no dots).
    assert "." in c.TRAINER_IDENTITY


def test_role_binding_binds_the_pods_service_account() -> None:
    objects = by_kind(render(make_job("llm")))
    binding = objects["RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": objects["Role"]["metadata"]["name"],
    }
    sa = objects["ServiceAccount"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
    assert objects["Job"]["spec"]["template"]["spec"]["serviceAccountName"] == sa


def test_workload_identity_annotations_go_on_the_per_job_service_account() -> None:
    irsa = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/ftjobs-s3"}
    objects = by_kind(render(make_job("llm").spec("serviceAccount", {"annotations": irsa})))
    sa = objects["ServiceAccount"]
    assert sa["metadata"]["annotations"] == irsa
    assert (
        objects["Job"]["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    )


def test_a_users_own_service_account_is_bound_to_the_jobs_role_not_created() -> None:
    objects = by_kind(render(make_job("llm").spec("serviceAccount", {"name": "team-gcs"})))
    assert "ServiceAccount" not in objects  # the user's: never created or deleted by us
    assert objects["Job"]["spec"]["template"]["spec"]["serviceAccountName"] == "team-gcs"
    assert objects["RoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "team-gcs", "namespace": NAMESPACE}
    ]
    # Still least privilege: the same Role, scoped to this one FineTuneJob.
    assert {n for r in objects["Role"]["rules"] for n in r["resourceNames"]} == {"llm"}


def test_service_account_name_and_annotations_exclude_each_other() -> None:
    from ftjobs.api.validation import SpecError, parse_job

    doc = make_job("llm").spec("serviceAccount", {"name": "x", "annotations": {"a": "b"}}).doc()
    with pytest.raises(SpecError) as info:
        parse_job(doc)
    assert [e.path for e in info.value.errors] == ["spec.serviceAccount.annotations"]


def test_image_pull_secrets_from_the_controller_and_the_spec() -> None:
    from ftjobs.render import RenderSettings

    settings = RenderSettings(image_pull_secrets=("registry", "shared"))
    job = make_job("llm").spec("imagePullSecrets", ["team-registry", "shared"])
    pod = by_kind(render(job, settings=settings))["Job"]["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [
        {"name": "registry"},
        {"name": "shared"},
        {"name": "team-registry"},
    ]
    plain = by_kind(render(make_job("llm")))["Job"]["spec"]["template"]["spec"]
    assert "imagePullSecrets" not in plain
