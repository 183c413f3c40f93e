"""The generated CRD, evaluated offline (defaults, schema, CEL via cel-python) against the
corpus, the examples and generated valid specs: it must refuse what the models refuse, at
the same field, and accept what they accept, with the same defaults."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator

from ftjobs.api.crd import IMMUTABLE_MESSAGE, json_schema
from ftjobs.api.validation import parse_job
from ftjobs.sdk.spec import is_finetunejob, load_documents
from tests.corpus import cases
from tests.crd_check import apply_defaults, cel_errors, server_errors
from tests.mutants import offline_paths
from tests.strategies import finetunejob_docs

ROOT = Path(__file__).resolve().parents[3]
CASES = cases()
EXAMPLES = sorted((ROOT / "examples").glob("**/*.yaml"))
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only_doc(path: Path) -> dict[str, Any]:
    return next(d for d in load_documents(path) if is_finetunejob(d))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_crd_refuses_each_corpus_spec_at_the_expected_field(case: Any) -> None:
    doc = yaml.safe_load(case.path.read_text())
    errors = server_errors(doc)
    refused = case.expect in {path for path, _ in errors}
    if case.server_skip:
        # `# server: <reason>` documents a gap; if the CRD starts catching it, drop the line.
        assert not refused, f"{case.path.name}: the CRD refuses it now; remove '# server:'"
        return
    assert refused, f"{case.path.name}: expected {case.expect}, CRD says {errors}"
    # Not only the expected field: the very same set of fields as `ftjobs validate`.
    assert {path for path, _ in errors} == offline_paths(doc), case.path.name


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_crd_accepts_the_examples(path: Path) -> None:
    for doc in load_documents(path):
        if is_finetunejob(doc):
            assert server_errors(doc) == []


@SETTINGS
@given(finetunejob_docs())
def test_crd_accepts_valid_specs_and_defaults_like_the_models(doc: dict[str, Any]) -> None:
    assert server_errors(doc) == []
    stored = apply_defaults(doc)
    assert parse_job(stored).spec == parse_job(doc).spec
    # every section with defaults is filled in by the server, so controllers see values
    assert stored["spec"]["deepspeed"]["zeroStage"] == parse_job(doc).spec.deepspeed.zero_stage


@SETTINGS
@given(finetunejob_docs())
def test_immutability_rules(doc: dict[str, Any]) -> None:
    assert server_errors(doc, old=doc) == []
    suspended = copy.deepcopy(doc)
    suspended["spec"]["suspend"] = not doc["spec"].get("suspend", False)
    assert server_errors(suspended, old=doc) == []
    changed = copy.deepcopy(doc)
    # Flip the lowest bit: a different seed that stays inside the field's bounds (seed + 1
    # would step past the maximum and be refused for that instead).
    changed["spec"]["hyperparameters"]["seed"] = (
        changed["spec"]["hyperparameters"].get("seed", 42) ^ 1
    )
    assert ("spec.hyperparameters", IMMUTABLE_MESSAGE) in server_errors(changed, old=doc)
    queued = copy.deepcopy(doc)
    if queued["spec"].pop("queueName", None) is None:
        queued["spec"]["queueName"] = "other-queue"
    assert ("spec.queueName", IMMUTABLE_MESSAGE) in server_errors(queued, old=doc)


def test_offline_and_crd_messages_agree_for_cross_field_rules() -> None:
    rules = {c.id: c for c in CASES}
    for name in (
        "fp16-on-cpu",
        "lora-on-question-answering",
        "split-ratios-sum-to-one",
        "batch-not-divisible-by-processes",
        "name-too-long",
        "metric-wrong-task",
        "fields-wrong-task",
        "packing-on-classification",
        "packing-streaming-epochs",
        "qlora-without-lora",
        "qlora-on-cpu",
        "qlora-zero3",
        "qlora-fp32",
        "flash-attention-on-cpu",
    ):
        case = rules[name]
        doc = yaml.safe_load(case.path.read_text())
        crd = dict(cel_errors(apply_defaults(doc)))
        with pytest.raises(Exception) as info:
            parse_job(doc)
        offline = {e.path: e.message for e in info.value.errors}  # type: ignore[attr-defined]
        crd_message = crd[case.expect]
        # Offline says the server's message, then the numbers involved (batch sizes).
        assert any(m.startswith(crd_message) for m in offline.values()), (name, crd, offline)


EDITOR_SCHEMA = Draft202012Validator(json_schema())


@SETTINGS
@given(finetunejob_docs())
def test_editor_schema_accepts_valid_specs(doc: dict[str, Any]) -> None:
    assert [e.message for e in EDITOR_SCHEMA.iter_errors(doc)] == []


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_editor_schema_accepts_the_examples(path: Path) -> None:
    for doc in load_documents(path):
        if is_finetunejob(doc):
            assert [e.message for e in EDITOR_SCHEMA.iter_errors(doc)] == []


def test_editor_schema_refuses_unknown_fields_and_bad_values() -> None:
    for name in (
        "unknown-section-typo",
        "learning-rate-zero",
        "model-uri-https",
        "cpu-quantity-word",
    ):
        doc = yaml.safe_load((ROOT / "tests/data/invalid" / f"{name}.yaml").read_text())
        assert list(EDITOR_SCHEMA.iter_errors(doc)), name
