"""Write the files generated from the API models (`make generate`).

- manifests/crd/finetunejobs.ftjobs.dev.yaml   the CustomResourceDefinition
- manifests/crd/finetunejob.schema.json         JSON Schema for editors
- docs/reference/spec.md                        the spec reference
- helm/<chart>/crds/finetunejobs.ftjobs.dev.yaml the CRD again, for each chart

Output is deterministic (sorted keys, fixed width), so `make check-generated` can diff it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ftjobs.api.reference import spec_reference
from ftjobs.sdk.schema import crd_yaml, schema_json

ROOT = Path(__file__).resolve().parent.parent


def outputs() -> dict[Path, str]:
    files = {
        ROOT / "manifests/crd/finetunejobs.ftjobs.dev.yaml": crd_yaml(),
        ROOT / "manifests/crd/finetunejob.schema.json": schema_json(),
        ROOT / "docs/reference/spec.md": spec_reference(),
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
