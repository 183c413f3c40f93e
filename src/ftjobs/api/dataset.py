"""The training data and its preparation (spec.dataset): files, column mapping, cleaning, splits."""

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from ftjobs.api.task import readers
from ftjobs.api.types import (
    ApiModel,
    DataUri,
    RuleError,
    ShortStr,
    cel,
)


class Cleaning(ApiModel):
    """Cleaning rules applied before formatting; data-report.json counts what each one dropped."""

    strip_whitespace: bool = Field(default=True, description="Strip leading/trailing whitespace.")
    drop_empty: bool = Field(default=True, description="Drop rows whose text fields are empty.")
    max_chars: int | None = Field(
        default=None, ge=1, le=10_000_000, description="Drop rows longer than this many characters."
    )
    dedupe: bool = Field(default=True, description="Drop exact duplicate rows (after stripping).")


class Split(ApiModel):
    """How validation/test sets are carved from train when they are not given."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.validationRatio + self.testRatio < 1.0",
                    "validationRatio + testRatio must be below 1",
                    ".testRatio",
                )
            ]
        }
    )

    validation_ratio: float = Field(
        default=0.1, ge=0.0, lt=1.0, description="Share of rows for validation."
    )
    test_ratio: float = Field(default=0.1, ge=0.0, lt=1.0, description="Share of rows for test.")
    seed: int = Field(
        default=42, ge=0, le=2**31 - 1, description="Seed of the hash that assigns rows to splits."
    )

    @model_validator(mode="after")
    def _ratios_below_one(self) -> "Split":
        if self.validation_ratio + self.test_ratio >= 1.0:
            raise RuleError("testRatio", "validationRatio + testRatio must be below 1")
        return self


class Fields(ApiModel):
    """Column names in the data files, per task; unset ones use the task's defaults."""

    # The parentheses name the tasks that read each field (api/task.py, TASKS).
    text: ShortStr | None = Field(default=None, description=f"Input text ({readers('text')}).")
    text_pair: ShortStr | None = Field(
        default=None, description=f"Second text of a pair ({readers('textPair')})."
    )
    label: ShortStr | None = Field(default=None, description=f"Label column ({readers('label')}).")
    prompt: ShortStr | None = Field(
        default=None, description=f"Prompt column, the instruction ({readers('prompt')})."
    )
    response: ShortStr | None = Field(
        default=None, description=f"Response column ({readers('response')})."
    )
    source: ShortStr | None = Field(default=None, description=f"Source text ({readers('source')}).")
    target: ShortStr | None = Field(default=None, description=f"Target text ({readers('target')}).")
    question: ShortStr | None = Field(
        default=None, description=f"Question ({readers('question')})."
    )
    context: ShortStr | None = Field(
        default=None, description=f"Context passage ({readers('context')})."
    )
    answer: ShortStr | None = Field(default=None, description=f"Answer text ({readers('answer')}).")
    messages: ShortStr | None = Field(
        default=None,
        description=f"Chat column ({readers('messages')}): a list of {{role, content}} turns "
        "(roles system, user, assistant, tool), rendered with the tokenizer's chat template, "
        "loss on the assistant turns only. A `messages` column is used without this setting.",
    )


class DatasetSpec(ApiModel):
    """Training data and how to prepare it."""

    train: DataUri = Field(
        description="Training data file or prefix: s3://, gs://, file:// or "
        "hf://datasets/org/name[@revision][/path] (read by streaming from the Hub)."
    )
    validation: DataUri | None = Field(
        default=None, description="Validation data; carved from train by `split` when unset."
    )
    test: DataUri | None = Field(
        default=None, description="Test data; carved from train by `split` when unset."
    )
    format: Literal["auto", "jsonl", "parquet", "csv"] = Field(
        default="auto", description="File format; auto infers it from the file extension."
    )
    fields: Fields = Field(default_factory=Fields, description="Column mapping.")
    prompt_template: str | None = Field(
        default=None,
        max_length=8192,
        description="Python format template over the row's columns, e.g. "
        "'Translate to German: {source}'.",
    )
    labels: list[ShortStr] | None = Field(
        default=None,
        min_length=2,
        max_length=1_000,
        description="Label names in index order (classification); inferred from train if unset.",
    )
    cleaning: Cleaning = Field(default_factory=Cleaning, description="Cleaning rules.")
    split: Split = Field(default_factory=Split, description="Deterministic split settings.")
    streaming: bool = Field(
        default=False, description="Stream train data from storage instead of loading it in memory."
    )
    max_samples: int | None = Field(
        default=None, ge=1, description="Use at most this many training rows (quick runs)."
    )
