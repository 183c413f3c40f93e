"""Sequence packing for causal-lm: tokenized samples concatenated into rows of at most
max_seq_length tokens, with no attention and no loss across a sample boundary.

A packed row carries `position_ids` that restart at 0 for every sample and no
`attention_mask`. transformers reads restarting positions as packed sequences: with
flash-attention they become varlen boundaries, with sdpa/eager a block-diagonal causal
mask (this needs the model's KV cache off in training, see performance.prepare_model).
The first token of every sample gets label -100, so the last token of one sample is never
trained to predict the first token of the next; the loss of a packed row is then exactly
the token-weighted loss of its samples computed one by one (tests/training/test_packing).

Samples are packed greedily in their order, within blocks of `_BLOCK` rows (a batched
`map`, so map-style and streaming datasets pack alike and the run stays deterministic).
Padding, where a batch's rows differ in length, is one more "sample" of its own whose
positions restart too: it attends only to itself and carries no loss.
"""

from __future__ import annotations

from typing import Any

import torch

from ftjobs.trainer.tasks.common import IGNORE_INDEX, Batch, Collator, text_columns

_BLOCK = 1000  # samples per packing block (the map batch)


def pack_block(samples: dict[str, list[list[int]]], max_len: int) -> dict[str, list[list[int]]]:
    """Pack one block of tokenized samples (input_ids, labels) into rows of <= max_len."""
    rows: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "position_ids": []}
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []

    def flush() -> None:
        if ids:
            rows["input_ids"].append(list(ids))
            rows["labels"].append(list(labels))
            rows["position_ids"].append(list(positions))
            ids.clear()
            labels.clear()
            positions.clear()

    for sample_ids, sample_labels in zip(samples["input_ids"], samples["labels"], strict=True):
        sample_ids, sample_labels = sample_ids[:max_len], sample_labels[:max_len]
        if not sample_ids:
            continue
        if len(ids) + len(sample_ids) > max_len:
            flush()
        ids.extend(sample_ids)
        # The first token is predicted from the previous sample's last one: no loss there.
        labels.extend([IGNORE_INDEX, *sample_labels[1:]])
        positions.extend(range(len(sample_ids)))
    flush()
    return rows


def pack(features: Any, max_len: int) -> Any:
    """Tokenized causal-lm features -> packed rows (input_ids, labels, position_ids)."""
    from datasets import Dataset

    kwargs: dict[str, Any] = {
        "batched": True,
        "batch_size": _BLOCK,
        "remove_columns": text_columns(features),
        "fn_kwargs": {"max_len": max_len},
    }
    if isinstance(features, Dataset):
        kwargs["keep_in_memory"] = True
    return features.map(pack_block, **kwargs)


def packed_collator(pad_token_id: int) -> Collator:
    """Pads packed rows to the batch's longest; the padding is a sample of its own."""

    def collate(items: list[dict[str, Any]]) -> Batch:
        width = max(len(item["input_ids"]) for item in items)
        ids, labels, positions = [], [], []
        for item in items:
            pad = width - len(item["input_ids"])
            ids.append(list(item["input_ids"]) + [pad_token_id] * pad)
            labels.append(list(item["labels"]) + [IGNORE_INDEX] * pad)
            positions.append(list(item["position_ids"]) + list(range(pad)))
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "position_ids": torch.tensor(positions, dtype=torch.long),
        }

    return collate


__all__ = ["pack", "pack_block", "packed_collator"]
