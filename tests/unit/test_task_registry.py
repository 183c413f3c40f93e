"""One list of tasks: the spec's registry (api/task.py) and the trainer's adapters
(trainer/tasks/) name the same tasks, every adapter implements its whole part, and no
module outside the two registries branches on a task's name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ftjobs.api.dataset import Fields
from ftjobs.api.spec import FineTuneJobSpec
from ftjobs.api.task import TASKS, Task
from ftjobs.trainer.tasks import TASK_ADAPTERS, TaskAdapter, get_task

SRC = Path(__file__).resolve().parents[2] / "src" / "ftjobs"
# Where a task's name may be written: the two registries and the adapters themselves.
TASK_HOMES = ("api/task.py", "trainer/tasks/")


def test_the_two_registries_list_the_same_tasks() -> None:
    assert list(TASK_ADAPTERS) == list(TASKS) == [t.value for t in Task]
    for name in TASKS:
        assert get_task(name).name == name


@pytest.mark.parametrize("name", list(TASK_ADAPTERS))
def test_every_adapter_implements_its_whole_part(name: str) -> None:
    adapter = get_task(name)
    for method in ("record", "load_model", "tokenize", "collator", "evaluate"):
        assert getattr(type(adapter), method) is not getattr(TaskAdapter, method), method
    features = adapter.features(pair=adapter.has_pairs)
    assert set(adapter.columns) <= set(features)
    assert set(adapter.required) | set(adapter.outputs) <= set(adapter.columns)
    assert set(adapter.inputs) <= set(adapter.columns)
    assert set(features.values()) <= {"string", "int64"}


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_reads_known_fields_and_accepts_its_defaults(name: str) -> None:
    aliases = {f.alias or n for n, f in Fields.model_fields.items()}
    assert set(TASKS[name].fields) <= aliases
    spec = FineTuneJobSpec.model_validate(
        {
            "task": name,
            "model": {"uri": "file:///models/m"},
            "dataset": {"train": "file:///data/train.jsonl", "fields": {}},
            "hyperparameters": {"epochs": 1},
            "storage": {"output": "file:///out"},
        }
    )
    assert str(spec.task) == name


def test_a_new_adapter_without_row_rules_is_refused_not_treated_as_another_task() -> None:
    """The old formatter fell through to question-answering for any unknown task."""

    class Half(TaskAdapter):
        name = "half"

    with pytest.raises(NotImplementedError):
        Half().record(None, {}, "file:///d", 1, pair=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown task 'half'"):
        get_task("half")


def task_name_literals(tree: ast.Module) -> list[str]:
    """String constants equal to a task name (a branch or a table keyed by the task)."""
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in TASKS
    ]


def test_no_module_outside_the_task_homes_names_a_task() -> None:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = str(path.relative_to(SRC))
        if rel.startswith(TASK_HOMES):
            continue
        names = task_name_literals(ast.parse(path.read_text(), filename=rel))
        if names:
            found[rel] = names
    assert found == {}


def test_the_name_check_catches_a_branch_on_a_task() -> None:
    snippet = ast.parse('if spec.task == "seq2seq":\n    pass\n')
    assert task_name_literals(snippet) == ["seq2seq"]
