"""sequence-classification: text (and optional text_pair) -> label index.

Loss: cross-entropy of the classification head. Metrics: accuracy, macro-F1
(scikit-learn) and the mean loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

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


class SequenceClassification:
    name = "sequence-classification"

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
