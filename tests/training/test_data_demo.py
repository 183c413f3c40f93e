"""hack/prepare_demo.py's offline converter: the gettext catalog parser agrees with the
stdlib, and the translation pairs it writes are stable and prepare as seq2seq data."""

from __future__ import annotations

import gettext
import json
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


def test_chat_conversations_become_messages_that_prepare_as_chat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The conversion of chatterbot conversations (given here, not downloaded)."""
    demo = prepare_demo_module()
    conversations = [
        [f"question {i}", f"answer {i}", f"more {i}", f"again {i}", f"dangling {i}"][: 2 + i % 4]
        for i in range(40)
    ]
    monkeypatch.setattr(demo, "_chatterbot_conversations", lambda: conversations)
    monkeypatch.setenv("FTJOBS_DEMO_DIR", str(tmp_path))
    out = demo.chat_messages()
    rows = [
        json.loads(line) for name in ("train", "test") for line in (out / f"{name}.jsonl").open()
    ]
    assert len(rows) == 40
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        assert roles[0] == "system" and roles[-1] == "assistant"  # dangling user turn cut
        assert roles[1:] == ["user", "assistant"] * ((len(roles) - 1) // 2)

    spec = FineTuneJobSpec.model_validate(
        {
            "task": "causal-lm",
            "model": {"uri": "file:///models/tiny"},
            "dataset": {"train": f"file://{out}/train.jsonl", "test": f"file://{out}/test.jsonl"},
            "hyperparameters": {"epochs": 1},
            "storage": {"output": "file:///tmp/ftjobs-out"},
        }
    )
    p = prepare_data(spec)
    assert len(p.test) == 4 and json.loads(p.test[0]["messages"])[0]["role"] == "system"
