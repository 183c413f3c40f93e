"""Benchmark: how fast the controller turns a burst of FineTuneJobs into Jobs, side by side
with kube-controller-manager turning a burst of plain Jobs into pods, in the same run on
the same control plane.

    python bench/bench_controller.py --kubeconfig KUBECONFIG [--jobs 1000] [--workers 8]

Both sides are timed the same way: the client's clock when the create call returned, and
when a watch (started before the burst) delivered the child (the Job of a FineTuneJob;
the first pod of a plain Job). Reports: time until every child exists, p50/p99 latency,
the ratio ftjobs/kube at p50 and p99, the controller's peak RSS (VmHWM) and its API
requests per FineTuneJob (its /metrics counter). Needs the CRD installed (it installs
manifests/crd/) and kwok nodes for the pods (pods need not run for this measure).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.harness import ftj_manifest  # noqa: E402

from ftjobs.api.constants import LABEL_JOB  # noqa: E402
from ftjobs.k8s import Kube  # noqa: E402


class Watcher(threading.Thread):
    """Records the first time each object name (by `key`) shows up on a watch stream."""

    def __init__(self, kube: Kube, path: str, key: Any) -> None:
        super().__init__(daemon=True)
        self.kube, self.path, self.key = kube, path, key
        self.seen: dict[str, float] = {}
        self.ready = threading.Event()
        self.stop = False

    def run(self) -> None:
        api = self.kube.api
        while not self.stop:
            req = api.param_serialize(
                "GET",
                self.path,
                query_params=[("watch", "true"), ("timeoutSeconds", "600")],
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            resp = api.rest_client.pool_manager.request(
                "GET", req[1], headers=req[2], preload_content=False, timeout=None
            )
            self.ready.set()
            buf = b""
            for chunk in resp.stream(65536):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    now = time.monotonic()
                    obj = json.loads(line)["object"]
                    k = self.key(obj)
                    if k and k not in self.seen:
                        self.seen[k] = now
                if self.stop:
                    return


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def burst(n: int, workers: int, create: Any) -> dict[str, float]:
    created: dict[str, float] = {}

    def one(i: int) -> None:
        name = create(i)
        created[name] = time.monotonic()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(n)))
    return created


def summarize(
    label: str, created: dict[str, float], seen: dict[str, float], t0: float
) -> dict[str, Any]:
    lat = [seen[k] - created[k] for k in created if k in seen]
    missing = len(created) - len(lat)
    out = {
        "what": label,
        "n": len(created),
        "missing": missing,
        "all_exist_s": round(max(seen[k] for k in created if k in seen) - t0, 2) if lat else None,
        "p50_ms": round(statistics.median(lat) * 1000, 1) if lat else None,
        "p99_ms": round(percentile(lat, 99) * 1000, 1) if lat else None,
    }
    print(json.dumps(out))
    return out


def measure(
    label: str, n: int, workers: int, create: Any, watcher: Watcher, timeout: float
) -> dict[str, Any]:
    """Create `n` objects from `workers` threads, wait (up to `timeout` s) until `watcher`
    has seen a child of each, and summarize the latencies."""
    t0 = time.monotonic()
    created = burst(n, workers, create)
    deadline = time.monotonic() + timeout
    while len([k for k in created if k in watcher.seen]) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    return summarize(label, created, watcher.seen, t0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=8, help="client threads creating objects")
    ap.add_argument("--controller-workers", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    kube = Kube.connect(args.kubeconfig)
    subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            args.kubeconfig,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(REPO / "manifests/crd/finetunejobs.ftjobs.dev.yaml"),
        ],
        check=True,
        capture_output=True,
    )
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    n = args.jobs

    # --- kube-controller-manager: plain Job -> first pod ---------------------------------
    pods = Watcher(
        kube,
        f"/api/v1/namespaces/{ns}/pods",
        lambda o: (o["metadata"].get("labels") or {}).get("bench-job"),
    )
    pods.start()
    pods.ready.wait(10)

    def plain(i: int) -> str:
        name = f"plain-{i}"
        kube.create(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "template": {
                        "metadata": {"labels": {"bench-job": name}},
                        "spec": {
                            "restartPolicy": "Never",
                            "tolerations": [{"operator": "Exists"}],
                            "containers": [
                                {
                                    "name": "c",
                                    "image": "busybox",
                                    "resources": {"requests": {"cpu": "10m"}},
                                }
                            ],
                        },
                    }
                },
            }
        )
        return name

    kube_side = measure(
        "kube-controller-manager Job->pod", n, args.workers, plain, pods, args.timeout
    )
    pods.stop = True

    # --- ftjobs: FineTuneJob -> Job ------------------------------------------------------
    metrics_port = 18000 + os.getpid() % 1000
    ctl = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ftjobs.controller",
            "--kubeconfig",
            args.kubeconfig,
            "--namespace",
            ns,
            "--no-leader-elect",
            "--metrics-port",
            str(metrics_port),
            "--health-port",
            "0",
            "--workers",
            str(args.controller_workers),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    jobs = Watcher(
        kube,
        f"/apis/batch/v1/namespaces/{ns}/jobs",
        lambda o: (o["metadata"].get("labels") or {}).get(LABEL_JOB),
    )
    jobs.start()
    jobs.ready.wait(10)
    time.sleep(3)  # the controller's watches are up
    rss_peak = 0

    def rss() -> int:
        text = Path(f"/proc/{ctl.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", text).group(1))  # type: ignore[union-attr]

    def ftj(i: int) -> str:
        name = f"ftj-{i}"
        kube.create(ftj_manifest(name, ns))
        return name

    before = scrape_requests(metrics_port)
    ftj_side = measure("ftjobs FineTuneJob->Job", n, args.workers, ftj, jobs, args.timeout)
    time.sleep(5)  # let the follow-up reconciles (status, events) of the burst finish
    after = scrape_requests(metrics_port)
    rss_peak = rss()
    jobs.stop = True
    ctl.terminate()
    ctl.wait(30)
    result = {
        "jobs": n,
        "ratio_p50": round(ftj_side["p50_ms"] / kube_side["p50_ms"], 2)
        if ftj_side["p50_ms"] and kube_side["p50_ms"]
        else None,
        "ratio_p99": round(ftj_side["p99_ms"] / kube_side["p99_ms"], 2)
        if ftj_side["p99_ms"] and kube_side["p99_ms"]
        else None,
        "controller_peak_rss_mib": round(rss_peak / 1024, 1),
        "api_requests_per_ftj": round((after.total() - before.total()) / n, 2),
        "api_requests_per_ftj_by_kind": {
            k: round((after[k] - before[k]) / n, 2) for k in sorted(after) if after[k] > before[k]
        },
    }
    print(json.dumps(result))
    # Wait for the namespace to go: thousands of pods being deleted slow down whatever runs
    # next on the same control plane (a shared test cluster).
    subprocess.run(
        ["kubectl", "--kubeconfig", args.kubeconfig, "delete", "namespace", ns, "--timeout=900s"],
        capture_output=True,
    )
    return 0


def scrape_requests(port: int) -> Counter[str]:
    """The controller's API requests so far, by "VERB resource" (its /metrics counter)."""
    for _ in range(50):
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
            break
        except OSError:
            time.sleep(0.2)
    else:
        return Counter()
    counts: Counter[str] = Counter()
    for line in text.decode().splitlines():
        if line.startswith("ftjobs_api_requests_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
            kind = f"{labels.get('verb')} {labels.get('resource')}"
            counts[kind] += float(line.rsplit(" ", 1)[1])
    return counts


if __name__ == "__main__":
    sys.exit(main())
