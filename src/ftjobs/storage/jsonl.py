"""Append-only JSON Lines objects (progress.jsonl).

S3 has no append. The choice here: ONE object, rewritten whole from a local copy on
every append. Readers (`ftjobs status`, `aws s3 cp`, a person) then see a single plain
file that is always complete, since a put replaces an object atomically; the cost is
re-sending the file, which is small for progress records (a few hundred bytes each, one
per logging step: ~2 MB after 10,000 records). Numbered parts would save that traffic
but make every reader list and stitch. There must be one writer per object (rank 0).

`JsonlWriter` keeps the local copy across appends; `append_jsonl` is the stateless
form (one read and one write per call) for occasional records.
"""

from __future__ import annotations

import json
from typing import Any

from ftjobs.storage.base import ObjectStore
from ftjobs.storage.errors import ObjectNotFound


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":"), sort_keys=False) + "\n").encode()


class JsonlWriter:
    """Appends records to `key`, keeping what is already there (a resumed run continues it)."""

    def __init__(self, store: ObjectStore, key: str) -> None:
        self.store = store
        self.key = key
        try:
            self._data = bytearray(store.get_bytes(key))
        except ObjectNotFound:
            self._data = bytearray()
        if self._data and not self._data.endswith(b"\n"):
            self._data += b"\n"

    def append(self, record: dict[str, Any]) -> None:
        self._data += _line(record)
        self.store.put_bytes(self.key, bytes(self._data))


def append_jsonl(store: ObjectStore, key: str, record: dict[str, Any]) -> None:
    """Append one record to `key` (read, append, rewrite)."""
    JsonlWriter(store, key).append(record)


def read_jsonl(store: ObjectStore, key: str) -> list[dict[str, Any]]:
    """All records of `key`; [] when it does not exist yet."""
    try:
        data = store.get_bytes(key)
    except ObjectNotFound:
        return []
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]
