"""The api side of every task: its name, the dataset.fields it reads (with default columns),
its metrics, and what the spec allows with it (LoRA, packing).

`TASKS` is the one list of tasks. The `Task` enum, the per-task tables and the spec's
task rules (pydantic and CEL, in `api/spec.py`) are derived from it. The trainer side of a
task (row formatting, features, tokenization, collator, metrics, PEFT type) is a
`TaskAdapter` in `trainer/tasks/`, registered under the same name; a unit test checks
that both registries list the same tasks. This module stays pure: the api layer never
imports the trainer.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class TaskRules:
    """What the spec knows of one task."""

    name: str
    # dataset.fields keys (camelCase) the task reads -> the column used when unset
    # (None: no default column; the trainer adapter decides from the row).
    fields: Mapping[str, str | None]
    # Metrics evaluation.metrics may ask for; all of them when unset.
    metrics: tuple[str, ...]
    lora: bool = True  # spec.lora (a PEFT adapter) is allowed
    packing: bool = False  # spec.performance.packing is allowed

    def columns(self, given: Mapping[str, str | None]) -> dict[str, str | None]:
        """dataset.fields (by alias) resolved: the given column, else the task's default."""
        return {name: given.get(name) or default for name, default in self.fields.items()}


SEQUENCE_CLASSIFICATION = TaskRules(
    "sequence-classification",
    fields={"text": "text", "textPair": None, "label": "label"},
    metrics=("accuracy", "f1", "loss"),
)
CAUSAL_LM = TaskRules(
    "causal-lm",
    fields={"text": "text", "prompt": None, "response": None, "messages": None},
    metrics=("perplexity", "loss"),
    packing=True,
)
SEQ2SEQ = TaskRules(
    "seq2seq", fields={"source": "source", "target": "target"}, metrics=("chrf", "bleu", "loss")
)
QUESTION_ANSWERING = TaskRules(
    "question-answering",
    fields={"question": "question", "context": "context", "answer": "answer"},
    metrics=("exact_match", "f1", "loss"),
    lora=False,
)
SUMMARIZATION = TaskRules(
    "summarization",
    fields={"source": "document", "target": "summary"},
    metrics=("rouge1", "rouge2", "rougeL", "loss"),
)

# The registry: one line per task (its order is the order of the enum and the CEL rules).
TASKS: dict[str, TaskRules] = {
    rules.name: rules
    for rules in (
        CAUSAL_LM,
        SEQUENCE_CLASSIFICATION,
        SEQ2SEQ,
        QUESTION_ANSWERING,
        SUMMARIZATION,
    )
}

# The spec's `task` enum, made from the registry (members like Task.CAUSAL_LM).
Task = StrEnum(  # type: ignore[misc]  # members come from the registry, not literals
    "Task", {name.upper().replace("-", "_"): name for name in TASKS}
)

# Derived tables (the spec rules, the tests' strategies and the docs read these).
TASK_FIELDS: dict[str, tuple[str, ...]] = {n: tuple(t.fields) for n, t in TASKS.items()}
TASK_METRICS: dict[str, tuple[str, ...]] = {n: t.metrics for n, t in TASKS.items()}
LORA_TASKS = tuple(sorted(n for n, t in TASKS.items() if t.lora))
PACKING_TASKS = tuple(sorted(n for n, t in TASKS.items() if t.packing))
ALL_FIELDS = tuple(dict.fromkeys(name for cols in TASK_FIELDS.values() for name in cols))


def readers(field: str) -> str:
    """The tasks that read dataset.fields.<field>, for its description."""
    return ", ".join(n for n, cols in TASK_FIELDS.items() if field in cols)


def fields_message(task: str) -> str:
    return f"{task} reads only {', '.join(TASK_FIELDS[task])} from dataset.fields"


def _and(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


METRIC_MESSAGE = (
    "metric not available for the task ("
    + "; ".join(f"{task}: {', '.join(metrics)}" for task, metrics in TASK_METRICS.items())
    + ")"
)
LORA_TASK_MESSAGE = f"lora is supported for {_and(LORA_TASKS)}"
PACKING_TASK_MESSAGE = f"packing is supported for {_and(PACKING_TASKS)}"


def cel_task_in(names: tuple[str, ...]) -> str:
    """CEL: self.task is one of `names`."""
    return " || ".join(f"self.task == '{n}'" for n in names)


def cel_task_not_in(names: tuple[str, ...]) -> str:
    """CEL: self.task is none of `names` ('true' when there are none)."""
    return " && ".join(f"self.task != '{n}'" for n in names) or "true"
