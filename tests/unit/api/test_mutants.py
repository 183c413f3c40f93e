"""Mutants of every example (tests/mutants.py): `ftjobs validate` names exactly the fields the
CRD names (offline stand-in: tests/crd_check.py; the real API server: the integration
tier), and the generator really breaks what it says it breaks."""

from __future__ import annotations

from collections import Counter

import pytest

from ftjobs.api.validation import SpecError, parse_job
from tests.corpus import cases
from tests.crd_check import server_errors
from tests.mutants import Mutant, examples, mutants, offline_paths

MUTANTS = mutants()
# Kinds that always make the document invalid at the mutated field (or an item of it).
BREAKING = ("type", "enum", "uri", "pattern", "required", "unknown", "bound")


def names(path: str, field: str) -> bool:
    return path == field or path.startswith((field + ".", field + "["))


def test_at_least_200_invalid_specs_from_every_example() -> None:
    refused = [m for m in MUTANTS if offline_paths(m.doc)]
    assert len(refused) + len(cases()) >= 200
    stems = Counter(m.id.split(":")[0] for m in refused)
    assert set(stems) == {stem for stem, _ in examples()}, stems
    kinds = Counter(m.kind for m in refused)
    assert set(BREAKING) <= set(kinds), kinds


def test_every_breaking_mutant_is_refused_naming_the_mutated_field() -> None:
    wrong = []
    for m in MUTANTS:
        if m.kind not in BREAKING:
            continue
        paths = offline_paths(m.doc)
        if not paths or not all(names(p, m.path) for p in paths):
            wrong.append(f"{m.id}: {sorted(paths)}")
    assert not wrong, "\n".join(wrong)


def test_offline_and_crd_name_the_same_fields_for_every_mutant() -> None:
    wrong = []
    for m in MUTANTS:
        offline = offline_paths(m.doc)
        crd = {path for path, _ in server_errors(m.doc)}
        if offline != crd:
            wrong.append(f"{m.id}: offline {sorted(offline)}, CRD {sorted(crd)}")
    assert not wrong, "\n".join(wrong)


def test_the_comparison_catches_a_different_path() -> None:
    """Negative control: a validator that names a field's parent is caught."""
    m = next(x for x in MUTANTS if x.kind == "bound" and x.path.count(".") >= 2)
    crd = {path for path, _ in server_errors(m.doc)}
    parent = {p.rsplit(".", 1)[0] for p in offline_paths(m.doc)}
    assert crd and parent != crd


@pytest.mark.parametrize(
    "field", ["deepspeed", "resources", "evaluation", "lora", "learningRate"], ids=str
)
def test_explicit_null_means_unset_as_on_the_server(field: str) -> None:
    m: Mutant = next(x for x in MUTANTS if x.kind == "null" and x.path.endswith("." + field))
    job = parse_job(m.doc)  # the API server prunes the null, then defaults
    assert server_errors(m.doc) == []
    assert job is not None


def test_explicit_null_of_a_required_field_is_a_missing_field() -> None:
    m = next(x for x in MUTANTS if x.kind == "null" and x.path == "spec.task")
    with pytest.raises(SpecError) as info:
        parse_job(m.doc)
    assert [(e.path, e.message) for e in info.value.errors] == [
        ("spec.task", "required field is missing")
    ]
