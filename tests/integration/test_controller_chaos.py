"""Chaos: kill -9 the controller at random moments during a burst of FineTuneJobs.

A third of the jobs succeed, a third fail retriably once and then succeed on attempt 2,
a third fail permanently. While the test plays the pods' exits, another thread kills
the controller with SIGKILL (no cleanup, the Lease left held) and starts a new one,
KILLS times. In the end: no FineTuneJob lost, none with a duplicate or extra Job, every
one in its expected terminal phase with the expected restart count.

Scale: FTJOBS_CHAOS_JOBS (default 200, the issue's figure) and FTJOBS_CHAOS_KILLS
(default 10); on a 2-core machine shared with other work, 60 jobs keep the run within
minutes: set FTJOBS_CHAOS_JOBS=60 there.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

from ftjobs.api.constants import EXIT_PERMANENT, EXIT_RETRIABLE, LABEL_ATTEMPT, LABEL_JOB
from tests.e2e.harness import Api, ControllerProcess, ftj_manifest, install_crd, wait_for

JOBS = int(os.environ.get("FTJOBS_CHAOS_JOBS", "200"))
KILLS = int(os.environ.get("FTJOBS_CHAOS_KILLS", "10"))
OUTCOMES = ("succeed", "retry-then-succeed", "fail")
EXPECTED = {
    "succeed": ("Succeeded", 0, 1),
    "retry-then-succeed": ("Succeeded", 1, 2),
    "fail": ("Failed", 0, 1),
}


def test_kill_9_during_a_burst_loses_and_duplicates_nothing(cluster: Any, namespace: str) -> None:
    install_crd(cluster)
    api = Api(cluster.kubeconfig)
    rng = random.Random(5)
    args = (
        "--namespace",
        namespace,
        "--lease-name",
        f"chaos-{uuid.uuid4().hex[:6]}",
        "--lease-duration",
        "2",
        "--lease-renew",
        "0.5",
        "--resync-seconds",
        "5",
    )
    controllers = [ControllerProcess(cluster.kubeconfig, *args, name="chaos").start()]
    plan = {f"c{i:03d}": OUTCOMES[i % 3] for i in range(JOBS)}
    stop = threading.Event()
    kills: list[float] = []

    def chaos() -> None:
        while len(kills) < KILLS and not stop.is_set():
            time.sleep(rng.uniform(0.5, 4.0))
            controllers[-1].kill()
            kills.append(time.monotonic())
            controllers.append(ControllerProcess(cluster.kubeconfig, *args, name="chaos").start())

    killer = threading.Thread(target=chaos, daemon=True)
    killer.start()
    try:
        for name in plan:
            api.create_ftj(ftj_manifest(name, namespace))
        played: set[tuple[str, int]] = set()

        def settled() -> bool:
            # Play the pods' exits: each attempt's running pod ends per the job's plan.
            pods = api.kube.list("v1", "Pod", namespace, LABEL_JOB)
            for pod in pods:
                labels = pod["metadata"]["labels"]
                name, attempt = labels[LABEL_JOB], int(labels[LABEL_ATTEMPT])
                running = (pod.get("status") or {}).get("phase") == "Running"
                if not running or (name, attempt) in played:
                    continue
                outcome = plan[name]
                code = 0
                if outcome == "fail":
                    code = EXIT_PERMANENT
                elif outcome == "retry-then-succeed" and attempt == 1:
                    code = EXIT_RETRIABLE
                cluster.pod_exit(
                    pod["metadata"]["name"], namespace, code, f"chaos {outcome}", wait=False
                )
                played.add((name, attempt))
            phases = Counter(
                (o.get("status") or {}).get("phase")
                for o in api.kube.list("ftjobs.dev/v1alpha1", "FineTuneJob", namespace)
            )
            return phases["Succeeded"] + phases["Failed"] == JOBS and len(kills) >= KILLS

        wait_for("every job terminal after the kills", settled, timeout=60 + JOBS * 3, interval=1.0)
    finally:
        stop.set()
        killer.join(30)
        for c in controllers:
            c.stop()

    ftjs = {
        o["metadata"]["name"]: o
        for o in api.kube.list("ftjobs.dev/v1alpha1", "FineTuneJob", namespace)
    }
    assert set(ftjs) == set(plan), "FineTuneJobs lost"
    jobs_by_owner: dict[str, list[str]] = {}
    for job in api.kube.list("batch/v1", "Job", namespace, LABEL_JOB):
        jobs_by_owner.setdefault(job["metadata"]["labels"][LABEL_JOB], []).append(
            job["metadata"]["name"]
        )
    wrong = []
    for name, outcome in plan.items():
        phase, restarts, attempts = EXPECTED[outcome]
        status = ftjs[name].get("status") or {}
        got = (status.get("phase"), status.get("restarts"), sorted(jobs_by_owner.get(name, [])))
        want = (phase, restarts, [f"{name}-{a}" for a in range(1, attempts + 1)])
        if got != want:
            wrong.append(f"{name} ({outcome}): got {got}, want {want}")
    assert not wrong, f"{len(wrong)} jobs off after {len(kills)} kills:\n" + "\n".join(wrong[:20])
    assert len(kills) >= KILLS
