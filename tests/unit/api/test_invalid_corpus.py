"""Every spec in tests/data/invalid is refused offline, naming exactly the field its header
expects (a field below it, `spec.model.uri` for `spec.model`, does not count)."""

import pytest

from ftjobs.api.validation import SpecError
from ftjobs.sdk.spec import load_job
from tests.corpus import cases

CASES = cases()


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_spec_is_refused_naming_the_field(case) -> None:
    with pytest.raises(SpecError) as info:
        load_job(case.path)
    paths = [e.path for e in info.value.errors]
    assert case.expect in paths, (
        f"{case.path.name}: expected an error at {case.expect}, got {info.value}"
    )
    assert str(case.path) in str(info.value)
    for error in info.value.errors:
        assert error.message, error
