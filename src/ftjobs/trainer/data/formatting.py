"""Per-task field mapping, cleaning of one row, templates, label and answer mapping.

A `RowFormatter` turns a raw row into the task's canonical columns:

- sequence-classification: text, [text_pair], label (int)
- causal-lm: prompt ("" for plain text), response
- seq2seq: source (prompt-templated), target
- question-answering: question, context, answer_text, answer_start (char offset)

Field names come from `dataset.fields` with per-task defaults. `promptTemplate` is
`str.format` over the (stripped) row and becomes the text / prompt / source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ftjobs.api.spec import DatasetSpec
from ftjobs.trainer.data.errors import DataError, where

# Canonical text columns per task, and which of them must not be empty.
COLUMNS: dict[str, tuple[str, ...]] = {
    "sequence-classification": ("text", "text_pair"),
    "causal-lm": ("prompt", "response"),
    "seq2seq": ("source", "target"),
    "question-answering": ("question", "context", "answer_text"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "sequence-classification": ("text",),
    "causal-lm": ("response",),
    "seq2seq": ("source", "target"),
    "question-answering": ("question", "context", "answer_text"),
}
# Columns a model produces (label aside): output length percentiles use these.
OUTPUTS: dict[str, tuple[str, ...]] = {
    "sequence-classification": (),
    "causal-lm": ("response",),
    "seq2seq": ("target",),
    "question-answering": ("answer_text",),
}
# Columns that make the model input: the split hash and the leakage check use these.
INPUTS: dict[str, tuple[str, ...]] = {
    "sequence-classification": ("text", "text_pair"),
    "causal-lm": ("prompt",),
    "seq2seq": ("source",),
    "question-answering": ("question", "context"),
}


@dataclass(frozen=True)
class Record:
    """A cleaned, formatted row before label mapping; `label` is the raw value."""

    values: dict[str, Any]
    label: Any = None

    def text(self, columns: tuple[str, ...]) -> str:
        # \x1f (unit separator) keeps ("a b", "c") and ("a", "b c") apart.
        return "\x1f".join(str(self.values[c] or "") for c in columns if c in self.values)


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""  # CSV empty cells arrive as NaN; drop_empty decides about them
    return value if isinstance(value, str) else str(value)


class RowFormatter:
    """Maps raw rows of one dataset spec to canonical records (see the module docstring)."""

    def __init__(self, task: str, dataset: DatasetSpec) -> None:
        self.task = task
        self.spec = dataset
        f = dataset.fields
        self.template = dataset.prompt_template
        self.strip = dataset.cleaning.strip_whitespace
        self.fields: dict[str, str | None]
        if task == "sequence-classification":
            self.fields = {
                "text": f.text or "text",
                "text_pair": f.text_pair,
                "label": f.label or "label",
            }
        elif task == "causal-lm":
            self.fields = {"prompt": f.prompt, "response": f.response, "text": f.text or "text"}
        elif task == "seq2seq":
            self.fields = {"source": f.source or "source", "target": f.target or "target"}
        elif task == "question-answering":
            self.fields = {
                "question": f.question or "question",
                "context": f.context or "context",
                "answer": f.answer or "answer",
            }
        else:
            raise ValueError(f"unknown task {task!r}")
        self.columns = COLUMNS[task]
        self.required = REQUIRED[task]
        self.inputs = INPUTS[task]
        self.outputs = OUTPUTS[task]

    # -- field access -------------------------------------------------------------------

    def _get(self, row: dict[str, Any], name: str, uri: str, n: int) -> Any:
        if name not in row:
            known = ", ".join(sorted(row)) or "none"
            raise DataError(f"{where(uri, n, name)}: missing field (columns: {known})")
        value = row[name]
        # JSON/Parquet readers unify the schema: a key absent from one row reads as null.
        if value is None:
            raise DataError(f"{where(uri, n, name)}: missing field (null or absent in this row)")
        return value

    def _text(self, row: dict[str, Any], name: str, uri: str, n: int) -> str:
        value = _as_text(self._get(row, name, uri, n))
        return value.strip() if self.strip else value

    def _format(self, row: dict[str, Any], uri: str, n: int) -> str:
        assert self.template is not None
        # Template values get the same stripping as the text columns; others pass as is.
        clean = {k: v.strip() if self.strip and isinstance(v, str) else v for k, v in row.items()}
        try:
            return self.template.format(**clean)
        except KeyError as exc:
            raise DataError(
                f"{where(uri, n, str(exc.args[0]))}: missing field used by promptTemplate"
            ) from exc
        except (IndexError, ValueError) as exc:
            raise DataError(
                f"{where(uri, n)}: promptTemplate cannot format the row: {exc}"
            ) from exc

    def input_text(self, rec: Record) -> str:
        """The model input, for the split hash and the leakage check."""
        if self.task == "causal-lm" and not rec.values["prompt"]:
            return str(rec.values["response"])  # plain text: the text is the input
        return rec.text(self.inputs)

    def uses_pair(self, first_row: dict[str, Any]) -> bool:
        """Pair classification when text_pair is configured or the data has a text_pair column."""
        return self.task == "sequence-classification" and (
            self.fields["text_pair"] is not None or "text_pair" in first_row
        )

    # -- one row --------------------------------------------------------------------------

    def record(self, row: dict[str, Any], uri: str, n: int, *, pair: bool = False) -> Record:
        """Extract, strip and template one raw row. Raises DataError for a missing field."""
        t, fl = self.task, self.fields
        if t == "sequence-classification":
            text = (
                self._format(row, uri, n)
                if self.template
                else self._text(row, fl["text"] or "", uri, n)
            )
            values: dict[str, Any] = {"text": text}
            if pair:
                values["text_pair"] = self._text(row, fl["text_pair"] or "text_pair", uri, n)
            label = self._get(row, fl["label"] or "", uri, n)
            if (isinstance(label, float) and math.isnan(label)) or (
                isinstance(label, str) and not label.strip()
            ):
                raise DataError(f"{where(uri, n, fl['label'])}: missing label")
            return Record(values, label.strip() if isinstance(label, str) else label)
        if t == "causal-lm":
            response_field = fl["response"] or ("response" if "response" in row else None)
            if response_field is None:  # plain text: the whole text is the response
                return Record({"prompt": "", "response": self._text(row, fl["text"] or "", uri, n)})
            if self.template:
                prompt = self._format(row, uri, n)
            elif fl["prompt"] is not None or "prompt" in row:
                prompt = self._text(row, fl["prompt"] or "prompt", uri, n)
            else:
                prompt = ""
            return Record({"prompt": prompt, "response": self._text(row, response_field, uri, n)})
        if t == "seq2seq":
            source = (
                self._format(row, uri, n)
                if self.template
                else self._text(row, fl["source"] or "", uri, n)
            )
            return Record({"source": source, "target": self._text(row, fl["target"] or "", uri, n)})
        # question-answering
        question = (
            self._format(row, uri, n)
            if self.template
            else self._text(row, fl["question"] or "", uri, n)
        )
        context = self._text(row, fl["context"] or "", uri, n)
        answer = self._get(row, fl["answer"] or "", uri, n)
        start: Any = row.get("answer_start")
        if isinstance(answer, dict):  # SQuAD layout: {"text": [...], "answer_start": [...]}
            texts, starts = answer.get("text") or [""], answer.get("answer_start") or [None]
            answer, start = texts[0], starts[0]
        answer_text = _as_text(answer).strip() if self.strip else _as_text(answer)
        return Record(
            {
                "question": question,
                "context": context,
                "answer_text": answer_text,
                "answer_start": start,
            }
        )

    def finish(self, rec: Record, labels: list[str] | None, uri: str, n: int) -> dict[str, Any]:
        """Canonical row: label index (classification), answer offset (QA)."""
        out = dict(rec.values)
        if self.task == "sequence-classification":
            assert labels is not None
            out["label"] = label_index(rec.label, labels, uri, n, self.fields["label"] or "label")
        elif self.task == "question-answering":
            context, answer, start = out["context"], out["answer_text"], out["answer_start"]
            if not (isinstance(start, int) and context[start : start + len(answer)] == answer):
                start = context.find(answer)
            if start < 0:
                raise DataError(
                    f"{where(uri, n, self.fields['answer'])}: answer {answer[:80]!r} "
                    "is not in the context"
                )
            out["answer_start"] = start
        return out


def is_numeric_label(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    )


def label_index(value: Any, labels: list[str], uri: str, n: int, field: str) -> int:
    """Index of a raw label: its name in `labels`, or an in-range integer."""
    if isinstance(value, str):
        if value in labels:
            return labels.index(value)
        raise DataError(
            f"{where(uri, n, field)}: unknown label {value!r} (known: {', '.join(labels)})"
        )
    if is_numeric_label(value) and 0 <= int(value) < len(labels):
        return int(value)
    raise DataError(
        f"{where(uri, n, field)}: label {value!r} is not one of {', '.join(labels)} "
        f"nor an index below {len(labels)}"
    )


def infer_labels(seen: set[Any], given: list[str] | None, uri: str) -> list[str]:
    """Label names in index order: the spec's, else sorted unique string labels, else 0..max."""
    if given:
        return list(given)
    if not seen:
        raise DataError(f"{uri}: no labels found")
    if all(is_numeric_label(v) for v in seen):
        top = int(max(seen))
        if min(seen) < 0:
            raise DataError(f"{where(uri, None, 'label')}: negative label index {min(seen)}")
        return [str(i) for i in range(max(top + 1, 2))]
    if all(isinstance(v, str) for v in seen):
        return sorted(seen)
    raise DataError(
        f"{where(uri, None, 'label')}: mixed string and numeric labels; set "
        "dataset.labels or use one kind"
    )
