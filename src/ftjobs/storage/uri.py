"""Parsing store URIs and joining keys.

`scheme://bucket/prefix` for every network backend in storage.backends (s3://, ...) and
`file:///absolute/path` (a bare path is taken as a file path, which is what a local run's
`--output DIR` gives). Keys are always
`/`-separated and relative to a store's root; they may not escape it (`..`) or be
absolute, so a manifest or a caller cannot address an object outside the job's prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from ftjobs.storage.backends import LOCAL_SCHEME, REMOTE_SCHEMES, SCHEMES
from ftjobs.storage.errors import StorageError


@dataclass(frozen=True)
class StoreURI:
    """A parsed root: `scheme` is a registered scheme; for a network backend `bucket` and
    `prefix` (no leading slash, "" or ending with "/"); for file `path` (absolute)."""

    scheme: str
    bucket: str = ""
    prefix: str = ""
    path: Path | None = None

    def __str__(self) -> str:
        if self.scheme == LOCAL_SCHEME:
            return f"file://{self.path}"
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")


def parse_uri(uri: str) -> StoreURI:
    """Parse a store root URI; raises StorageError for anything else."""
    if "://" not in uri:
        if not uri:
            raise StorageError("empty storage URI")
        return StoreURI("file", path=Path(uri).expanduser().resolve())
    parsed = urlparse(uri)
    if parsed.scheme in REMOTE_SCHEMES:
        if not parsed.netloc:
            raise StorageError(f"no bucket in {uri!r}", uri=uri)
        prefix = parsed.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return StoreURI(parsed.scheme, bucket=parsed.netloc, prefix=prefix)
    if parsed.scheme == LOCAL_SCHEME:
        # file://host/path is a remote file share; only the local forms are meaningful.
        if parsed.netloc not in ("", "localhost"):
            raise StorageError(f"file URI must be file:///absolute/path, got {uri!r}", uri=uri)
        return StoreURI("file", path=Path(unquote(parsed.path)).resolve())
    remote_first = sorted(SCHEMES, key=lambda scheme: scheme == LOCAL_SCHEME)
    known = " or ".join(f"{scheme}://" for scheme in remote_first)
    raise StorageError(f"unsupported storage scheme in {uri!r} (use {known})", uri=uri)


def check_key(key: str, *, allow_empty: bool = False) -> str:
    """Validate a key relative to a store root and return it unchanged."""
    if not key:
        if allow_empty:
            return key
        raise StorageError("empty object key")
    if key.startswith("/") or "\\" in key:
        raise StorageError(f"object key must be relative and use '/': {key!r}")
    if any(part in ("..", ".") for part in key.split("/")):
        raise StorageError(f"object key may not contain '.' or '..' segments: {key!r}")
    return key


def as_dir(prefix: str) -> str:
    """A prefix as a directory: "" stays "", "a" becomes "a/"."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"
