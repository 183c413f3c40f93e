"""Model rules, defaults, aliases and the messages `ftjobs validate` prints."""

from typing import Any

import pytest

from ftjobs.api.job import FineTuneJob
from ftjobs.api.spec import FineTuneJobSpec, Resources
from ftjobs.api.trainer_config import TrainerConfig, job_output_uri
from ftjobs.api.validation import SpecError, parse_job


def doc(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "task": "causal-lm",
        "model": {"uri": "hf://gpt2"},
        "dataset": {"train": "file:///data/train.jsonl"},
        "hyperparameters": {"maxSteps": 10},
        "storage": {"output": "file:///tmp/out"},
    }
    base.update(spec)
    return {
        "apiVersion": "ftjobs.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "job"},
        "spec": base,
    }


def errors(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        parse_job(document)
    return {e.path: e.message for e in info.value.errors}


def test_minimal_spec_gets_the_documented_defaults() -> None:
    spec = parse_job(doc()).spec
    assert spec.hyperparameters.learning_rate == 2e-5
    assert spec.deepspeed.zero_stage == 2 and spec.deepspeed.precision == "fp32"
    assert spec.resources.nodes == 1 and spec.resources.cpu == "2"
    assert spec.dataset.split.validation_ratio == 0.1
    assert spec.checkpointing.keep == 2 and spec.failure_policy.max_restarts == 3
    assert spec.lora is None and spec.suspend is False


def test_yaml_is_camel_case_and_python_is_snake_case() -> None:
    job = parse_job(doc(hyperparameters={"maxSteps": 5, "learningRate": 1e-4}))
    assert job.spec.hyperparameters.max_steps == 5
    manifest = job.to_manifest()
    assert manifest["spec"]["hyperparameters"]["learningRate"] == 1e-4
    assert "learning_rate" not in manifest["spec"]["hyperparameters"]
    assert parse_job(manifest) == job


def test_snake_case_in_a_document_is_an_unknown_field_with_a_hint() -> None:
    found = errors(doc(hyperparameters={"maxSteps": 5, "learning_rate": 1e-4}))
    assert found == {
        "spec.hyperparameters.learning_rate": "unknown field 'learning_rate' "
        "(did you mean 'learningRate'?)"
    }


def test_no_lax_coercion_like_the_api_server() -> None:
    assert "spec.hyperparameters.maxSteps" in errors(doc(hyperparameters={"maxSteps": "5"}))
    assert "spec.suspend" in errors(doc(suspend="true"))
    # ints are fine where numbers are expected, and quantities may be integers
    job = parse_job(doc(hyperparameters={"maxSteps": 5, "learningRate": 1}, resources={"cpu": 4}))
    assert job.spec.resources.cpu == "4"


def test_bound_messages_name_the_limit_and_the_value() -> None:
    found = errors(doc(hyperparameters={"maxSteps": 5, "learningRate": 0}))
    assert found["spec.hyperparameters.learningRate"] == "must be > 0.0 (got 0)"


def test_every_error_is_reported_not_just_the_first() -> None:
    found = errors(doc(hyperparameters={"maxSteps": 0}, resources={"nodes": 0}, task="x"))
    assert {"spec.hyperparameters.maxSteps", "spec.resources.nodes", "spec.task"} <= set(found)


def test_batch_sizes_must_divide_across_all_processes() -> None:
    hp = {"maxSteps": 5, "globalBatchSize": 64, "microBatchSize": 2}
    spec = parse_job(doc(hyperparameters=hp, resources={"nodes": 2, "gpusPerNode": 8})).spec
    assert spec.gradient_accumulation_steps == 2
    hp["globalBatchSize"] = 48
    found = errors(doc(hyperparameters=hp, resources={"nodes": 2, "gpusPerNode": 8}))
    assert found["spec.hyperparameters.globalBatchSize"] == (
        "globalBatchSize must be divisible by microBatchSize x total processes (nodes x "
        "processes per node): 48 is not divisible by 2 x 16 process(es) = 32; "
        "nearest valid: 32 or 64"
    )


def test_processes_per_node_on_cpu_count_in_the_world_size() -> None:
    res = Resources(nodes=2, processes_per_node=3)
    assert res.procs_per_node == 3 and res.world_size == 6
    assert Resources(gpus_per_node=4).world_size == 4


def test_lora_allowed_for_causal_lm_refused_for_question_answering() -> None:
    assert parse_job(doc(lora={})).spec.lora is not None
    found = errors(doc(task="question-answering", lora={}))
    assert found == {
        "spec.lora": "lora is supported for causal-lm, seq2seq, sequence-classification and "
        "summarization"
    }


def test_metric_must_belong_to_the_task_naming_the_list_as_the_server_does() -> None:
    assert parse_job(doc(evaluation={"metrics": ["perplexity"]}))
    found = errors(doc(evaluation={"metrics": ["perplexity", "accuracy"]}))
    # The CEL rule's fieldPath cannot name an index, so neither does the offline check.
    assert list(found) == ["spec.evaluation.metrics"]


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("s3://bucket/models/llama/", True),
        ("file:///models/gpt2", True),
        ("hf://sentence-transformers/all-MiniLM-L6-v2", True),
        ("hf://gpt2", True),
        ("s3://B/upper", False),
        ("http://example.com/model", False),
        ("file://relative/path", False),
        ("hf://", False),
    ],
)
def test_model_uris(uri: str, ok: bool) -> None:
    document = doc(model={"uri": uri})
    if ok:
        assert parse_job(document).spec.model.uri == uri
    else:
        assert "spec.model.uri" in errors(document)


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("ghcr.io/ftjobs/trainer:0.1.0", True),
        ("localhost:5000/trainer", True),
        ("trainer@sha256:" + "a" * 64, True),
        ("ghcr.io/ftjobs/Trainer:0.1.0", False),
        ("trainer:", False),
        ("trainer@sha256:abc", False),
    ],
)
def test_image_references(image: str, ok: bool) -> None:
    document = doc(resources={"image": image})
    if ok:
        assert parse_job(document).spec.resources.image == image
    else:
        assert "spec.resources.image" in errors(document)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("sentiment", True),
        ("a", True),
        ("job-2", True),
        ("x" * 40, True),
        ("x" * 41, False),
        ("2job", False),
        ("job-", False),
        ("Job", False),
        ("a.b", False),
    ],
)
def test_job_names(name: str, ok: bool) -> None:
    document = doc()
    document["metadata"]["name"] = name
    if ok:
        assert parse_job(document).metadata.name == name
    else:
        assert "metadata.name" in errors(document)


def test_document_must_be_a_mapping_and_the_kind_right() -> None:
    with pytest.raises(SpecError):
        parse_job(["not", "a", "mapping"])
    bad = doc()
    bad["kind"] = "Deployment"
    assert "kind" in errors(bad)


def test_spec_error_message_carries_source_and_paths() -> None:
    with pytest.raises(SpecError) as info:
        parse_job(doc(resources={"nodes": 0}), source="job.yaml")
    assert str(info.value).startswith("job.yaml: spec.resources.nodes: must be >= 1")


def test_trainer_config_resolves_the_output_uri() -> None:
    spec = FineTuneJobSpec.model_validate(doc()["spec"])
    config = TrainerConfig.for_job(spec, name="job", namespace="ml", attempt=2)
    assert (
        config.output_uri
        == "file:///tmp/out/ml/job"
        == job_output_uri("file:///tmp/out/", "ml", "job")
    )
    again = TrainerConfig.model_validate_json(config.model_dump_json(by_alias=True))
    assert again == config


def test_status_parses_phase_strings() -> None:
    job = FineTuneJob.model_validate({**doc(), "status": {"phase": "Running", "restarts": 1}})
    assert job.status is not None and job.status.phase == "Running"


def test_check_update_allows_suspend_only() -> None:
    from ftjobs.api.validation import check_update

    old = parse_job(doc()).spec
    assert check_update(old, old.model_copy(update={"suspend": True})) == []
    changed = parse_job(doc(task="seq2seq", queueName="q")).spec
    found = {e.path: e.message for e in check_update(old, changed)}
    assert found == {
        "spec.task": "is immutable; create a new FineTuneJob",
        "spec.queueName": "is immutable; create a new FineTuneJob",
    }
