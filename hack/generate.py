"""Write the files generated from the API models (`make generate`).

- manifests/crd/finetunejobs.ftjobs.dev.yaml   the CustomResourceDefinition
- manifests/crd/finetunejob.schema.json         JSON Schema for editors
- docs/reference/spec.md                        the spec reference
- helm/<chart>/crds/finetunejobs.ftjobs.dev.yaml the CRD again, for each chart
- docs/failure-handling.md                      the failure classification table, between
                                                its "generated" markers
- helm/<chart>/README.md                        the values table (from values.schema.json
                                                and values.yaml), between its markers

Output is deterministic (sorted keys, fixed width), so `make check-generated` can diff it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from ftjobs.api.reference import spec_reference
from ftjobs.sdk.schema import crd_yaml, schema_json
from ftjobs.storage.failures import STORAGE_FAILURES, failure_table
from ftjobs.trainer.errors import TRAINER_FAILURES

ROOT = Path(__file__).resolve().parent.parent
FAILURE_DOC = ROOT / "docs/failure-handling.md"
BEGIN = "<!-- BEGIN generated: failure classes (hack/generate.py) -->\n"
END = "<!-- END generated -->\n"


def failure_doc() -> str:
    """docs/failure-handling.md with the table between its markers replaced."""
    return between(FAILURE_DOC, BEGIN, failure_table(STORAGE_FAILURES + TRAINER_FAILURES))


VALUES_BEGIN = "<!-- BEGIN generated: values (hack/generate.py) -->\n"


def between(path: Path, begin: str, body: str) -> str:
    """`path`'s text with what lies between `begin` and END replaced by `body`."""
    text = path.read_text()
    head, found, rest = text.partition(begin)
    if not found:
        raise SystemExit(f"{path}: marker {begin.strip()} missing")
    _, found, tail = rest.partition(END)
    if not found:
        raise SystemExit(f"{path}: marker {END.strip()} missing")
    return head + begin + body + END + tail


def _values_rows(schema: dict[str, Any], values: Any, prefix: str = "") -> list[str]:
    rows = []
    for key, prop in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        value = values.get(key) if isinstance(values, dict) else None
        if "properties" in prop:
            rows += _values_rows(prop, value, f"{path}.")
            continue
        kind = prop.get("type", "object")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        default = json.dumps(value, separators=(", ", ": ")).replace("|", "\\|")
        text = prop.get("description", "").replace("|", "\\|")
        rows.append(f"| `{path}` | {kind} | `{default}` | {text} |")
    return rows


def chart_readme(chart: Path) -> str:
    """The chart README with its values table generated from the schema and defaults."""
    schema = json.loads((chart / "values.schema.json").read_text())
    values = yaml.safe_load((chart / "values.yaml").read_text())
    table = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    body = "\n".join(table + _values_rows(schema, values)) + "\n"
    return between(chart / "README.md", VALUES_BEGIN, body)


def outputs() -> dict[Path, str]:
    files = {
        ROOT / "manifests/crd/finetunejobs.ftjobs.dev.yaml": crd_yaml(),
        ROOT / "manifests/crd/finetunejob.schema.json": schema_json(),
        ROOT / "docs/reference/spec.md": spec_reference(),
        FAILURE_DOC: failure_doc(),
    }
    # Every Helm chart in the repository ships the same CRD in its crds/ folder.
    for chart in sorted(ROOT.glob("helm/*/Chart.yaml")):
        files[chart.parent / "crds/finetunejobs.ftjobs.dev.yaml"] = crd_yaml()
        if (chart.parent / "README.md").exists():
            files[chart.parent / "README.md"] = chart_readme(chart.parent)
    return files


def main() -> int:
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
