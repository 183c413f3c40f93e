"""sequence-classification: text (and optional text_pair) -> label index.

Loss: cross-entropy of the classification head. Metrics: accuracy, macro-F1
(scikit-learn) and the mean loss.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ftjobs.trainer.data.errors import DataError, where
from ftjobs.trainer.data.formatting import Record, RowFormatter, label_index
from ftjobs.trainer.tasks.base import TaskAdapter
from ftjobs.trainer.tasks.common import (
    Collator,
    default_max_length,
    device_of,
    eval_batches,
    evaluating,
    load_tokenizer,
    map_rows,
    model_kwargs,
    padding_collator,
    select,
    sync_pad,
)


class SequenceClassification(TaskAdapter):
    name = "sequence-classification"
    columns = ("text", "text_pair")
    required = ("text",)
    inputs = ("text", "text_pair")
    uses_labels = True
    has_pairs = True

    # -- rows: text, [text_pair], label (raw until finish() maps it to its index) ----------

    def uses_pair(self, fmt: RowFormatter, first_row: dict[str, Any]) -> bool:
        """Pairs when textPair is configured or the data has a text_pair column."""
        return fmt.fields["textPair"] is not None or "text_pair" in first_row

    def record(
        self, fmt: RowFormatter, row: dict[str, Any], uri: str, n: int, *, pair: bool
    ) -> Record:
        values: dict[str, Any] = {"text": fmt.input_or_template(row, "text", uri, n)}
        if pair:
            values["text_pair"] = fmt.text(row, fmt.fields["textPair"] or "text_pair", uri, n)
        field = fmt.fields["label"] or ""
        label = fmt.get(row, field, uri, n)
        if (isinstance(label, float) and math.isnan(label)) or (
            isinstance(label, str) and not label.strip()
        ):
            raise DataError(f"{where(uri, n, field)}: missing label")
        label = label.strip() if isinstance(label, str) else label
        if fmt.spec.labels:  # named labels: refuse an unknown one at the row that has it
            label_index(label, fmt.spec.labels, uri, n, field)
        return Record(values, label)

    def finish(
        self, fmt: RowFormatter, rec: Record, labels: list[str] | None, uri: str, n: int
    ) -> dict[str, Any]:
        assert labels is not None
        return {
            **rec.values,
            "label": label_index(rec.label, labels, uri, n, fmt.fields["label"] or "label"),
        }

    def features(self, pair: bool) -> dict[str, str]:
        return {"text": "string", **({"text_pair": "string"} if pair else {}), "label": "int64"}

    def peft_task_type(self, encoder_decoder: bool) -> str:
        return "SEQ_2_SEQ_LM" if encoder_decoder else "SEQ_CLS"

    # -- model ----------------------------------------------------------------------------

    def load_model(
        self,
        model_dir: Path,
        *,
        labels: list[str] | None,
        dtype: torch.dtype,
        gguf_file: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[torch.nn.Module, Any]:
        from transformers import AutoModelForSequenceClassification

        if not labels:
            raise ValueError("sequence-classification needs the label names")
        tokenizer = load_tokenizer(model_dir, gguf_file)
        # A new head is initialised from torch's global RNG: seed before calling this.
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)},
            **model_kwargs(dtype, gguf_file),
            **(options or {}),
        )
        sync_pad(model, tokenizer)
        return model, tokenizer

    def _encode(self, tokenizer: Any, max_seq_length: int) -> Any:
        def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
            pairs = batch.get("text_pair")
            enc = tokenizer(
                batch["text"],
                pairs if pairs is not None else None,
                truncation=True,
                max_length=max_seq_length,
            )
            enc["labels"] = batch["label"]
            return dict(enc)

        return encode

    def tokenize(self, rows: Any, tokenizer: Any, max_seq_length: int) -> Any:
        return map_rows(rows, self._encode(tokenizer, max_seq_length))

    def collator(self, tokenizer: Any) -> Collator:
        return padding_collator(tokenizer)

    def evaluate(
        self,
        model: Any,
        tokenizer: Any,
        rows: Any,
        *,
        batch_size: int,
        max_new_tokens: int = 0,
        metrics: list[str] | None = None,
        synced_gpus: bool = False,
        max_seq_length: int | None = None,
    ) -> dict[str, float]:
        from sklearn.metrics import accuracy_score, f1_score

        encoded = self.tokenize(
            rows, tokenizer, max_seq_length or default_max_length(model, tokenizer)
        )
        collate = self.collator(tokenizer)
        preds: list[int] = []
        golds: list[int] = []
        loss_sum = 0.0
        with evaluating(model):
            for size, batch in eval_batches(encoded, batch_size, collate, device_of(model)):
                out = model(**batch)
                loss_sum += float(out.loss) * size
                preds += out.logits.argmax(-1).tolist()
                golds += batch["labels"].tolist()
        n = max(len(golds), 1)
        result = {
            "accuracy": float(accuracy_score(golds, preds)) if golds else 0.0,
            "f1": float(f1_score(golds, preds, average="macro", zero_division=0)) if golds else 0.0,
            "loss": loss_sum / n,
        }
        return select(result, metrics)
