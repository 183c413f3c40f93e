"""Task adapters: the trainer side of every FineTuneJob task, one module per task.

`TASK_ADAPTERS` is the trainer's list of tasks, keyed by the same names as the spec's
registry (`ftjobs.api.task.TASKS`; a unit test keeps the two in step). `get_task(name)`
returns a fresh adapter; the interface is `TaskAdapter` (`base.py`). The data step calls
its row rules, the recipe load_model -> tokenize -> collator for training and evaluate
for validation/test.
"""

from __future__ import annotations

from collections.abc import Callable

from ftjobs.trainer.tasks.base import TaskAdapter
from ftjobs.trainer.tasks.causal_lm import CausalLM
from ftjobs.trainer.tasks.classification import SequenceClassification
from ftjobs.trainer.tasks.common import IGNORE_INDEX
from ftjobs.trainer.tasks.question_answering import QuestionAnswering
from ftjobs.trainer.tasks.seq2seq import Seq2Seq
from ftjobs.trainer.tasks.summarization import Summarization

# The registry: one line per task.
TASK_ADAPTERS: dict[str, Callable[[], TaskAdapter]] = {
    adapter.name: adapter
    for adapter in (
        CausalLM,
        SequenceClassification,
        Seq2Seq,
        QuestionAnswering,
        Summarization,
    )
}


def get_task(name: str) -> TaskAdapter:
    """A fresh adapter for `name` (a spec Task value)."""
    try:
        return TASK_ADAPTERS[str(name)]()
    except KeyError:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASK_ADAPTERS)})") from None


__all__ = ["IGNORE_INDEX", "TASK_ADAPTERS", "TaskAdapter", "get_task"]
