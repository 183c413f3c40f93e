"""Task adapters: model loading, tokenization, collation and metrics per FineTuneJob task.

`get_task(name)` returns a fresh adapter for one of the spec's tasks. The recipe calls
load_model -> tokenize -> collator for training and evaluate for validation/test; the
interface is `TaskAdapter` below.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch

from ftjobs.trainer.tasks.causal_lm import CausalLM
from ftjobs.trainer.tasks.classification import SequenceClassification
from ftjobs.trainer.tasks.common import IGNORE_INDEX
from ftjobs.trainer.tasks.question_answering import QuestionAnswering
from ftjobs.trainer.tasks.seq2seq import Seq2Seq


class TaskAdapter(Protocol):
    """What the recipe needs from a task (see each module's docstring for the details)."""

    name: str

    def load_model(
        self,
        model_dir: Path,
        *,
        labels: list[str] | None,
        dtype: torch.dtype,
        gguf_file: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[torch.nn.Module, Any]:
        """Model and tokenizer from local files only; the tokenizer always has a pad token.

        `options`: extra `from_pretrained` arguments (attention kernel, quantization).
        """
        ...

    def tokenize(self, rows: Any, tokenizer: Any, max_seq_length: int) -> Any:
        """Canonical rows -> input_ids, attention_mask and labels (start/end_positions for QA)."""
        ...

    def collator(self, tokenizer: Any) -> Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]:
        """Dynamic padding of tokenized rows into a batch for `model(**batch)`."""
        ...

    def evaluate(
        self,
        model: Any,
        tokenizer: Any,
        rows: Any,
        *,
        batch_size: int,
        max_new_tokens: int,
        metrics: list[str] | None,
        synced_gpus: bool = False,
        max_seq_length: int | None = None,
    ) -> dict[str, float]:
        """Metrics over canonical `rows`; same forwards on every rank; restores train mode."""
        ...


_TASKS: dict[str, Callable[[], TaskAdapter]] = {
    "sequence-classification": SequenceClassification,
    "causal-lm": CausalLM,
    "seq2seq": Seq2Seq,
    "question-answering": QuestionAnswering,
}


def get_task(name: str) -> TaskAdapter:
    """A fresh adapter for `name` (a spec Task value)."""
    try:
        return _TASKS[str(name)]()
    except KeyError:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(_TASKS)})") from None


__all__ = ["IGNORE_INDEX", "TaskAdapter", "get_task"]
