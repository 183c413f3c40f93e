"""`ftjobs validate/render/crd/schema/version` through typer's CliRunner (real commands)."""

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ftjobs.cli.main import app
from ftjobs.sdk.schema import crd_yaml

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "spam-classification.yaml"
runner = CliRunner()


def run(*args: str, stdin: str | None = None):
    return runner.invoke(app, list(args), input=stdin)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_validate_valid_file_exits_0() -> None:
    result = run("validate", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert "sms-spam is valid" in result.stdout


def test_validate_reports_every_error_with_its_field_path(tmp_path: Path) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["hyperparameters"]["learningRate"] = 0
    doc["spec"]["resources"]["nodes"] = 0
    bad = write(tmp_path, "bad.yaml", yaml.safe_dump(doc))
    result = run("validate", str(bad))
    assert result.exit_code == 1
    lr = (
        rf"{re.escape(str(bad))}:\d+: spec\.hyperparameters\.learningRate: must be > 0\.0 \(got 0\)"
    )
    assert re.search(lr, result.stderr), result.stderr
    assert re.search(
        rf"{re.escape(str(bad))}:\d+: spec\.resources\.nodes: must be >= 1", result.stderr
    )


def test_validate_many_files_fails_if_any_is_invalid() -> None:
    invalid = ROOT / "tests/data/invalid/fp16-on-cpu.yaml"
    result = run("validate", str(EXAMPLE), str(invalid))
    assert result.exit_code == 1
    assert "sms-spam is valid" in result.stdout
    assert "spec.deepspeed.precision: fp16 precision needs GPUs" in result.stderr


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    bad = write(
        tmp_path, "broken.yaml", "kind: FineTuneJob\nspec:\n  task: [causal-lm\n  model: x\n"
    )
    result = run("validate", str(bad))
    assert result.exit_code == 1
    assert "YAML syntax error at line 4, column" in result.stderr


def test_duplicate_keys_are_errors_with_their_line(tmp_path: Path) -> None:
    bad = write(tmp_path, "dup.yaml", "kind: FineTuneJob\nspec:\n  task: seq2seq\n  task: x\n")
    result = run("validate", str(bad))
    assert result.exit_code == 1
    assert "line 4, column 3: duplicate key 'task'" in result.stderr


def test_unknown_field_gets_a_did_you_mean(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("learningRate:", "learningrate:")
    bad = write(tmp_path, "typo.yaml", text)
    result = run("validate", str(bad))
    assert result.exit_code == 1
    assert (
        "spec.hyperparameters.learningrate: unknown field 'learningrate' (did you mean "
        "'learningRate'?)" in result.stderr
    )


def test_missing_file_and_file_without_a_job(tmp_path: Path) -> None:
    result = run("validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1 and "cannot read file" in result.stderr
    other = write(tmp_path, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    result = run("validate", str(other))
    assert result.exit_code == 1 and "no FineTuneJob document found" in result.stderr


def test_multi_document_file_names_the_bad_document(tmp_path: Path) -> None:
    good = EXAMPLE.read_text()
    bad = good.replace("epochs: 3", "epochs: 0")
    path = write(tmp_path, "two.yaml", good + "---\n" + bad)
    result = run("validate", str(path))
    assert result.exit_code == 1
    line = len(good.splitlines()) + 1 + good.splitlines().index("    epochs: 3") + 1
    assert f"{path}:{line}: spec.hyperparameters.epochs: must be >= 1" in result.stderr
    assert f"{path} (document 1): sms-spam is valid" in result.stdout


def test_validate_reads_stdin() -> None:
    result = run("validate", "-", stdin=EXAMPLE.read_text())
    assert result.exit_code == 0, result.output


def test_no_files_is_a_usage_error() -> None:
    assert run("validate").exit_code == 2


def test_render_prints_a_yaml_stream_of_objects() -> None:
    result = run(
        "render",
        str(EXAMPLE),
        "-n",
        "ml",
        "--attempt",
        "2",
        "--image",
        "registry.local/trainer:dev",
    )
    assert result.exit_code == 0, result.output
    objects = list(yaml.safe_load_all(result.stdout))
    kinds = {o["kind"] for o in objects}
    assert {"Service", "NetworkPolicy", "Job"} <= kinds
    assert all(o["metadata"]["namespace"] == "ml" for o in objects)
    assert "registry.local/trainer:dev" in result.stdout


def test_render_applies_set_overrides() -> None:
    result = run(
        "render",
        str(EXAMPLE),
        "--set",
        "resources.nodes=2",
        "--set",
        "hyperparameters.globalBatchSize=64",
    )
    assert result.exit_code == 0, result.output
    job = next(o for o in yaml.safe_load_all(result.stdout) if o["kind"] == "Job")
    assert job["spec"]["completions"] == 2 == job["spec"]["parallelism"]


def test_render_refuses_an_invalid_override() -> None:
    result = run("render", str(EXAMPLE), "--set", "hyperparameters.learningRate=-1")
    assert result.exit_code == 1
    assert "spec.hyperparameters.learningRate: must be > 0.0 (got -1)" in result.stderr


def test_crd_prints_the_committed_crd() -> None:
    result = run("crd")
    assert result.exit_code == 0
    assert result.stdout == crd_yaml()
    assert result.stdout == (ROOT / "manifests/crd/finetunejobs.ftjobs.dev.yaml").read_text()


def test_schema_is_json_for_editors() -> None:
    result = run("schema")
    assert result.exit_code == 0
    assert "FineTuneJobSpec" in json.loads(result.stdout)["$defs"]


def test_version() -> None:
    result = run("version")
    assert result.exit_code == 0 and "ftjobs.dev/v1alpha1" in result.stdout


@pytest.mark.parametrize("command", ["validate", "render", "crd", "schema", "version"])
def test_every_command_has_help(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout


def test_field_errors_carry_the_line_of_the_field() -> None:
    path = ROOT / "tests/data/invalid/toleration-unknown-field.yaml"
    line = next(
        i for i, text in enumerate(path.read_text().splitlines(), 1) if "tolerationSecond:" in text
    )
    result = run("validate", str(path))
    assert f"{path}:{line}: spec.resources.tolerations[0].tolerationSecond: unknown field" in (
        result.stderr
    )
    # a missing field points at its parent
    missing = ROOT / "tests/data/invalid/storage-missing.yaml"
    spec_line = missing.read_text().splitlines().index("spec:") + 1
    assert (
        f"{missing}:{spec_line}: spec.storage: required field is missing"
        in run("validate", str(missing)).stderr
    )
