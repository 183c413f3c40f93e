"""``ftjobs logs -f`` over several pods: every rank streams at once, not one after another."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ftjobs.sdk.client import _merged


def test_a_quiet_rank_does_not_hold_back_the_others() -> None:
    release = threading.Event()

    def rank0() -> Iterator[str]:
        yield "r0 first"
        release.wait(10)  # blocks until rank 1's lines have been seen
        yield "r0 last"

    def rank1() -> Iterator[str]:
        yield "r1 a"
        yield "r1 b"

    seen: list[tuple[int | None, str]] = []
    for item in _merged([(0, rank0()), (1, rank1())]):
        seen.append(item)
        if sum(r == 1 for r, _ in seen) == 2:
            release.set()
    # sequential streaming would deliver r0's last line before any of rank 1's
    assert seen.index((1, "r1 b")) < seen.index((0, "r0 last"))
    assert sorted(seen) == [(0, "r0 first"), (0, "r0 last"), (1, "r1 a"), (1, "r1 b")]


def test_an_error_in_one_stream_surfaces_after_the_rest() -> None:
    def broken() -> Iterator[str]:
        yield "x"
        raise RuntimeError("stream broke")

    def fine() -> Iterator[str]:
        yield "y"

    seen = []
    with pytest.raises(RuntimeError, match="stream broke"):
        for item in _merged([(0, broken()), (1, fine())]):
            seen.append(item)
    assert sorted(seen) == [(0, "x"), (1, "y")]
