"""The export-size estimate shared by the trainer's setup check and preflight."""

from __future__ import annotations

from typing import Any

import pytest

from ftjobs.api.export_size import MARGIN_BYTES, MARGIN_FRACTION, bytes_per_weight, export_bytes
from ftjobs.api.spec import FineTuneJobSpec


def _spec(**extra: Any) -> FineTuneJobSpec:
    doc: dict[str, Any] = {
        "task": "causal-lm",
        "model": {"uri": "s3://models/tiny"},
        "dataset": {"train": "s3://data/train.jsonl"},
        "hyperparameters": {"maxSteps": 10, "microBatchSize": 1},
        "storage": {"output": "s3://out"},
    }
    for key, value in extra.items():
        doc.setdefault(key, {}).update(value)
    return FineTuneJobSpec.model_validate(doc)


@pytest.mark.parametrize(
    ("extra", "per"),
    [
        ({}, 4),  # fp32 by default
        ({"deepspeed": {"precision": "bf16"}}, 2),
        ({"deepspeed": {"precision": "bf16"}, "model": {"dtype": "float32"}}, 4),
        ({"model": {"dtype": "bfloat16"}}, 2),
    ],
)
def test_bytes_per_weight(extra: dict[str, Any], per: int) -> None:
    assert bytes_per_weight(_spec(**extra)) == per


def test_full_model_adapter_only_and_merged() -> None:
    params = 10**9
    full = export_bytes(_spec(), params=params)
    assert full == int(4 * params * (1 + MARGIN_FRACTION)) + MARGIN_BYTES
    adapter = export_bytes(_spec(lora={"r": 8}), params=params, adapter_params=10**6)
    assert adapter == int(4 * 10**6 * (1 + MARGIN_FRACTION)) + MARGIN_BYTES
    merged = export_bytes(
        _spec(lora={"r": 8, "mergeOnExport": True}), params=params, adapter_params=10**6
    )
    assert merged > full > adapter
