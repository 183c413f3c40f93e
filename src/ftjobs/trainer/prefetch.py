"""Micro-batches on the engine's device, prepared ahead of the step that uses them.

`device_batches(source, collate, device, prefetch=)` turns an iterator of sample lists
into an iterator of `DeviceBatch` (the collated tensors on `device`, plus the number of
real tokens for throughput). With prefetch a daemon thread collates the next `depth`
micro-batches while the current step runs (and pins them on CUDA); the training thread
then copies each to the GPU on a side stream, non-blocking, so the copy overlaps the
kernels already queued. Device copies stay in the training thread on purpose: CUDA
streams, and torch function modes such as the tests' fake device, are per thread.
Without prefetch, each batch is collated and copied when asked for (the same tensors).

The thread only reads ahead: which batches were consumed is what the caller counts, so
checkpoints and resume positions are unaffected. `close()` stops the reader (end of an
epoch, a stop) without waiting for the source to end.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ftjobs.trainer.runtime import World
from ftjobs.trainer.tasks.common import Batch, Collator, to_device


@dataclass
class DeviceBatch:
    """A collated micro-batch on the training device."""

    tensors: Batch
    tokens: int  # real (unpadded) input tokens in the batch
    ready: torch.cuda.Event | None = None  # the side-stream copy's completion (CUDA)

    def wait(self) -> Batch:
        """The tensors, once the copy is done (the compute stream waits; the host does not)."""
        if self.ready is not None:
            stream = torch.cuda.current_stream()
            stream.wait_event(self.ready)
            for tensor in self.tensors.values():
                tensor.record_stream(stream)  # memory of the side-stream copy: in use here
        return self.tensors


def _tokens(items: list[dict[str, Any]]) -> int:
    return sum(len(item["input_ids"]) for item in items)


class _Prefetcher:
    _DONE = object()

    def __init__(
        self,
        source: Iterator[list[dict[str, Any]]],
        collate: Collator,
        device: torch.device,
        depth: int,
    ) -> None:
        self.source, self.collate, self.device = source, collate, device
        self.cuda = device.type == "cuda"
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._run, name="batch-prefetch", daemon=True)
        self.thread.start()

    def _put(self, item: Any) -> bool:
        while not self.closed.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for items in self.source:
                tensors = self.collate(items)
                if self.cuda:  # page-locked: the copy to the GPU can be asynchronous
                    tensors = {k: v.pin_memory() for k, v in tensors.items()}
                if not self._put((tensors, _tokens(items))):
                    return
        except BaseException as e:  # handed to the training thread, raised there
            self._put(e)
            return
        self._put(self._DONE)

    def __iter__(self) -> _Prefetcher:
        return self

    def __next__(self) -> tuple[Batch, int]:
        item = self.queue.get()
        if item is self._DONE:
            self.closed.set()
            raise StopIteration
        if isinstance(item, BaseException):
            self.closed.set()
            raise item
        batch: tuple[Batch, int] = item
        return batch

    def close(self) -> None:
        self.closed.set()


class DeviceBatches:
    """Iterator of DeviceBatch over `source`; see the module docstring."""

    def __init__(
        self,
        source: Iterator[list[dict[str, Any]]],
        collate: Collator,
        device: torch.device,
        *,
        prefetch: bool,
        depth: int = 2,
    ) -> None:
        self._prefetcher = _Prefetcher(source, collate, device, depth) if prefetch else None
        self._source, self._collate, self._device = source, collate, device
        self._stream = None
        if prefetch and device.type == "cuda":
            self._stream = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]

    def __iter__(self) -> DeviceBatches:
        return self

    def __next__(self) -> DeviceBatch:
        if self._prefetcher is None:
            items = next(self._source)
            return DeviceBatch(to_device(self._collate(items), self._device), _tokens(items))
        tensors, tokens = next(self._prefetcher)
        if self._stream is None:
            return DeviceBatch(to_device(tensors, self._device), tokens)
        with torch.cuda.stream(self._stream):
            tensors = {k: v.to(self._device, non_blocking=True) for k, v in tensors.items()}
            ready = torch.cuda.Event()  # type: ignore[no-untyped-call]
            ready.record(self._stream)
        return DeviceBatch(tensors, tokens, ready)

    def close(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.close()


def epoch_batches(
    features: Any,
    *,
    streaming: bool,
    micro_batch_size: int,
    seed: int,
    world: World,
    per_epoch: int,
) -> Iterator[list[dict[str, Any]]]:
    """One rank's micro-batches of an epoch (sample lists), from the epoch's start.

    Map-style rows: a permutation from `seed` (the training seed plus the epoch), dealt
    round-robin (rank r takes r, r+W, ...) and cut to `per_epoch` micro-batches, so all
    ranks take the same number of steps. Streaming rows (already sharded per rank) are
    read in order; an incomplete last micro-batch is dropped.
    """
    if streaming:
        rows = iter(features)
        while chunk := list(itertools.islice(rows, micro_batch_size)):
            if len(chunk) < micro_batch_size:
                return
            yield chunk
        return
    order = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed)).tolist()
    mine = order[world.rank :: world.size][: per_epoch * micro_batch_size]
    for start in range(0, len(mine), micro_batch_size):
        yield [features[i] for i in mine[start : start + micro_batch_size]]


__all__ = ["DeviceBatch", "DeviceBatches", "epoch_batches"]
