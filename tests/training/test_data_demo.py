"""hack/prepare_demo.py's offline converter: the gettext catalog parser agrees with the
stdlib, and the translation pairs it writes are stable and prepare as seq2seq data."""

from __future__ import annotations

import gettext
from pathlib import Path

import pytest

from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.trainer.data import prepare_data
from tests.training.trainer_run import prepare_demo_module


def test_mo_parser_matches_the_stdlib_catalog() -> None:
    demo = prepare_demo_module()
    with demo.COREUTILS_MO.open("rb") as f:
        catalog = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
    singular = {
        k: v
        for k, v in catalog.items()
        if isinstance(k, str) and k and "\x04" not in k and v  # no header, plurals, contexts
    }
    parsed = demo.read_mo(demo.COREUTILS_MO)
    assert len(parsed) > 500
    assert {k: v for k, v in parsed.items() if k in singular} == singular
    assert set(singular) <= set(parsed)


def test_translation_pairs_are_stable_and_prepare_as_seq2seq(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = prepare_demo_module()
    monkeypatch.setenv("FTJOBS_DEMO_DIR", str(tmp_path / "a"))
    first = demo.translation()
    monkeypatch.setenv("FTJOBS_DEMO_DIR", str(tmp_path / "b"))
    second = demo.translation()
    for name in ("train.jsonl", "test.jsonl"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    stamp = (first / "train.jsonl").stat().st_mtime_ns
    monkeypatch.setenv("FTJOBS_DEMO_DIR", str(tmp_path / "a"))
    demo.translation()  # idempotent: present output is kept as is
    assert (first / "train.jsonl").stat().st_mtime_ns == stamp

    spec = FineTuneJobSpec.model_validate(
        {
            "task": "seq2seq",
            "model": {"uri": "file:///models/tiny"},
            "dataset": {
                "train": f"file://{first}/train.jsonl",
                "test": f"file://{first}/test.jsonl",
                "promptTemplate": "Translate to German: {source}",
            },
            "hyperparameters": {"epochs": 1},
            "storage": {"output": "file:///tmp/ftjobs-out"},
        }
    )
    p = prepare_data(spec)
    assert len(p.train) > 400 and len(p.test) > 40
    assert p.report["leakage"]["dropped_from_train"] == 0
    assert all(r["source"].startswith("Translate to German: ") for r in p.test)
