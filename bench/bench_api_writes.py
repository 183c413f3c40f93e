"""What one write of each kind costs the API server: a FineTuneJob's create and status
patch against a Job's and a Service's create, with three forms of the CRD side by side:

- as generated: each cross-field CEL rule first, its guard (the bounds of the fields it
  reads) after it, so a valid object passes on the rule alone (api/crd.py `guarded`), and
  each immutable field compared on its own node (`add_immutability_rules`);
- before (`--before`, the CRD as committed at 5d28890): the same rules, with each guard
  evaluated before its rule and the immutable fields compared from `spec`;
- CEL rules removed (the rest of the schema kept): the floor.

Why: in a burst (bench_controller.py) the API server is the bottleneck, and the
FineTuneJob side of that benchmark pays for custom-object writes that the plain-Job side
does not. Sequential requests from one client on one private control plane; each form is
applied in turn, `--rounds` times, and each row gives the median over its rounds of: the
API server's CPU per write (its /proc user+system time over the `--n` writes, the cost
every other request waits behind in a burst) and the latency p50 of one write.

    python bench/bench_api_writes.py --n 100 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "src"), str(REPO / "bench")]

from bench_controller import cpu_seconds, plain_job  # noqa: E402
from tests.e2e.harness import ftj_manifest  # noqa: E402

from ftjobs.k8s import Kube  # noqa: E402

CRD = REPO / "manifests/crd/finetunejobs.ftjobs.dev.yaml"
# The last commit whose CRD read every guard before its rule and compared immutable fields
# from `spec` (both changed for issue #15).
BEFORE = "5d28890"


def without_cel(doc: Any) -> Any:
    """The CRD with every x-kubernetes-validations rule removed."""
    if isinstance(doc, dict):
        return {k: without_cel(v) for k, v in doc.items() if k != "x-kubernetes-validations"}
    if isinstance(doc, list):
        return [without_cel(v) for v in doc]
    return doc


def committed(rev: str) -> str:
    """The generated CRD as committed at `rev`."""
    return subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:manifests/crd/finetunejobs.ftjobs.dev.yaml"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def timed(n: int, call: Callable[[int], Any], server: int) -> dict[str, float]:
    """`call(0..n-1)` in turn: the API server's CPU per call and the latency p50."""
    took = []
    cpu = cpu_seconds(server)
    for i in range(n):
        start = time.perf_counter()
        call(i)
        took.append(time.perf_counter() - start)
    time.sleep(1)  # the writes' watch fan-out and background work, counted with them
    return {
        "cpu_ms": (cpu_seconds(server) - cpu) * 1000 / n,
        "p50_ms": statistics.median(took) * 1000,
    }


def measure(kube: Kube, kubectl: list[str], crd: Path, n: int, server: int) -> dict[str, Any]:
    """Each kind of write `n` times in a new namespace, with `crd` applied."""
    subprocess.run(
        [*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(crd)],
        check=True,
        capture_output=True,
    )
    time.sleep(5)  # the CRD's new validators compiled and in use
    ns = f"w-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube.create(ftj_manifest("warm", ns))
    kube.create(plain_job("warm", ns))
    service = {"clusterIP": "None", "ports": [{"port": 29500}]}
    return {
        "Job create": timed(n, lambda i: kube.create(plain_job(f"j{i}", ns)), server),
        "Service create": timed(
            n,
            lambda i: kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": f"s{i}", "namespace": ns},
                    "spec": service,
                }
            ),
            server,
        ),
        "FineTuneJob create": timed(n, lambda i: kube.create(ftj_manifest(f"f{i}", ns)), server),
        "FineTuneJob status patch": timed(
            n,
            lambda i: kube.patch_finetunejob_status(ns, f"f{i}", {"phase": "Pending"}),
            server,
        ),
    }


FORMS = ("as generated", "before", "CEL rules removed")


def main() -> int:
    from tests.fixtures.controlplane import ControlPlane

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100, help="requests of each kind, per round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the three CRD forms")
    ap.add_argument("--before", default=BEFORE, help="the commit whose CRD is 'before'")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ftjobs-crd-"))
    files = {form: work / f"crd-{i}.yaml" for i, form in enumerate(FORMS)}
    files["as generated"].write_text(CRD.read_text())
    files["before"].write_text(committed(args.before))
    files["CEL rules removed"].write_text(
        yaml.safe_dump(without_cel(yaml.safe_load(CRD.read_text())))
    )
    plane = ControlPlane(state_dir=work / "plane").start(die_with_parent=True)
    try:
        kube = Kube.connect(plane.kubeconfig)
        kubectl = ["kubectl", "--kubeconfig", plane.kubeconfig]
        server = plane.procs["kube-apiserver"].pid
        assert server is not None
        runs: dict[str, list[dict[str, Any]]] = {form: [] for form in FORMS}
        for r in range(args.rounds):
            for form in FORMS:
                runs[form].append(measure(kube, kubectl, files[form], args.n, server))
                print(json.dumps({"round": r, "form": form, **runs[form][-1]}), flush=True)
    finally:
        plane.stop()

    def median(form: str, kind: str, key: str) -> float:
        return statistics.median(run[kind][key] for run in runs[form])

    print(f"\nAPI-server CPU per write / latency p50, median of {args.rounds} rounds of {args.n}\n")
    print("| write | " + " | ".join(FORMS) + " |")
    print("|---|---|---|---|")
    for kind in runs[FORMS[0]][0]:
        cells = [
            f"{median(f, kind, 'cpu_ms'):.1f} / {median(f, kind, 'p50_ms'):.1f} ms" for f in FORMS
        ]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
