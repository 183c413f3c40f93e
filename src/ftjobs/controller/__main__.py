"""`python -m ftjobs.controller --namespace NS | --all-namespaces` (also `ftjobs controller`).

Startup: JSON logs, /metrics and /healthz (on every replica), then leader election on a
Lease; only the holder runs the kopf operator. A replica that loses its lease exits with
status 1 so its supervisor restarts it as a candidate; the new leader re-lists everything
and, because reconcile is level-triggered, loses nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import sys
import uuid

import kopf

from ftjobs.controller import metrics
from ftjobs.controller.handlers import Controller, make_registry
from ftjobs.controller.health import Health
from ftjobs.controller.logs import configure_logging
from ftjobs.k8s import Kube, KubeError
from ftjobs.k8s.lease import LeaderElector, LeaseConfig
from ftjobs.render import RenderSettings

log = logging.getLogger("ftjobs.controller")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ftjobs controller", description=__doc__.splitlines()[0])
    scope = p.add_mutually_exclusive_group(required=True)
    scope.add_argument("--namespace", "-n", action="append", help="Namespace to watch (repeat)")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="Watch every namespace")
    p.add_argument(
        "--kubeconfig", default=None, help="Kubeconfig (default: $KUBECONFIG/in-cluster)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=16,
        help="Concurrent reconciles (each up to its Job; the rest follows in the background)",
    )
    p.add_argument(
        "--kube-api-qps",
        type=float,
        default=0.0,
        help="Client-side limit of API requests a second, as kube-controller-manager's "
        "flag of the same name (0: no limit)",
    )
    p.add_argument(
        "--kube-api-burst",
        type=int,
        default=0,
        help="Requests allowed at once above --kube-api-qps (0: twice the QPS)",
    )
    p.add_argument(
        "--resync-seconds",
        type=float,
        default=60.0,
        help="Reconcile every FineTuneJob this often, from the watches' caches",
    )
    p.add_argument(
        "--reread-every",
        type=int,
        default=10,
        help="Every Nth resync reads the FineTuneJobs and their Jobs afresh from the API",
    )
    p.add_argument("--metrics-port", type=int, default=8080, help="/metrics port (0: off)")
    p.add_argument(
        "--health-port", type=int, default=8081, help="/healthz and /readyz port (0: off)"
    )
    p.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument(
        "--lease-namespace",
        default=None,
        help="Lease namespace (default: "
        "$POD_NAMESPACE, else the first watched namespace, else default)",
    )
    p.add_argument("--lease-name", default="ftjobs-controller")
    p.add_argument("--lease-duration", type=int, default=15, help="Seconds")
    p.add_argument("--lease-renew", type=float, default=5.0, help="Seconds")
    p.add_argument("--image", default=None, help="Trainer image (default: render's)")
    p.add_argument(
        "--image-pull-secret",
        action="append",
        default=[],
        help="Secret to pull the trainer image with (repeat); jobs may add their own",
    )
    p.add_argument("--s3-endpoint", default=None, help="S3 endpoint for jobs whose spec sets none")
    p.add_argument("--s3-region", default=None, help="S3 region for jobs whose spec sets none")
    p.add_argument("--verbose", "-v", action="store_true")
    return p.parse_args(argv)


def _settings(args: argparse.Namespace) -> RenderSettings:
    settings = RenderSettings()
    if args.image:
        settings = dataclasses.replace(settings, image=args.image)
    if args.image_pull_secret:
        settings = dataclasses.replace(settings, image_pull_secrets=tuple(args.image_pull_secret))
    if args.s3_endpoint:
        settings = dataclasses.replace(settings, s3_endpoint=args.s3_endpoint)
    if args.s3_region:
        settings = dataclasses.replace(settings, s3_region=args.s3_region)
    return settings


async def _hold_lease(elector: LeaderElector, stop: asyncio.Event, lost: list[bool]) -> None:
    """Renew until stopped; if renewal fails past the lease's validity, stop acting."""
    while not stop.is_set():
        await asyncio.sleep(elector.cfg.renew_seconds)
        try:
            ok = await asyncio.to_thread(elector.try_acquire)
        except KubeError as exc:
            log.warning("lease renewal failed", extra={"error": str(exc)})
            ok = False
        if not ok and not elector.still_valid():
            log.error("lost the leader lease; stopping")
            metrics.LEADER.set(0)
            lost.append(True)
            stop.set()


async def run(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        # kopf logs in through the kubernetes client, which reads $KUBECONFIG.
        os.environ["KUBECONFIG"] = args.kubeconfig
    kube = Kube.connect(args.kubeconfig, qps=args.kube_api_qps, burst=args.kube_api_burst)
    kube.on_request = lambda verb, resource: metrics.API_REQUESTS.labels(verb, resource).inc()
    metrics.serve(args.metrics_port)
    health = Health()
    health.serve(args.health_port)
    beats = asyncio.create_task(health.beat_forever())
    stop = asyncio.Event()
    lost: list[bool] = []
    elector: LeaderElector | None = None
    renewer: asyncio.Task[None] | None = None
    # Our own identity for kopf too: its default looks the uid up in /etc/passwd, which
    # the image (USER 1000, no account) and arbitrary runAsUser values do not have.
    identity = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    if args.leader_elect:
        lease_ns = (
            args.lease_namespace
            or os.environ.get("POD_NAMESPACE")
            or (args.namespace[0] if args.namespace else "default")
        )
        elector = LeaderElector(
            kube,
            LeaseConfig(lease_ns, args.lease_name, identity, args.lease_duration, args.lease_renew),
        )
        health.role = "standby"
        log.info(
            "waiting for the leader lease",
            extra={"lease": f"{lease_ns}/{args.lease_name}", "identity": identity},
        )
        while True:
            try:
                if await asyncio.to_thread(elector.try_acquire):
                    break
            except KubeError as exc:
                log.warning("lease acquisition failed", extra={"error": str(exc)})
            await asyncio.sleep(args.lease_renew)
        metrics.LEADER.set(1)
        log.info("leading", extra={"identity": identity})
        renewer = asyncio.create_task(_hold_lease(elector, stop, lost))
    health.role = "leader"
    controller = Controller(
        kube=kube,
        settings=_settings(args),
        workers=args.workers,
        resync_seconds=args.resync_seconds,
        reread_every=max(1, args.reread_every),
    )
    try:
        await kopf.operator(
            registry=make_registry(),
            standalone=True,  # leadership is the Lease's business, not kopf peering's
            clusterwide=bool(args.all_namespaces),
            namespaces=args.namespace or (),
            memo=controller,
            stop_flag=stop,
            identity=identity,  # type: ignore[arg-type]  # kopf.Identity is a NewType of str
        )
    finally:
        beats.cancel()
        if renewer is not None:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        if elector is not None and not lost:
            await asyncio.to_thread(elector.release)
    return 1 if lost else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(verbose=args.verbose)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
