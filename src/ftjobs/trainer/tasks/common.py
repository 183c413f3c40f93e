"""Pieces every task adapter shares: offline loading, pad tokens, batching for evaluation.

Models may arrive wrapped by DeepSpeed: they are always called as `model(**batch)`,
`unwrap()` reaches the Hugging Face model for `.config` and `.generate`, and inputs go
to the device of the wrapper (its `.device`) or of the first parameter.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

Batch = dict[str, torch.Tensor]
Collator = Callable[[list[dict[str, Any]]], Batch]
# Causal-LM and seq2seq labels: positions with this value carry no loss.
IGNORE_INDEX = -100


def load_tokenizer(model_dir: Path, gguf_file: str | None = None) -> Any:
    """The model's tokenizer from local files, with a pad token (eos when it has none)."""
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"local_files_only": True}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    tokenizer = AutoTokenizer.from_pretrained(model_dir, **kwargs)
    if tokenizer.pad_token is None:
        # Padded positions are masked by attention_mask / IGNORE_INDEX, so eos is a safe pad.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def model_kwargs(dtype: torch.dtype, gguf_file: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"local_files_only": True, "dtype": dtype}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    return kwargs


def sync_pad(model: Any, tokenizer: Any) -> None:
    """Tell the model (and its generation config) which id pads."""
    model.config.pad_token_id = tokenizer.pad_token_id
    gen = getattr(model, "generation_config", None)
    if gen is not None and gen.pad_token_id is None:
        gen.pad_token_id = tokenizer.pad_token_id


def unwrap(model: Any) -> Any:
    """The Hugging Face model inside a DeepSpeed engine (or the model itself)."""
    return getattr(model, "module", model)


def device_of(model: Any) -> torch.device:
    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device
    if isinstance(device, str):
        return torch.device(device)
    first: torch.nn.Parameter = next(unwrap(model).parameters())
    return first.device


def text_columns(rows: Any) -> list[str]:
    """Columns of a (possibly iterable) dataset, to drop after tokenizing."""
    names = rows.column_names
    if names is None:  # an IterableDataset without known features
        names = list(rows.features or [])
    return list(names)


def map_rows(rows: Any, encode: Callable[[dict[str, list[Any]]], dict[str, Any]]) -> Any:
    """Batched `map` that replaces the canonical columns by the encoded ones.

    Map-style rows get a fresh fingerprint: hashing the closure (and its tokenizer) for
    datasets' cache costs time and buys nothing for in-memory data.
    """
    from datasets import Dataset

    kwargs: dict[str, Any] = {"batched": True, "remove_columns": text_columns(rows)}
    if isinstance(rows, Dataset):
        kwargs |= {"new_fingerprint": uuid.uuid4().hex, "keep_in_memory": True}
    return rows.map(encode, **kwargs)


def default_max_length(model: Any, tokenizer: Any, cap: int = 1024) -> int:
    """A safe truncation length when the caller gives none: the model's and tokenizer's limit."""
    limits = [cap]
    positions = getattr(unwrap(model).config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    if isinstance(tokenizer.model_max_length, int) and 0 < tokenizer.model_max_length < 10**9:
        limits.append(tokenizer.model_max_length)
    return min(limits)


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device) for k, v in batch.items()}


def eval_batches(
    encoded: Any, batch_size: int, collate: Collator, device: torch.device
) -> Iterator[tuple[int, Batch]]:
    """(rows in the batch, collated batch on `device`) over tokenized rows, in order."""
    for start in range(0, len(encoded), batch_size):
        items = [encoded[i] for i in range(start, min(start + batch_size, len(encoded)))]
        yield len(items), to_device(collate(items), device)


def padding_collator(tokenizer: Any) -> Collator:
    """Dynamic padding of every column (classification labels, QA start/end positions)."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer, return_tensors="pt")


@contextmanager
def evaluating(model: Any) -> Iterator[None]:
    """eval mode and no_grad for the duration; the previous mode is restored after."""
    was_training = bool(getattr(model, "training", True))
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if was_training:
            model.train()


def select(metrics: dict[str, float], wanted: list[str] | None) -> dict[str, float]:
    """Only the requested metrics (all of them when `wanted` is None)."""
    if not wanted:
        return metrics
    return {k: v for k, v in metrics.items() if k in wanted}


def token_loss_sums(
    logits: torch.Tensor, labels: torch.Tensor, *, shift: bool
) -> tuple[float, int]:
    """Summed cross-entropy and count of non-ignored label tokens (token-weighted averages)."""
    if shift:  # causal LMs predict token t+1 from position t
        logits, labels = logits[:, :-1, :], labels[:, 1:]
    flat_labels = labels.reshape(-1)
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(),
        flat_labels,
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    return float(loss), int((flat_labels != IGNORE_INDEX).sum())
