"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go does it.

One controller replica holds the Lease and acts; the others wait. The holder renews it
every `renew_seconds`; a candidate takes it over once `renewTime + leaseDurationSeconds`
has passed. Every write carries the resourceVersion it read, so two candidates cannot
both win (the loser gets 409 Conflict). A holder that cannot renew before its lease
runs out must stop acting (the controller exits and restarts as a candidate); since
reconcile is level-triggered, the next leader loses nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ftjobs.api.timestamps import format_micro_time, parse_time
from ftjobs.k8s.client import Kube
from ftjobs.k8s.errors import AlreadyExists, Conflict, KubeError, KubeNotFound

LEASE = ("coordination.k8s.io/v1", "Lease")
log = logging.getLogger("ftjobs.lease")


@dataclass
class LeaseConfig:
    namespace: str
    name: str = "ftjobs-controller"
    identity: str = "ftjobs"
    duration_seconds: int = 15
    renew_seconds: float = 5.0


class LeaderElector:
    """try_acquire() -> bool; call it every renew_seconds, as holder or as candidate."""

    def __init__(self, kube: Kube, cfg: LeaseConfig) -> None:
        self.kube = kube
        self.cfg = cfg
        self.last_renewed: datetime | None = None

    def _spec(self, now: datetime, transitions: int, acquired: str | None) -> dict[str, Any]:
        return {
            "holderIdentity": self.cfg.identity,
            "leaseDurationSeconds": self.cfg.duration_seconds,
            "acquireTime": acquired or format_micro_time(now),
            "renewTime": format_micro_time(now),
            "leaseTransitions": transitions,
        }

    def try_acquire(self) -> bool:
        now = datetime.now(UTC)
        cfg = self.cfg
        try:
            lease = self.kube.get(*LEASE, cfg.namespace, cfg.name)
        except KubeNotFound:
            body = {
                "apiVersion": LEASE[0],
                "kind": LEASE[1],
                "metadata": {"name": cfg.name, "namespace": cfg.namespace},
                "spec": self._spec(now, 0, None),
            }
            try:
                self.kube.create(body)
            except (AlreadyExists, Conflict):
                return False
            self.last_renewed = now
            log.info("acquired lease %s/%s as %s", cfg.namespace, cfg.name, cfg.identity)
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = spec.get("renewTime")
        duration = int(spec.get("leaseDurationSeconds") or cfg.duration_seconds)
        mine = holder == cfg.identity
        expired = (
            not holder or not renewed or parse_time(renewed) + timedelta(seconds=duration) < now
        )
        if not mine and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        lease["spec"] = self._spec(now, transitions, spec.get("acquireTime") if mine else None)
        try:
            # PUT with the resourceVersion we read: a concurrent writer makes this fail.
            self.kube.request(
                "PUT",
                f"/apis/coordination.k8s.io/v1/namespaces/{cfg.namespace}/leases/{cfg.name}",
                body=lease,
            )
        except Conflict:
            return False
        if not mine:
            log.info(
                "took over lease %s/%s from %s as %s",
                cfg.namespace,
                cfg.name,
                holder,
                cfg.identity,
            )
        self.last_renewed = now
        return True

    def still_valid(self) -> bool:
        """Whether our last successful renewal still covers now (with a safety margin)."""
        if self.last_renewed is None:
            return False
        margin = timedelta(seconds=self.cfg.duration_seconds * 0.8)
        return datetime.now(UTC) < self.last_renewed + margin

    def release(self) -> None:
        """Give the lease up on a clean shutdown so a standby takes over at once."""
        cfg = self.cfg
        try:
            lease = self.kube.get(*LEASE, cfg.namespace, cfg.name)
            if (lease.get("spec") or {}).get("holderIdentity") != cfg.identity:
                return
            lease["spec"]["holderIdentity"] = ""
            self.kube.request(
                "PUT",
                f"/apis/coordination.k8s.io/v1/namespaces/{cfg.namespace}/leases/{cfg.name}",
                body=lease,
            )
        except KubeError as exc:
            log.warning("could not release the lease: %s", exc)
