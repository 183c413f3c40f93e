"""Each fact of the code has one home: a second copy coming back fails here.

Read from the source text under `src/ftjobs` (AST, not imports, so a copy in a module
nobody imports yet is caught too). Each check has a negative control on a snippet that
holds the duplicate, so the check itself is proven able to fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ftjobs"


def _modules() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(SRC)): ast.parse(path.read_text(), filename=str(path))
        for path in sorted(SRC.rglob("*.py"))
    }


MODULES = _modules()


def class_aliases(tree: ast.Module) -> list[str]:
    """Module-level `Other = SomeClass` where SomeClass is a class defined in that module."""
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    return [
        f"{target.id} = {node.value.id}"
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name)
        if node.value.id in classes
        for target in node.targets
        if isinstance(target, ast.Name)
    ]


def test_no_class_has_two_names() -> None:
    aliases = {name: found for name, tree in MODULES.items() if (found := class_aliases(tree))}
    assert aliases == {}


def test_alias_check_catches_an_alias() -> None:
    snippet = ast.parse("class NotFound(Exception):\n    pass\n\nMissing = NotFound\n")
    assert class_aliases(snippet) == ["Missing = NotFound"]


@pytest.mark.parametrize("module", ["storage/errors.py", "storage/__init__.py"])
def test_storage_errors_have_one_name_each(module: str) -> None:
    source = (SRC / module).read_text()
    for alias in ("IncompleteError", "CorruptError"):
        assert alias not in source, f"{module}: {alias} (use IncompleteCheckpoint/CorruptObject)"


def class_homes(modules: dict[str, ast.Module]) -> dict[str, list[str]]:
    """Class names defined in more than one module (or twice in one)."""
    homes: dict[str, list[str]] = {}
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                homes.setdefault(node.name, []).append(name)
    return {cls: where for cls, where in homes.items() if len(where) > 1}


def test_every_class_name_has_one_home() -> None:
    # A second `PermanentError` in another layer is the usual way this breaks.
    assert class_homes(MODULES) == {}


def test_class_check_catches_a_second_permanent_error() -> None:
    second = ast.parse("class PermanentError(Exception):\n    pass\n")
    assert class_homes({**MODULES, "trainer/errors_copy.py": second}) == {
        "PermanentError": ["api/errors.py", "trainer/errors_copy.py"]
    }


def literal_homes(modules: dict[str, ast.Module], text: str) -> list[str]:
    """Modules whose string constants contain `text`."""
    return [
        name
        for name, tree in modules.items()
        if any(
            isinstance(node, ast.Constant) and isinstance(node.value, str) and text in node.value
            for node in ast.walk(tree)
        )
    ]


@pytest.mark.parametrize(
    ("text", "home"),
    [
        ("%Y-%m-%dT%H:%M:%S", "api/timestamps.py"),  # Kubernetes Time / MicroTime
        ("batch.kubernetes.io/job-completion-index", "api/constants.py"),
    ],
)
def test_literal_has_one_home(text: str, home: str) -> None:
    assert literal_homes(MODULES, text) == [home]


def test_literal_check_catches_a_copy() -> None:
    copy = ast.parse('def stamp(t):\n    return t.strftime("%Y-%m-%dT%H:%M:%SZ")\n')
    assert literal_homes({**MODULES, "sdk/copy.py": copy}, "%Y-%m-%dT%H:%M:%S") == [
        "api/timestamps.py",
        "sdk/copy.py",
    ]


def function_homes(modules: dict[str, ast.Module], *names: str) -> list[str]:
    """Modules that define a function with one of `names` (at any depth)."""
    return sorted(
        {
            module
            for module, tree in modules.items()
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in names
        }
    )


# How several processes' exit codes make one: the launcher's and `ftjobs run`'s rule.
EXIT_RULE_NAMES = ("node_exit_code", "combined_exit_code", "exit_class")


def test_exit_code_rule_has_one_home() -> None:
    assert function_homes(MODULES, *EXIT_RULE_NAMES) == ["api/exit_codes.py"]


def test_function_check_catches_a_second_rule() -> None:
    copy = ast.parse("def node_exit_code(codes):\n    return max(codes)\n")
    assert function_homes({**MODULES, "sdk/local.py": copy}, *EXIT_RULE_NAMES) == [
        "api/exit_codes.py",
        "sdk/local.py",
    ]


def exact_literal_homes(modules: dict[str, ast.Module], *texts: str) -> list[str]:
    """Modules with a string constant equal to one of `texts`."""
    return sorted(
        {
            name
            for name, tree in modules.items()
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in texts
        }
    )


def test_quantity_suffixes_have_one_home() -> None:
    # A second table of "Ki"/"Mi"/"Gi" factors is a second quantity parser.
    assert exact_literal_homes(MODULES, "Ki", "Mi", "Gi") == ["api/quantity.py"]


def test_suffix_check_catches_a_second_parser() -> None:
    copy = ast.parse('_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}\n')
    assert exact_literal_homes({**MODULES, "cli/copy.py": copy}, "Ki", "Mi", "Gi") == [
        "api/quantity.py",
        "cli/copy.py",
    ]


# Functions over the limit, each with its reason (none today: every one was split).
LONG_ALLOWED: set[str] = set()
MAX_LINES = 80


def long_functions(modules: dict[str, ast.Module]) -> dict[str, int]:
    return {
        f"{name}:{node.name}": node.end_lineno - node.lineno + 1
        for name, tree in modules.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno
        if node.end_lineno - node.lineno + 1 > MAX_LINES
    }


def test_functions_stay_under_80_lines() -> None:
    too_long = {f: n for f, n in long_functions(MODULES).items() if f not in LONG_ALLOWED}
    assert too_long == {}


def test_length_check_catches_a_long_function() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))
    long = ast.parse(f"def run_local():\n{body}")
    assert long_functions({"sdk/local.py": long}) == {"sdk/local.py:run_local": MAX_LINES + 1}
