"""Write the files generated from the API models (`make generate`).

- manifests/crd/finetunejobs.ftjobs.dev.yaml   the CustomResourceDefinition
- manifests/crd/finetunejob.schema.json         JSON Schema for editors
- docs/reference/spec.md                        the spec reference
- helm/<chart>/crds/finetunejobs.ftjobs.dev.yaml the CRD again, for each chart
- docs/failure-handling.md                      the failure classification table, between
                                                its "generated" markers

Output is deterministic (sorted keys, fixed width), so `make check-generated` can diff it.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
    text = FAILURE_DOC.read_text()
    head, found, rest = text.partition(BEGIN)
    if not found:
        raise SystemExit(f"{FAILURE_DOC}: marker {BEGIN.strip()} missing")
    _, found, tail = rest.partition(END)
    if not found:
        raise SystemExit(f"{FAILURE_DOC}: marker {END.strip()} missing")
    return head + BEGIN + failure_table(STORAGE_FAILURES + TRAINER_FAILURES) + END + tail


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
