"""`--set PATH=VALUE` overrides (ftjobs.sdk.spec.apply_overrides)."""

import pytest

from ftjobs.api.validation import SpecError
from ftjobs.sdk.spec import apply_overrides, load_job, parse_documents

DOC = {"metadata": {"name": "a"}, "spec": {"hyperparameters": {"epochs": 1}}}


def test_paths_are_relative_to_spec_and_values_are_yaml_scalars() -> None:
    out = apply_overrides(DOC, ["hyperparameters.learningRate=5e-5", "suspend=true"])
    assert out["spec"]["hyperparameters"] == {"epochs": 1, "learningRate": 5e-5}
    assert out["spec"]["suspend"] is True
    assert DOC["spec"]["hyperparameters"] == {"epochs": 1}  # the input is not modified


def test_metadata_and_spec_prefixes_and_nested_creation() -> None:
    out = apply_overrides(DOC, ["metadata.name=b", "spec.resources.nodeSelector.zone=eu-1"])
    assert out["metadata"]["name"] == "b"
    assert out["spec"]["resources"] == {"nodeSelector": {"zone": "eu-1"}}


def test_list_indexes_set_and_append() -> None:
    out = apply_overrides(
        DOC,
        [
            "resources.tolerations[0].key=gpu",
            "resources.tolerations[0].operator=Exists",
            "resources.tolerations[1].key=spot",
        ],
    )
    assert out["spec"]["resources"]["tolerations"] == [
        {"key": "gpu", "operator": "Exists"},
        {"key": "spot"},
    ]


def test_quoted_values_stay_strings_and_empty_is_empty_string() -> None:
    out = apply_overrides(DOC, ['resources.cpu="4"', "queueName="])
    assert out["spec"]["resources"]["cpu"] == "4" and out["spec"]["queueName"] == ""


@pytest.mark.parametrize(
    "bad",
    ["noequals", "=1", "a..b=1", "resources.tolerations[3].key=x", "hyperparameters.epochs.x=1"],
)
def test_bad_overrides_are_spec_errors(bad: str) -> None:
    with pytest.raises(SpecError):
        apply_overrides(DOC, [bad])


def test_load_job_applies_overrides_before_validation(tmp_path) -> None:
    path = tmp_path / "j.yaml"
    path.write_text(
        "apiVersion: ftjobs.dev/v1alpha1\nkind: FineTuneJob\nmetadata: {name: j}\nspec:\n"
        "  task: causal-lm\n  model: {uri: 'hf://gpt2'}\n"
        "  dataset: {train: 'file:///d.jsonl'}\n  hyperparameters: {epochs: 1}\n"
        "  storage: {output: 'file:///o'}\n"
    )
    job = load_job(path, ["hyperparameters.epochs=null", "hyperparameters.maxSteps=7"])
    assert job.spec.hyperparameters.max_steps == 7 and job.spec.hyperparameters.epochs is None
    with pytest.raises(SpecError) as info:
        load_job(path, ["resources.nodes=0"])
    assert str(path) in str(info.value) and "spec.resources.nodes" in str(info.value)


def test_yaml_errors_carry_line_and_column() -> None:
    with pytest.raises(SpecError) as info:
        parse_documents("a: 1\nb: [2\n", "x.yaml")
    assert "line 3, column 1" in str(info.value) and str(info.value).startswith("x.yaml: ")
