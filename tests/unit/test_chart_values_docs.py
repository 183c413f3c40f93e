"""The chart's values: schema, defaults and the generated README agree (drift check)."""

import importlib.util
import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm/ftjobs"


def _generate() -> Any:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "hack/generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _paths(tree: dict[str, Any], prefix: str = "") -> set[str]:
    out = set()
    for key, value in tree.items():
        out.add(prefix + key)
        if (
            isinstance(value, dict)
            and value
            and not key.endswith(
                ("Labels", "Annotations", "annotations", "labels", "Context", "resources")
            )
        ):
            out |= _paths(value, f"{prefix}{key}.")
    return out


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    out = set()
    for key, prop in schema.get("properties", {}).items():
        out.add(prefix + key)
        out |= _schema_paths(prop, f"{prefix}{key}.")
    return out


def test_every_value_is_in_the_schema_with_a_description() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = _schema_paths(schema)
    assert _paths(values) - documented == set()

    def undescribed(node: dict[str, Any], prefix: str = "") -> list[str]:
        out = []
        for key, prop in node.get("properties", {}).items():
            if not prop.get("description"):
                out.append(prefix + key)
            out += undescribed(prop, f"{prefix}{key}.")
        return out

    assert undescribed(schema) == []


def test_readme_values_table_is_generated_from_the_schema() -> None:
    generate = _generate()
    readme = (CHART / "README.md").read_text()
    assert generate.chart_readme(CHART) == readme, "run python hack/generate.py"
    assert "| `trainer.imagePullSecrets` | array | `[]` |" in readme
