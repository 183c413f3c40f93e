"""Committed directories: upload files first, MANIFEST.json last; download and verify.

A directory in the store (a checkpoint, the final model) counts only once its
MANIFEST.json exists: the manifest lists every file with its size and sha256 and is
written after all of them, so a reader that finds it knows the upload finished, and a
crash mid-upload leaves a directory without one, which readers skip. Downloads check
every file against the manifest before handing the directory over.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ftjobs.storage.base import ObjectInfo, ObjectStore, sha256_file
from ftjobs.storage.errors import CorruptObject, IncompleteCheckpoint, ObjectNotFound, StorageError
from ftjobs.storage.uri import as_dir, check_key

log = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"
MANIFEST_VERSION = 1

# progress(path relative to the directory, bytes uploaded so far, total bytes): called once
# per finished file, from the upload threads (one call at a time).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass
class Manifest:
    """The files of a committed directory (paths relative to it, `/`-separated)."""

    files: dict[str, FileEntry] = field(default_factory=dict)
    created: str = ""

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files.values())

    def to_json(self) -> bytes:
        doc = {
            "version": MANIFEST_VERSION,
            "created": self.created,
            "total_size": self.total_size,
            "files": [
                {"path": f.path, "size": f.size, "sha256": f.sha256}
                for f in sorted(self.files.values(), key=lambda f: f.path)
            ],
        }
        return json.dumps(doc, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes, uri: str) -> Manifest:
        try:
            doc = json.loads(data)
            files = {
                str(f["path"]): FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"]))
                for f in doc["files"]
            }
            for path in files:
                check_key(path)  # a manifest may not point outside its directory
        except (ValueError, KeyError, TypeError, StorageError) as e:
            raise CorruptObject(f"unreadable manifest {uri}: {e}", uri=uri) from None
        return cls(files=files, created=str(doc.get("created", "")))


def read_manifest(store: ObjectStore, prefix: str) -> Manifest:
    """The manifest of the directory at `prefix`; IncompleteCheckpoint when there is none."""
    key = as_dir(prefix) + MANIFEST
    try:
        data = store.get_bytes(key)
    except ObjectNotFound:
        raise IncompleteCheckpoint(
            f"{store.url(as_dir(prefix))} has no {MANIFEST} (upload not finished)",
            uri=store.url(as_dir(prefix)),
        ) from None
    return Manifest.from_json(data, store.url(key))


def check_sizes(store: ObjectStore, prefix: str, manifest: Manifest) -> None:
    """Cheap completeness check with one listing: every file present with its size."""
    prefix = as_dir(prefix)
    listed = store.sizes(prefix)
    for entry in manifest.files.values():
        key = prefix + entry.path
        if key not in listed:
            raise IncompleteCheckpoint(f"{store.url(key)} is missing", uri=store.url(key))
        if listed[key] != entry.size:
            raise CorruptObject(
                f"{store.url(key)} has {listed[key]} bytes, manifest says {entry.size}",
                uri=store.url(key),
            )


def _local_files(local_dir: Path) -> list[tuple[str, Path]]:
    files = sorted(
        (p.relative_to(local_dir).as_posix(), p) for p in local_dir.rglob("*") if p.is_file()
    )
    if any(rel == MANIFEST for rel, _ in files):
        raise StorageError(f"{local_dir / MANIFEST} is reserved for the upload's manifest")
    return files


def _run(
    jobs: Sequence[Callable[[], None]],
    sizes: Sequence[int],
    store: ObjectStore,
    concurrency: int,
    name: str,
) -> None:
    """Run transfer jobs, biggest first (the long ones start early, so the run does not end
    waiting on one big file): small objects `concurrency` at a time, and next to them at
    most `max_multipart_files` big (multipart) ones, each of which already moves its
    parts concurrently and buffers up to max_concurrency of them; two pools bound memory
    and connections without a big file ever holding up a small one. The first failure is
    raised and the jobs not yet started are cancelled."""
    settings = store.settings
    threshold = settings.multipart_threshold if settings is not None else None
    order = sorted(range(len(jobs)), key=lambda i: -sizes[i])
    big = [jobs[i] for i in order if threshold is not None and sizes[i] >= threshold]
    small = [jobs[i] for i in order if threshold is None or sizes[i] < threshold]
    pools = [
        ThreadPoolExecutor(max(1, concurrency), thread_name_prefix=name),
        ThreadPoolExecutor(
            max(1, settings.max_multipart_files if settings is not None else 1), name + "-big"
        ),
    ]
    try:
        futures = [pools[1].submit(job) for job in big] + [pools[0].submit(j) for j in small]
        for future in futures:
            future.result()
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)


def upload_dir(
    store: ObjectStore,
    local_dir: Path,
    prefix: str,
    *,
    concurrency: int = 8,
    progress: Progress | None = None,
) -> Manifest:
    """Upload `local_dir` to `prefix` as a committed directory and return its manifest.

    Order: what is already at `prefix` is listed and an old MANIFEST.json deleted (the
    directory stops counting while it is rewritten), then the files, then the new
    MANIFEST.json, then objects the new manifest does not list (an earlier attempt's).
    On a fresh prefix that is one listing and no deletes.
    Files go `concurrency` at a time, biggest first; big ones are split into concurrent
    parts by the backend, at most `TransferSettings.max_multipart_files` at once.
    """
    if not local_dir.is_dir():
        raise StorageError(f"{local_dir} is not a directory")
    prefix = as_dir(check_key(prefix))
    files = _local_files(local_dir)
    total = sum(p.stat().st_size for _, p in files)
    existing = store.list(prefix)
    if prefix + MANIFEST in existing:
        store.delete(prefix + MANIFEST)

    done = 0
    infos: list[ObjectInfo] = []
    lock = threading.Lock()

    def finished(info: ObjectInfo) -> None:
        nonlocal done
        with lock:  # called from several upload threads
            infos.append(info)
            done += info.size
            if progress is not None:
                progress(info.key[len(prefix) :], done, total)

    def put(rel: str, path: Path) -> None:
        finished(store.put_file(prefix + rel, path))

    _run(
        [functools.partial(put, rel, path) for rel, path in files],
        [path.stat().st_size for _, path in files],
        store,
        concurrency,
        "upload",
    )

    manifest = Manifest(
        files={
            i.key[len(prefix) :]: FileEntry(i.key[len(prefix) :], i.size, i.sha256) for i in infos
        },
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    store.put_bytes(prefix + MANIFEST, manifest.to_json())
    for key in existing:
        if key != prefix + MANIFEST and key[len(prefix) :] not in manifest.files:
            store.delete(key)
    log.info(
        "committed %s (%d files, %.1f MiB)",
        store.url(prefix),
        len(manifest.files),
        manifest.total_size / 2**20,
    )
    return manifest


def download_dir(
    store: ObjectStore, prefix: str, local_dir: Path, *, concurrency: int = 8
) -> Manifest:
    """Download the committed directory at `prefix` into `local_dir` and verify it.

    Every file's size and sha256 must match MANIFEST.json (IncompleteCheckpoint when the
    manifest or a file is missing, CorruptObject on a mismatch). Files land in a sibling
    `.partial` directory that is renamed to `local_dir` only after all of them verified,
    so `local_dir` never holds a half-downloaded or unverified directory. `local_dir`
    must be absent or empty.
    """
    prefix = as_dir(check_key(prefix))
    manifest = read_manifest(store, prefix)
    if local_dir.exists() and any(local_dir.iterdir()):
        raise StorageError(f"download target {local_dir} is not empty")
    staging = local_dir.with_name(f".{local_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)

    def fetch(entry: FileEntry) -> None:
        key = prefix + entry.path
        target = staging / entry.path
        try:
            store.get_file(key, target)
        except ObjectNotFound:
            raise IncompleteCheckpoint(f"{store.url(key)} is missing", uri=store.url(key)) from None
        size, sha = sha256_file(target)
        if size != entry.size or sha != entry.sha256:
            raise CorruptObject(
                f"{store.url(key)} does not match its manifest "
                f"(size {size} vs {entry.size}, sha256 {sha[:12]} vs {entry.sha256[:12]})",
                uri=store.url(key),
            )

    entries = list(manifest.files.values())
    try:
        jobs = [functools.partial(fetch, e) for e in entries]
        _run(jobs, [e.size for e in entries], store, concurrency, "download")
        if local_dir.exists():
            local_dir.rmdir()
        os.replace(staging, local_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def download_prefix(store: ObjectStore, local_dir: Path, *, concurrency: int = 8) -> int:
    """Download every object under `store` into `local_dir`, all or nothing; the file count.

    For folders that other tools wrote (a base model): with a MANIFEST.json, this is
    `download_dir` (sha256-verified); without one, each file's size must match the
    listing. Files land in a sibling `.partial` directory renamed to `local_dir` at the
    end, so an interrupted download never leaves a folder that looks complete.
    """
    sizes = store.sizes("")
    if MANIFEST in sizes:
        return len(download_dir(store, "", local_dir, concurrency=concurrency).files)
    if not sizes:
        raise ObjectNotFound(f"{store.uri} is empty or does not exist", uri=store.uri)
    staging = local_dir.with_name(f".{local_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)

    def fetch(key: str) -> None:
        target = staging / key
        store.get_file(key, target)
        if target.stat().st_size != sizes[key]:
            raise IncompleteCheckpoint(
                f"{store.url(key)}: got {target.stat().st_size} bytes, listed {sizes[key]}",
                uri=store.url(key),
            )

    try:
        jobs = [functools.partial(fetch, key) for key in sizes]
        _run(jobs, list(sizes.values()), store, concurrency, "download")
        shutil.rmtree(local_dir, ignore_errors=True)
        os.replace(staging, local_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return len(sizes)
