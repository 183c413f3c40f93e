"""question-answering: extractive span QA for encoder models (BERT-like).

question + context are encoded as a pair (the context truncated, one window per row);
the answer's character span becomes start/end token positions (both 0, the first
token, when truncation cut the answer off). Evaluation takes the best-scoring span of
at most MAX_ANSWER_TOKENS context tokens and reports SQuAD-style exact match and token
F1 (lower-case, no punctuation, no articles) in 0..100, plus the mean loss.
"""

from __future__ import annotations

import collections
import re
import string
from pathlib import Path
from typing import Any

import torch

from ftjobs.trainer.data.errors import DataError, where
from ftjobs.trainer.data.formatting import Record, RowFormatter, as_text
from ftjobs.trainer.tasks.base import TaskAdapter
from ftjobs.trainer.tasks.common import (
    Collator,
    default_max_length,
    device_of,
    evaluating,
    load_tokenizer,
    map_rows,
    model_kwargs,
    padding_collator,
    select,
    to_device,
)

MAX_ANSWER_TOKENS = 30


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower-case, drop punctuation and articles, squeeze spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def answer_f1(prediction: str, truth: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not pred or not gold:
        return float(pred == gold)
    common = sum((collections.Counter(pred) & collections.Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def _encode(tokenizer: Any, max_len: int, batch: dict[str, list[Any]]) -> Any:
    side = tokenizer.padding_side  # "only_second" truncates the context, the question stays
    enc = tokenizer(
        batch["question"] if side == "right" else batch["context"],
        batch["context"] if side == "right" else batch["question"],
        truncation="only_second" if side == "right" else "only_first",
        max_length=max_len,
        return_offsets_mapping=True,
    )
    context_id = 1 if side == "right" else 0
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        seq_ids = enc.sequence_ids(i)
        a_start = batch["answer_start"][i]
        a_end = a_start + len(batch["answer_text"][i])
        start = end = 0
        for t, (s, e) in enumerate(offsets):
            if seq_ids[t] != context_id:
                continue
            if s <= a_start < e:
                start = t
            if s < a_end <= e:
                end = t
        if end < start or (start == 0) != (end == 0):
            start = end = 0  # answer (partly) truncated away: point at the first token
        starts.append(start)
        ends.append(end)
    return enc, starts, ends, context_id


class QuestionAnswering(TaskAdapter):
    name = "question-answering"
    columns = ("question", "context", "answer_text")
    required = ("question", "context", "answer_text")
    inputs = ("question", "context")
    outputs = ("answer_text",)

    # -- rows: question, context, answer_text, answer_start (char offset) -------------------

    def record(
        self, fmt: RowFormatter, row: dict[str, Any], uri: str, n: int, *, pair: bool
    ) -> Record:
        question = fmt.input_or_template(row, "question", uri, n)
        context = fmt.text(row, fmt.fields["context"] or "", uri, n)
        answer = fmt.get(row, fmt.fields["answer"] or "", uri, n)
        start: Any = row.get("answer_start")
        if isinstance(answer, dict):  # SQuAD layout: {"text": [...], "answer_start": [...]}
            texts, starts = answer.get("text") or [""], answer.get("answer_start") or [None]
            answer, start = texts[0], starts[0]
        answer_text = as_text(answer).strip() if fmt.strip else as_text(answer)
        values = {"question": question, "context": context, "answer_text": answer_text}
        return Record({**values, "answer_start": start})

    def check(self, fmt: RowFormatter, rec: Record, uri: str, n: int) -> None:
        # The answer must be in the context; checked once the row survived cleaning, so
        # an empty context is dropped rather than an error.
        self.finish(fmt, rec, None, uri, n)

    def finish(
        self, fmt: RowFormatter, rec: Record, labels: list[str] | None, uri: str, n: int
    ) -> dict[str, Any]:
        out = dict(rec.values)
        context, answer, start = out["context"], out["answer_text"], out["answer_start"]
        if not (isinstance(start, int) and context[start : start + len(answer)] == answer):
            start = context.find(answer)
        if start < 0:
            raise DataError(
                f"{where(uri, n, fmt.fields['answer'])}: answer {answer[:80]!r} "
                "is not in the context"
            )
        out["answer_start"] = start
        return out

    def features(self, pair: bool) -> dict[str, str]:
        return {**{c: "string" for c in self.columns}, "answer_start": "int64"}

    # -- model ----------------------------------------------------------------------------

    def load_model(
        self,
        model_dir: Path,
        *,
        labels: list[str] | None = None,
        dtype: torch.dtype,
        gguf_file: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[torch.nn.Module, Any]:
        from transformers import AutoModelForQuestionAnswering

        tokenizer = load_tokenizer(model_dir, gguf_file)
        if not tokenizer.is_fast:
            raise ValueError("question-answering needs a fast tokenizer (character offsets)")
        model = AutoModelForQuestionAnswering.from_pretrained(
            model_dir, **model_kwargs(dtype, gguf_file), **(options or {})
        )
        return model, tokenizer

    def tokenize(self, rows: Any, tokenizer: Any, max_seq_length: int) -> Any:
        def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
            enc, starts, ends, _ = _encode(tokenizer, max_seq_length, batch)
            enc.pop("offset_mapping")
            return {**enc, "start_positions": starts, "end_positions": ends}

        return map_rows(rows, encode)

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
        max_len = max_seq_length or default_max_length(model, tokenizer)
        collate = self.collator(tokenizer)
        device = device_of(model)
        em = f1 = loss_sum = 0.0
        n = len(rows)
        with evaluating(model):
            for start in range(0, n, batch_size):
                batch_rows = rows[start : start + batch_size]
                enc, starts, ends, context_id = _encode(tokenizer, max_len, batch_rows)
                size = len(starts)
                items = [
                    {k: enc[k][i] for k in enc if k != "offset_mapping"}
                    | {"start_positions": starts[i], "end_positions": ends[i]}
                    for i in range(size)
                ]
                out = model(**to_device(collate(items), device))
                loss_sum += float(out.loss) * size
                for i in range(size):
                    span = self._best_span(
                        out.start_logits[i], out.end_logits[i], enc.sequence_ids(i), context_id
                    )
                    offsets = enc["offset_mapping"][i]
                    context = batch_rows["context"][i]
                    predicted = context[offsets[span[0]][0] : offsets[span[1]][1]] if span else ""
                    truth = batch_rows["answer_text"][i]
                    em += float(normalize_answer(predicted) == normalize_answer(truth))
                    f1 += answer_f1(predicted, truth)
        n = max(n, 1)
        result = {"exact_match": 100 * em / n, "f1": 100 * f1 / n, "loss": loss_sum / n}
        return select(result, metrics)

    @staticmethod
    def _best_span(
        start_logits: torch.Tensor,
        end_logits: torch.Tensor,
        seq_ids: list[int | None],
        context_id: int,
    ) -> tuple[int, int] | None:
        """argmax of start+end over context tokens with start <= end < start + MAX_ANSWER_TOKENS."""
        length = len(seq_ids)
        in_context = torch.tensor([s == context_id for s in seq_ids], device=start_logits.device)
        if not bool(in_context.any()):
            return None
        scores = start_logits[:length, None].float() + end_logits[None, :length].float()
        band = torch.ones(length, length, dtype=torch.bool, device=scores.device).triu()
        band &= ~torch.ones_like(band).triu(MAX_ANSWER_TOKENS)
        band &= in_context[:, None] & in_context[None, :]
        best = int(scores.masked_fill(~band, float("-inf")).argmax())
        return best // length, best % length
