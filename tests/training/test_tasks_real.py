"""The real model: all-MiniLM-L6-v2 (packaged) learns VADER tweet sentiment on CPU.

200 balanced training tweets, a few plain-torch AdamW epochs through the task adapter,
and held-out accuracy on 200 other balanced tweets must rise by at least 20 points over
the untrained classification head. Data comes from hack/prepare_demo.py (the vaderSentiment
source distribution, downloaded once into ~/.cache/ftjobs/downloads).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, cast

import pytest
import torch

from ftjobs.trainer.tasks import get_task
from tests.training.trainer_run import prepare_demo_module

LABELS = ["negative", "positive"]


def balanced(path: Path, per_label: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    out = []
    for label in LABELS:
        picked = [r for r in rows if r["label"] == label][:per_label]
        assert len(picked) == per_label, f"not enough {label} rows in {path}"
        out += [{"text": r["text"], "label": LABELS.index(label)} for r in picked]
    return out


def test_minilm_learns_tweet_sentiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets import Dataset

    monkeypatch.setenv("FTJOBS_DEMO_DIR", str(tmp_path / "demo"))
    demo = prepare_demo_module()
    data_dir = demo.sentiment()
    model_dir = demo.minilm()
    train = Dataset.from_list(balanced(data_dir / "train.jsonl", 100))
    held_out = Dataset.from_list(balanced(data_dir / "test.jsonl", 100))
    assert not set(train["text"]) & set(held_out["text"])

    torch.manual_seed(0)
    adapter = get_task("sequence-classification")
    model, tokenizer = adapter.load_model(model_dir, labels=LABELS, dtype=torch.float32)
    assert sum(p.numel() for p in model.parameters()) > 20_000_000  # the real 22.7M model

    def accuracy() -> float:
        metrics = adapter.evaluate(
            model, tokenizer, held_out, batch_size=50, max_new_tokens=1, metrics=None,
            max_seq_length=64,
        )  # fmt: skip
        return metrics["accuracy"]

    base = accuracy()
    # The word-embedding table is half of the parameters; freezing it halves the optimizer
    # work on these shared CPUs and is a common choice for small fine-tuning sets anyway.
    embeddings: Any = cast(Any, model).get_input_embeddings()
    embeddings.weight.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    encoded = adapter.tokenize(train, tokenizer, 64)
    collate = adapter.collator(tokenizer)
    started = time.monotonic()
    model.train()
    for epoch in range(2):
        order = torch.randperm(len(encoded), generator=torch.Generator().manual_seed(epoch))
        for start in range(0, len(order), 16):
            batch = collate([encoded[int(i)] for i in order[start : start + 16]])
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    trained = accuracy()
    print(
        f"MiniLM held-out accuracy {base:.3f} -> {trained:.3f} ({time.monotonic() - started:.0f}s)"
    )
    assert trained >= base + 0.20, (base, trained)
    assert trained >= 0.75
