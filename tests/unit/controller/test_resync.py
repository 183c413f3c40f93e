"""The periodic resync: every round re-reconciles every known FineTuneJob from the watches'
caches; only every `reread_every`-th round reads them afresh (GET, LIST)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from ftjobs.controller.child_cache import ChildCache
from ftjobs.controller.handlers import Controller
from ftjobs.k8s import Kube

pytestmark = pytest.mark.unit


class CountingCache(ChildCache):
    def __init__(self) -> None:
        super().__init__()
        self.unsynced = 0

    def unsync_all(self) -> None:
        self.unsynced += 1
        super().unsync_all()


def test_every_round_requeues_and_only_every_nth_reads_afresh() -> None:
    async def scenario() -> list[tuple[int, bool, int]]:
        # The resync never touches the API itself: no client is needed.
        ctl = Controller(kube=cast(Kube, None), resync_seconds=0.01, reread_every=3)
        ctl.children = CountingCache()
        key = ("ml", "demo")
        ctl.known.add(key)
        body: dict[str, Any] = {"metadata": {"resourceVersion": "5"}}
        ctl.bodies[key] = body
        task = asyncio.create_task(ctl.resync())
        rounds: list[tuple[int, bool, int]] = []
        for _ in range(4):
            # Each round queues the key once; take it so the next round queues it again.
            got = await asyncio.wait_for(ctl.queue.get(), 1.0)
            assert got == key
            rounds.append((len(rounds) + 1, key in ctl.bodies, ctl.children.unsynced))
            ctl.queue.done(got)
            if key not in ctl.bodies:
                ctl.bodies[key] = body  # as a reconcile's GET would put it back
        task.cancel()
        return rounds

    cache = asyncio.run(scenario())
    # Rounds 1 and 2 keep the cached body and the synced children; round 3 drops both.
    assert cache == [(1, True, 0), (2, True, 0), (3, False, 1), (4, True, 1)]
