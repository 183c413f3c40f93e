"""The work queue: de-duplication, re-processing of keys changed while in flight, delays."""

from __future__ import annotations

import asyncio

from ftjobs.controller.queue import WorkQueue


def test_dedup_dirty_and_delay() -> None:
    async def scenario() -> list[str]:
        q = WorkQueue()
        seen: list[str] = []
        q.add("a")
        q.add("a")
        q.add("b")
        assert len(q) == 2
        key = await q.get()
        seen.append(str(key))
        q.add("a")  # changed while processing: once more afterwards, not concurrently
        assert len(q) == 1
        q.done(key)
        assert len(q) == 2
        seen.append(str(await q.get()))
        seen.append(str(await q.get()))
        q.done("b")
        q.done("a")
        q.add_after("c", 0.05)
        q.add_after("c", 5.0)  # a later delayed add does not postpone the earlier one
        seen.append(str(await asyncio.wait_for(q.get(), 1.0)))
        q.done("c")
        q.add_after("d", 0.01)
        q.forget("d")
        await asyncio.sleep(0.05)
        assert len(q) == 0
        return seen

    assert asyncio.run(scenario()) == ["a", "b", "a", "c"]
