"""`TaskAdapter`: everything the trainer knows of one task, in one class.

A task's adapter owns its rows (which canonical columns a raw row becomes, which must
not be empty, which make the model input and output, the scan-time checks and the
finishing step: label index, answer offset), the columns' feature types, the model
(loading, tokenization, collator), evaluation (metrics, generation settings) and the
PEFT task type of a LoRA adapter. The spec side of the task (its name, dataset.fields
and defaults, metrics, LoRA/packing rules) is `ftjobs.api.task.TaskRules` under the same
name. `trainer/data` and the recipe only call these methods: they never branch on a
task's name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

if TYPE_CHECKING:  # trainer.data imports the registry lazily; types only here
    from ftjobs.trainer.data.formatting import Record, RowFormatter


class TaskAdapter:
    """Base of every task adapter; subclasses set the class attributes and the abstract
    methods (see each task module's docstring for the details)."""

    name: ClassVar[str]
    # Canonical text columns of a formatted row (cleaning: max_chars, dedupe).
    columns: ClassVar[tuple[str, ...]]
    # Columns that must not be empty (cleaning: drop_empty).
    required: ClassVar[tuple[str, ...]]
    # Columns that make the model input: the split hash and the leakage check use these.
    inputs: ClassVar[tuple[str, ...]]
    # Columns the model produces (labels aside): output length percentiles use these.
    outputs: ClassVar[tuple[str, ...]] = ()
    # Raw labels are collected from train and named (dataset.labels or inferred).
    uses_labels: ClassVar[bool] = False
    # A second input text may come with the rows; decided from the first train row.
    has_pairs: ClassVar[bool] = False

    # -- rows -----------------------------------------------------------------------------

    def record(
        self, fmt: RowFormatter, row: dict[str, Any], uri: str, n: int, *, pair: bool
    ) -> Record:
        """Extract, strip and template one raw row; DataError names a missing field."""
        raise NotImplementedError

    def input_text(self, rec: Record) -> str:
        """The model input, for the split hash and the leakage check."""
        return rec.text(self.inputs)

    def uses_pair(self, fmt: RowFormatter, first_row: dict[str, Any]) -> bool:
        """Whether rows carry a second text (only tasks with `has_pairs`)."""
        return False

    def check(self, fmt: RowFormatter, rec: Record, uri: str, n: int) -> None:
        """Refuse a row that survived cleaning but cannot be trained on (DataError)."""

    def finish(
        self, fmt: RowFormatter, rec: Record, labels: list[str] | None, uri: str, n: int
    ) -> dict[str, Any]:
        """The canonical row of a kept record (label index, answer offset, ...)."""
        return dict(rec.values)

    def features(self, pair: bool) -> dict[str, str]:
        """Canonical column -> datasets value type ("string", "int64") of finished rows."""
        return {c: "string" for c in self.columns}

    # -- model ----------------------------------------------------------------------------

    def peft_task_type(self, encoder_decoder: bool) -> str:
        """peft's TaskType for a LoRA adapter on this task's model."""
        return "SEQ_2_SEQ_LM" if encoder_decoder else "CAUSAL_LM"

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
        raise NotImplementedError

    def tokenize(self, rows: Any, tokenizer: Any, max_seq_length: int) -> Any:
        """Canonical rows -> input_ids, attention_mask and labels (start/end_positions for QA)."""
        raise NotImplementedError

    def collator(self, tokenizer: Any) -> Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]:
        """Dynamic padding of tokenized rows into a batch for `model(**batch)`."""
        raise NotImplementedError

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
        raise NotImplementedError
