"""Property tests: every generated valid spec validates, round-trips and renders."""

from typing import Any

from hypothesis import HealthCheck, given, settings

from ftjobs.api.job import FineTuneJob
from ftjobs.api.validation import parse_job
from ftjobs.sdk.manifests import render_manifests
from tests.strategies import finetunejob_docs

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(finetunejob_docs())
def test_generated_specs_validate(doc: dict[str, Any]) -> None:
    job = parse_job(doc)
    spec = job.spec
    hp, res = spec.hyperparameters, spec.resources
    assert hp.global_batch_size == (
        hp.micro_batch_size * res.world_size * spec.gradient_accumulation_steps
    )


@SETTINGS
@given(finetunejob_docs())
def test_manifest_round_trips(doc: dict[str, Any]) -> None:
    job = parse_job(doc)
    manifest = job.to_manifest()
    assert parse_job(manifest) == job
    # the manifest is what the user wrote plus the defaults: nothing they wrote is lost
    assert_contains(manifest, doc)
    assert FineTuneJob.model_validate_json(job.model_dump_json(by_alias=True)) == job


def assert_contains(full: Any, part: Any, path: str = "") -> None:
    if isinstance(part, dict):
        for key, value in part.items():
            assert key in full, f"{path}.{key} lost"
            assert_contains(full[key], value, f"{path}.{key}")
    elif isinstance(part, list):
        assert len(full) == len(part), path
        for i, (a, b) in enumerate(zip(full, part, strict=True)):
            assert_contains(a, b, f"{path}[{i}]")
    else:
        assert full == part or str(full) == str(part), f"{path}: {full!r} != {part!r}"


@SETTINGS
@given(finetunejob_docs())
def test_generated_specs_render(doc: dict[str, Any]) -> None:
    job = parse_job(doc)
    objects = render_manifests(job, namespace="props")
    job_object = next(o for o in objects if o["kind"] == "Job")
    assert job_object["spec"]["completions"] == job.spec.resources.nodes
    for obj in objects:
        assert obj["metadata"]["namespace"] == "props"
