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
