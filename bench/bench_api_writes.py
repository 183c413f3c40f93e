"""What one write of each kind costs an idle API server: a FineTuneJob's create and status
patch against a Job's and a Service's create, with the CRD as generated and with its CEL
rules removed (the rest of its schema kept).

Why: in a burst (bench_controller.py) the API server is the bottleneck, and the
FineTuneJob side of that benchmark pays for custom-object writes that the plain-Job side
does not. Sequential requests from one client on a private control plane; the median and
the fastest of `--n` each.

    python bench/bench_api_writes.py --n 60
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "src"), str(REPO / "bench")]

from bench_controller import plain_job  # noqa: E402
from tests.e2e.harness import ftj_manifest  # noqa: E402

from ftjobs.k8s import Kube  # noqa: E402

CRD = REPO / "manifests/crd/finetunejobs.ftjobs.dev.yaml"


def without_cel(doc: Any) -> Any:
    """The CRD with every x-kubernetes-validations rule removed."""
    if isinstance(doc, dict):
        return {k: without_cel(v) for k, v in doc.items() if k != "x-kubernetes-validations"}
    if isinstance(doc, list):
        return [without_cel(v) for v in doc]
    return doc


def timed(n: int, call: Callable[[int], Any]) -> dict[str, float]:
    took = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        took.append(time.perf_counter() - start)
    return {
        "p50_ms": round(statistics.median(took) * 1000, 1),
        "min_ms": round(min(took) * 1000, 1),
    }


def measure(crd: Path, n: int) -> dict[str, Any]:
    from tests.fixtures.controlplane import ControlPlane

    plane = ControlPlane(state_dir=Path(tempfile.mkdtemp(prefix="ftjobs-writes-"))).start(
        die_with_parent=True
    )
    try:
        kc = plane.kubeconfig
        subprocess.run(
            ["kubectl", "--kubeconfig", kc, "apply", "--server-side", "-f", str(crd)],
            check=True,
            capture_output=True,
        )
        time.sleep(3)  # the CRD established and its validators compiled
        kube = Kube.connect(kc)
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "w"}})
        kube.create(ftj_manifest("warm", "w"))
        kube.create(plain_job("warm", "w"))
        service = {"clusterIP": "None", "ports": [{"port": 29500}]}
        return {
            "Job create": timed(n, lambda i: kube.create(plain_job(f"j{i}", "w"))),
            "Service create": timed(
                n,
                lambda i: kube.create(
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "metadata": {"name": f"s{i}", "namespace": "w"},
                        "spec": service,
                    }
                ),
            ),
            "FineTuneJob create": timed(n, lambda i: kube.create(ftj_manifest(f"f{i}", "w"))),
            "FineTuneJob status patch": timed(
                n,
                lambda i: kube.patch_finetunejob_status("w", f"f{i}", {"phase": "Pending"}),
            ),
        }
    finally:
        plane.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60, help="requests of each kind")
    args = ap.parse_args()
    stripped = Path(tempfile.mkdtemp(prefix="ftjobs-crd-")) / "crd-without-cel.yaml"
    stripped.write_text(yaml.safe_dump(without_cel(yaml.safe_load(CRD.read_text()))))
    rows = {
        "CRD as generated": measure(CRD, args.n),
        "CEL rules removed": measure(stripped, args.n),
    }
    print(json.dumps(rows))
    print("\n| write | as generated p50 / min | CEL rules removed p50 / min |")
    print("|---|---|---|")
    for kind in rows["CRD as generated"]:
        a, b = rows["CRD as generated"][kind], rows["CEL rules removed"][kind]
        print(f"| {kind} | {a['p50_ms']} / {a['min_ms']} ms | {b['p50_ms']} / {b['min_ms']} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
