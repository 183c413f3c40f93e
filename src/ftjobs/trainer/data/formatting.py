"""Field mapping, cleaning of one row and templates, shared by every task's formatting.

A `RowFormatter` turns a raw row into a task's canonical columns by calling the task
adapter's row rules (`trainer/tasks/`, e.g. classification: text, [text_pair], label;
question-answering: question, context, answer_text, answer_start). It owns what every
task shares: the column mapping (`dataset.fields` over the task's defaults,
`ftjobs.api.task.TASKS`), reading a field with a clear error, whitespace stripping and
`promptTemplate` (`str.format` over the stripped row; it becomes the task's input text).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ftjobs.api.spec import DatasetSpec
from ftjobs.api.task import TASKS
from ftjobs.trainer.data.errors import DataError, where

if TYPE_CHECKING:  # the adapters import this module; the formatter gets one passed in
    from ftjobs.trainer.tasks.base import TaskAdapter


@dataclass(frozen=True)
class Record:
    """A cleaned, formatted row before label mapping; `label` is the raw value."""

    values: dict[str, Any]
    label: Any = None

    def text(self, columns: tuple[str, ...]) -> str:
        # \x1f (unit separator) keeps ("a b", "c") and ("a", "b c") apart.
        return "\x1f".join(str(self.values[c] or "") for c in columns if c in self.values)


def as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""  # CSV empty cells arrive as NaN; drop_empty decides about them
    return value if isinstance(value, str) else str(value)


class RowFormatter:
    """Maps raw rows of one dataset spec to canonical records through a task adapter."""

    def __init__(self, task: TaskAdapter, dataset: DatasetSpec) -> None:
        self.task = task
        self.spec = dataset
        self.template = dataset.prompt_template
        self.strip = dataset.cleaning.strip_whitespace
        given = dataset.fields.model_dump(by_alias=True, exclude_none=True)
        # dataset.fields key (camelCase) -> column name (None: the adapter decides per row)
        self.fields: dict[str, str | None] = TASKS[task.name].columns(given)
        self.columns = task.columns
        self.required = task.required
        self.inputs = task.inputs
        self.outputs = task.outputs

    # -- field access (for the adapters' row rules) ----------------------------------------

    def get(self, row: dict[str, Any], name: str, uri: str, n: int) -> Any:
        if name not in row:
            known = ", ".join(sorted(row)) or "none"
            raise DataError(f"{where(uri, n, name)}: missing field (columns: {known})")
        value = row[name]
        # JSON/Parquet readers unify the schema: a key absent from one row reads as null.
        if value is None:
            raise DataError(f"{where(uri, n, name)}: missing field (null or absent in this row)")
        return value

    def text(self, row: dict[str, Any], name: str, uri: str, n: int) -> str:
        value = as_text(self.get(row, name, uri, n))
        return value.strip() if self.strip else value

    def format(self, row: dict[str, Any], uri: str, n: int) -> str:
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

    def input_or_template(self, row: dict[str, Any], field: str, uri: str, n: int) -> str:
        """The task's input text: promptTemplate when set, else the column of `field`."""
        if self.template:
            return self.format(row, uri, n)
        return self.text(row, self.fields[field] or "", uri, n)

    # -- one row (the task's rules) ---------------------------------------------------------

    def input_text(self, rec: Record) -> str:
        """The model input, for the split hash and the leakage check."""
        return self.task.input_text(rec)

    def uses_pair(self, first_row: dict[str, Any]) -> bool:
        return self.task.uses_pair(self, first_row)

    def record(self, row: dict[str, Any], uri: str, n: int, *, pair: bool = False) -> Record:
        """Extract, strip and template one raw row. Raises DataError for a missing field."""
        return self.task.record(self, row, uri, n, pair=pair)

    def check(self, rec: Record, uri: str, n: int) -> None:
        self.task.check(self, rec, uri, n)

    def finish(self, rec: Record, labels: list[str] | None, uri: str, n: int) -> dict[str, Any]:
        """Canonical row: label index (classification), answer offset (QA), ..."""
        return self.task.finish(self, rec, labels, uri, n)


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
