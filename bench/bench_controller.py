"""Benchmark: how fast the controller turns a burst of FineTuneJobs into Jobs, side by side
with kube-controller-manager turning a burst of plain Jobs into pods, in the same run on
the same control plane, under the same client rate limit.

    python bench/bench_controller.py --api-qps 100 --api-burst 200 --jobs 1,30,100,1000 --rounds 3
    python bench/bench_controller.py --kubeconfig KUBECONFIG --jobs 30   # a running cluster

With `--api-qps`/`--api-burst` (and no `--kubeconfig`) the bench starts a private control
plane (tests/fixtures/controlplane.py, kwok nodes) whose kube-controller-manager runs
with `--kube-api-qps`/`--kube-api-burst` set to those values, and runs the ftjobs
controller with the same client limit (`--kube-api-qps`/`--kube-api-burst`). With
`--kubeconfig` it uses that cluster as it is.

Both sides are timed the same way: the client's clock when the create call returned, and
when a watch (started before the burst) delivered the child (the Job of a FineTuneJob;
the first pod of a plain Job). Reports per burst size: time until every child exists,
p50/p99 latency, the ratio ftjobs/kube at p50 and p99, the controller's peak RSS (VmHWM)
and its API requests per FineTuneJob (its /metrics counter, over the burst plus 5 s);
then one Markdown table of all burst sizes. With `--rounds R` each burst size is measured
R times (each round both sides, one after the other, in namespaces of their own) and the
table gives the median of each figure over the rounds, the ratios as the median of the
rounds' ratios, and every round's ratios: on a small machine one burst to the next varies
up to 2x, and a paired ratio per round is steadier than one burst. Needs the CRD
installed (it installs manifests/crd/) and kwok nodes for the pods (pods need not run for
this measure).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
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

from tests.e2e.harness import controller_requests, ftj_manifest  # noqa: E402

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


def cpu_seconds(pid: int) -> float:
    """A process's CPU seconds so far (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def burst(n: int, workers: int, create: Any) -> tuple[dict[str, float], list[float]]:
    """Create `n` objects from `workers` threads: when each create returned, and how long
    each create call took."""
    created: dict[str, float] = {}
    took: list[float] = []

    def one(i: int) -> None:
        start = time.monotonic()
        name = create(i)
        created[name] = time.monotonic()
        took.append(created[name] - start)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(n)))
    return created, took


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
    created, took = burst(n, workers, create)
    deadline = time.monotonic() + timeout
    while len([k for k in created if k in watcher.seen]) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    out = summarize(label, created, watcher.seen, t0)
    # The parent objects' own creates: a FineTuneJob's is slower than a Job's (the CRD's
    # schema and CEL rules), and it loads the API server both sides share.
    out["create_p50_ms"] = round(statistics.median(took) * 1000, 1)
    print(json.dumps({"what": label, "create_p50_ms": out["create_p50_ms"]}))
    return out


def plain_job(name: str, namespace: str) -> dict[str, Any]:
    """A plain Job of one small pod: kube-controller-manager's side of the comparison."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "template": {
                "metadata": {"labels": {"bench-job": name}},
                "spec": {
                    "restartPolicy": "Never",
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [
                        {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "10m"}}}
                    ],
                },
            }
        },
    }


def run_burst(kube: Kube, kubeconfig: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """One burst of `n` on each side, in a namespace of its own; the result row."""
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

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
        kube.create(plain_job(name, ns))
        return name

    kube_side = measure(
        "kube-controller-manager Job->pod", n, args.workers, plain, pods, args.timeout
    )
    pods.stop = True

    # --- ftjobs: FineTuneJob -> Job ------------------------------------------------------
    metrics_port = 18000 + os.getpid() % 1000
    limit = []
    if args.api_qps:
        limit = ["--kube-api-qps", str(args.api_qps), "--kube-api-burst", str(args.api_burst)]
    log = open(args.controller_log, "ab") if args.controller_log else subprocess.DEVNULL  # noqa: SIM115
    ctl = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ftjobs.controller",
            "--kubeconfig",
            kubeconfig,
            "--namespace",
            ns,
            "--no-leader-elect",
            "--metrics-port",
            str(metrics_port),
            "--health-port",
            "0",
            "--workers",
            str(args.controller_workers),
            *limit,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
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
    # Warm up as kube-controller-manager is warm: the controller's watches are up and its
    # connections open once a first FineTuneJob has its Job (not part of the measure).
    kube.create(ftj_manifest("warmup", ns))
    deadline = time.monotonic() + args.timeout
    while "warmup" not in jobs.seen and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # its follow-up reconciles (status, event)

    def rss() -> int:
        text = Path(f"/proc/{ctl.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", text).group(1))  # type: ignore[union-attr]

    def ftj(i: int) -> str:
        name = f"ftj-{i}"
        kube.create(ftj_manifest(name, ns))
        return name

    cpu_before = cpu_seconds(ctl.pid)
    before = controller_requests(metrics_port) or Counter()
    reconciles_before = reconcile_seconds(metrics_port)
    ftj_side = measure("ftjobs FineTuneJob->Job", n, args.workers, ftj, jobs, args.timeout)
    # Let the follow-up work of the burst finish (reports, Running): until the controller
    # has sent no request for 3 s, at least 5 s and at most 5 minutes.
    settle_start = time.monotonic()
    last, quiet_since = controller_requests(metrics_port), time.monotonic()
    while time.monotonic() - settle_start < 300:
        time.sleep(0.5)
        now = controller_requests(metrics_port)
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= 3 and time.monotonic() - settle_start >= 5:
            break
    after = controller_requests(metrics_port) or Counter()
    reconciles_after = reconcile_seconds(metrics_port)
    rss_peak = rss()
    cpu_used = cpu_seconds(ctl.pid) - cpu_before
    jobs.stop = True
    ctl.terminate()
    ctl.wait(30)

    def ratio(key: str) -> float | None:
        a, b = ftj_side[key], kube_side[key]
        return round(a / b, 2) if a is not None and b else None

    result = {
        "jobs": n,
        "kube": kube_side,
        "ftjobs": ftj_side,
        "ratio_p50": ratio("p50_ms"),
        "ratio_p99": ratio("p99_ms"),
        "controller_peak_rss_mib": round(rss_peak / 1024, 1),
        "controller_cpu_ms_per_ftj": round(cpu_used * 1000 / n, 1),
        "api_requests_per_ftj": round((after.total() - before.total()) / n, 2),
        # The profile: how many reconciles a FineTuneJob cost and how long one took (the
        # rest of the latency is waiting: in the work queue, for a worker, for the limit).
        "reconciles_per_ftj": round((reconciles_after[0] - reconciles_before[0]) / n, 2),
        "reconcile_mean_ms": round(
            1000
            * (reconciles_after[1] - reconciles_before[1])
            / max(1.0, reconciles_after[0] - reconciles_before[0]),
            1,
        ),
        "api_requests_per_ftj_by_kind": {
            k: round((after[k] - before[k]) / n, 2) for k in sorted(after) if after[k] > before[k]
        },
    }
    print(json.dumps(result), flush=True)
    # Wait for the namespace to go: thousands of pods being deleted slow down whatever runs
    # next (the next round, the next size, the next user of a shared cluster).
    subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "delete", "namespace", ns, "--timeout=900s"],
        capture_output=True,
    )
    return result


def reconcile_seconds(port: int) -> tuple[float, float]:
    """(count, sum) of the controller's `ftjobs_reconcile_duration_seconds` histogram."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return (0.0, 0.0)
    name = "ftjobs_reconcile_duration_seconds"
    values = dict(
        line.rsplit(" ", 1)
        for line in text.splitlines()
        if line.startswith((f"{name}_count", f"{name}_sum"))
    )
    return (float(values.get(f"{name}_count", 0)), float(values.get(f"{name}_sum", 0)))


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from the rounds of one burst size: medians, and each round's ratios."""

    def median(values: list[Any]) -> Any:
        present = [v for v in values if v is not None]
        return round(statistics.median(present), 2) if present else None

    out = dict(rounds[0])
    for side in ("kube", "ftjobs"):
        out[side] = dict(rounds[0][side])
        for key in ("p50_ms", "p99_ms", "all_exist_s", "create_p50_ms"):
            out[side][key] = median([r[side][key] for r in rounds])
        out[side]["missing"] = sum(r[side]["missing"] for r in rounds)
    for key in (
        "ratio_p50",
        "ratio_p99",
        "controller_peak_rss_mib",
        "controller_cpu_ms_per_ftj",
        "api_requests_per_ftj",
    ):
        out[key] = median([r[key] for r in rounds])
    out["rounds"] = [[r["ratio_p50"], r["ratio_p99"]] for r in rounds]
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table docs/benchmarks.md records."""

    def ms(side: dict[str, Any], key: str) -> str:
        return "—" if side[key] is None else f"{side[key]:.0f} ms"

    out = [
        "| N | kube Job→pod p50 / p99 | ftjobs FTJ→Job p50 / p99 | all children exist "
        "(kube / ftjobs) | ratio p50 / p99 | parent create p50 (Job / FTJ) "
        "| controller CPU per FTJ | controller peak RSS | API requests per FTJ "
        "| ratios p50 / p99 of each round |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        k, f = r["kube"], r["ftjobs"]
        out.append(
            f"| {r['jobs']} | {ms(k, 'p50_ms')} / {ms(k, 'p99_ms')} "
            f"| {ms(f, 'p50_ms')} / {ms(f, 'p99_ms')} "
            f"| {k['all_exist_s']} s / {f['all_exist_s']} s "
            f"| {r['ratio_p50']} / {r['ratio_p99']} "
            f"| {ms(k, 'create_p50_ms')} / {ms(f, 'create_p50_ms')} "
            f"| {r['controller_cpu_ms_per_ftj']} ms | {r['controller_peak_rss_mib']} MiB "
            f"| {r['api_requests_per_ftj']} "
            f"| {', '.join(f'{a} / {b}' for a, b in r.get('rounds', []))} |"
        )
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", help="a running cluster (default: start a private one)")
    ap.add_argument("--jobs", default="30", help="burst sizes, comma-separated (1,30,100)")
    ap.add_argument("--workers", type=int, default=8, help="client threads creating objects")
    ap.add_argument("--controller-workers", type=int, default=None)
    ap.add_argument("--api-qps", type=float, default=None, help="client QPS of both sides")
    ap.add_argument("--api-burst", type=int, default=None, help="client burst of both sides")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--controller-log", help="append the controller's log (JSON lines) here")
    ap.add_argument("--rounds", type=int, default=1, help="bursts of each size (medians)")
    args = ap.parse_args()
    if bool(args.api_qps) != bool(args.api_burst):
        ap.error("--api-qps and --api-burst go together")
    if args.controller_workers is None:
        from ftjobs.controller.__main__ import parse_args

        args.controller_workers = parse_args(["--all-namespaces"]).workers
    plane = None
    kubeconfig = args.kubeconfig
    if kubeconfig is None:
        if not args.api_qps:
            ap.error("without --kubeconfig, give --api-qps and --api-burst")
        from tests.fixtures.controlplane import ControlPlane

        state = Path(tempfile.mkdtemp(prefix="ftjobs-bench-"))
        plane = ControlPlane(
            state_dir=state, kcm_api_qps=args.api_qps, kcm_api_burst=args.api_burst
        ).start(die_with_parent=True)
        kubeconfig = plane.kubeconfig
    try:
        kube = Kube.connect(kubeconfig)
        subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                kubeconfig,
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                str(REPO / "manifests/crd/finetunejobs.ftjobs.dev.yaml"),
            ],
            check=True,
            capture_output=True,
        )
        rows = []
        for n in args.jobs.split(","):
            rounds = [run_burst(kube, kubeconfig, int(n), args) for _ in range(args.rounds)]
            rows.append(combine(rounds))
            print(json.dumps({"jobs": int(n), "rounds": rows[-1]["rounds"]}), flush=True)
    finally:
        if plane is not None:
            plane.stop()
    limit = (
        f"client QPS {args.api_qps:g} / burst {args.api_burst} on both sides"
        if args.api_qps
        else "kube-controller-manager as the cluster runs it; the controller unlimited"
    )
    print(f"\n{limit}; controller workers {args.controller_workers}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
