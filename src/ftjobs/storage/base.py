"""The object-store interface every backend implements, and small shared helpers.

The interface is deliberately the handful of operations checkpoints, models and
progress need. Keys are relative to the store's root (see `uri.check_key`); an object
appears whole or not at all (S3 semantics; the file backend writes a temporary file and
renames it), which is what makes "MANIFEST.json last" a commit.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

# Read size for hashing and copying: large enough to keep syscalls cheap, small enough
# not to matter for memory.
CHUNK = 8 * 1024 * 1024
MiB = 1024 * 1024


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else default


@dataclass(frozen=True)
class TransferSettings:
    """How big objects move to and from S3. Files from `multipart_threshold` bytes up go
    in parts of `chunk_size` (grown automatically past 9,000 parts), `max_concurrency`
    at a time; botocore makes up to `max_attempts` attempts per request (the first one
    included), with exponential backoff and jitter between them (FTJOBS_S3_MAX_ATTEMPTS
    in the environment changes the default)."""

    multipart_threshold: int = 16 * MiB
    chunk_size: int = 16 * MiB
    max_concurrency: int = 10
    # Big files uploaded/downloaded at once by upload_dir/download_dir; each buffers up
    # to max_concurrency parts, so uploads hold at most 2 * 10 * 16 MiB = 320 MiB.
    max_multipart_files: int = 2
    max_attempts: int = field(default_factory=lambda: _env_int("FTJOBS_S3_MAX_ATTEMPTS", 10))
    retry_mode: str = "standard"  # or "adaptive" (client-side rate limiting as well)
    # Per request: a server that accepts no connection / sends nothing for this long is
    # treated as a network failure (retried, then retriable).
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0


@dataclass(frozen=True)
class ObjectInfo:
    """What was stored: the key (relative to the store root), its size and sha256 (hex)."""

    key: str
    size: int
    sha256: str


@runtime_checkable
class ObjectStore(Protocol):
    """A flat namespace of objects under a root URI (`s3://bucket/prefix` or `file:///dir`)."""

    uri: str

    @property
    def settings(self) -> TransferSettings | None:
        """How big objects move (multipart threshold, concurrency); None for a backend
        without multipart transfers (file://)."""
        ...

    def url(self, key: str) -> str:
        """The full URI of `key`, for messages and for handing to other tools."""
        ...

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo: ...

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        """Upload a local file; the sha256 is computed from the bytes as they are sent."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """The object's content; raises ObjectNotFound."""
        ...

    def get_file(self, key: str, path: Path) -> None:
        """Download to `path` (parents created, replaced whole); raises ObjectNotFound."""
        ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> list[str]:
        """Keys under `prefix` (a string prefix, as in S3), relative to the root, sorted."""
        ...

    def sizes(self, prefix: str = "") -> dict[str, int]:
        """Like `list`, with each object's size (one listing, no per-object requests)."""
        ...

    def delete(self, key: str) -> None:
        """Delete one object; deleting a missing object is not an error."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`; returns how many were deleted."""
        ...

    def child(self, prefix: str) -> ObjectStore:
        """A store rooted at `prefix` (taken as a directory) under this one."""
        ...


class HashingReader:
    """A read-only, forward-only file wrapper that hashes exactly the bytes read through it.

    Uploading through it means the recorded sha256 is the sha256 of what was sent, even if
    the file changed on disk meanwhile. It is deliberately not seekable: boto3 then reads
    the parts sequentially (each into its own buffer, which its retries rewind), so every
    byte passes through `read` exactly once.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, amount: int = -1) -> bytes:
        data = self._raw.read(amount)
        self._hash.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def sha256_file(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a local file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def download_whole(path: Path, download: Callable[[str], None]) -> None:
    """Run `download(tmp)` into a temporary file next to `path`, then rename it: `path` is
    never half written (parents are created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ftjobs-tmp-", dir=path.parent)
    os.close(fd)
    try:
        download(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
