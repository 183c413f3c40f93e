"""The task names of a FineTuneJob and what each task reads, allows and measures."""

from enum import StrEnum


class Task(StrEnum):
    CAUSAL_LM = "causal-lm"
    SEQUENCE_CLASSIFICATION = "sequence-classification"
    SEQ2SEQ = "seq2seq"
    QUESTION_ANSWERING = "question-answering"


LORA_TASKS = (Task.CAUSAL_LM.value, Task.SEQ2SEQ.value, Task.SEQUENCE_CLASSIFICATION.value)
TASK_METRICS: dict[str, tuple[str, ...]] = {
    Task.SEQUENCE_CLASSIFICATION.value: ("accuracy", "f1", "loss"),
    Task.CAUSAL_LM.value: ("perplexity", "loss"),
    Task.SEQ2SEQ.value: ("chrf", "bleu", "loss"),
    Task.QUESTION_ANSWERING.value: ("exact_match", "f1", "loss"),
}


# Columns each task reads from dataset.fields (trainer/data/formatting.py).
TASK_FIELDS: dict[str, tuple[str, ...]] = {
    Task.SEQUENCE_CLASSIFICATION.value: ("text", "textPair", "label"),
    Task.CAUSAL_LM.value: ("text", "prompt", "response"),
    Task.SEQ2SEQ.value: ("source", "target"),
    Task.QUESTION_ANSWERING.value: ("question", "context", "answer"),
}
ALL_FIELDS = (
    "text",
    "textPair",
    "label",
    "prompt",
    "response",
    "source",
    "target",
    "question",
    "context",
    "answer",
)


def fields_message(task: str) -> str:
    return f"{task} reads only {', '.join(TASK_FIELDS[task])} from dataset.fields"


METRIC_MESSAGE = (
    "metric not available for the task ("
    + "; ".join(f"{task}: {', '.join(metrics)}" for task, metrics in TASK_METRICS.items())
    + ")"
)
