"""Checkpoints of a multi-node DeepSpeed run: save on every rank, commit once, resume exactly.

Nodes do not share a disk in Kubernetes, so no rank can see another rank's files. Every
rank therefore saves into its own scratch directory and uploads what it wrote under the
same step prefix; then it writes a small "part" object listing its files (sizes,
sha256). Rank 0's upload thread waits for every rank's part, checks the files are all
there, and writes MANIFEST.json (the commit), then LATEST, then applies retention. All of
it runs on background threads (the storage package's `BackgroundUploader`), so training
goes on meanwhile, and no collective ever runs off the main thread.

Parts are named with a token the attempt draws at start-up, so parts left by an earlier,
crashed attempt at the same step can never be merged into this attempt's manifest.

Resume: rank 0 picks the newest complete, verified checkpoint (`CheckpointStore.latest`),
deletes newer step directories (an abandoned attempt's partial uploads), and broadcasts
the step; every rank downloads the whole step directory (ZeRO-1/2 loading reads every
rank's optimizer shard) and calls `engine.load_checkpoint`. Each rank's RNG states and
the data position travel in a per-rank `trainer-state-rank-R.pt` file, because DeepSpeed
keeps `client_state` only in rank 0's file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ftjobs.api.errors import PermanentError
from ftjobs.storage import (
    LATEST,
    MANIFEST,
    BackgroundUploader,
    CheckpointStore,
    FileEntry,
    IncompleteCheckpoint,
    Manifest,
    ObjectStore,
    StorageError,
    step_dir,
)
from ftjobs.storage.manifest import check_sizes
from ftjobs.trainer.runtime import World

log = logging.getLogger("ftjobs.trainer.checkpoint")

PARTS = "_parts"
STATE_FILE = "trainer-state-rank-{rank:05d}.pt"
# How long rank 0 waits for the other ranks' parts before giving the checkpoint up.
PART_TIMEOUT_S = 1800.0
# Niceness of the upload thread (0-19): uploads use the CPU training leaves idle.
UPLOAD_NICE = 10


class ShardedCheckpointStore(CheckpointStore):
    """A CheckpointStore whose `commit` uploads only this rank's files (see module doc)."""

    def __init__(self, store: ObjectStore, keep: int, *, world: World, token: str) -> None:
        super().__init__(store, keep, concurrency=4)
        self.world = world
        self.token = token

    def _part_key(self, step: int, rank: int) -> str:
        return f"{step_dir(step)}/{PARTS}/{self.token}-rank-{rank:05d}.json"

    def commit(self, step: int, local_dir: Path) -> str:
        # Runs on the upload thread: lower its CPU priority (Linux schedules threads as
        # tasks), so hashing and copying yield to the training thread when CPUs are busy.
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), UPLOAD_NICE)
        name = step_dir(step)
        files = sorted(
            (p.relative_to(local_dir).as_posix(), p) for p in local_dir.rglob("*") if p.is_file()
        )
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            infos = list(pool.map(lambda f: self.store.put_file(f"{name}/{f[0]}", f[1]), files))
        part = [{"path": i.key[len(name) + 1 :], "size": i.size, "sha256": i.sha256} for i in infos]
        self.store.put_bytes(self._part_key(step, self.world.rank), json.dumps(part).encode())
        if self.world.rank == 0:
            self._write_manifest(step)
        return self.uri(step)

    def _write_manifest(self, step: int) -> None:
        name = step_dir(step)
        keys = [self._part_key(step, r) for r in range(self.world.size)]
        deadline = time.monotonic() + PART_TIMEOUT_S
        while not all(self.store.exists(k) for k in keys):
            if time.monotonic() > deadline:
                raise IncompleteCheckpoint(f"ranks did not report their files for {name}")
            time.sleep(0.1)
        entries: dict[str, FileEntry] = {}
        for key in keys:
            for f in json.loads(self.store.get_bytes(key)):
                entry = FileEntry(f["path"], int(f["size"]), f["sha256"])
                if entries.get(entry.path, entry) != entry:
                    raise StorageError(f"two ranks wrote different {name}/{entry.path}")
                entries[entry.path] = entry
        manifest = Manifest(files=entries, created=datetime.now(UTC).isoformat(timespec="seconds"))
        check_sizes(self.store, name, manifest)
        self.store.put_bytes(f"{name}/{MANIFEST}", manifest.to_json())
        self.store.delete_prefix(f"{name}/{PARTS}/")
        self.store.put_bytes(LATEST, name.encode())
        self._retain(step)

    def _retain(self, committed: int) -> None:
        """Keep the newest `keep` complete steps up to `committed`; delete older ones.

        Unlike the base class, never touch steps newer than `committed`: other ranks may
        be uploading them right now. Abandoned newer steps are removed at resume.
        """
        steps = self.steps()
        complete = sorted(s for s, ok in steps.items() if ok and s <= committed)
        kept = set(complete[-self.keep :]) | {committed}
        for step in steps:
            if step < committed and step not in kept:
                name = step_dir(step)
                self.store.delete(f"{name}/{MANIFEST}")  # stops counting first
                self.store.delete_prefix(f"{name}/")
                log.info("retention: deleted %s", self.store.url(name + "/"))

    def discard_after(self, step: int | None) -> None:
        """Delete step directories newer than `step` (all when None): an abandoned run's."""
        for other in self.steps():
            if step is None or other > step:
                self.store.delete(f"{step_dir(other)}/{MANIFEST}")
                self.store.delete_prefix(f"{step_dir(other)}/")
                log.info("discarded abandoned checkpoint %s", step_dir(other))


class Checkpointer:
    """Saves DeepSpeed checkpoints from the training loop and restores them at start-up."""

    def __init__(
        self,
        checkpoints_store: ObjectStore,
        *,
        keep: int,
        world: World,
        scratch: Path,
        token: str,
        on_commit: Callable[[int, str], None] | None = None,
    ) -> None:
        self.world = world
        self.checkpoints = ShardedCheckpointStore(checkpoints_store, keep, world=world, token=token)
        self.save_root = scratch / "checkpoints" / f"rank-{world.rank:05d}"
        self.load_root = scratch / "resume" / f"rank-{world.rank:05d}"
        self.uploader = BackgroundUploader(self.checkpoints, max_pending=2)
        self.on_commit = on_commit
        self.last_saved_step: int | None = None

    def save(self, engine: Any, step: int, state: dict[str, Any], *, wait: bool = False) -> float:
        """Checkpoint `step` on every rank (collective); the upload runs in the background.

        `state` is this rank's trainer state (data position, RNG). Returns the seconds the
        training loop was blocked. `wait=True` also waits for the upload (SIGTERM path).
        """
        started = time.monotonic()
        tag = step_dir(step)
        target = self.save_root / tag
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        engine.save_checkpoint(
            str(self.save_root),
            tag=tag,
            client_state={"ftjobs": {k: v for k, v in state.items() if k != "rng"}},
            save_latest=False,
        )
        torch.save(state, target / STATE_FILE.format(rank=self.world.rank))
        on_done = self.on_commit if self.world.is_main else None
        self.uploader.submit(step, target, on_done)
        self.last_saved_step = step
        if wait:
            self.uploader.wait()
        return time.monotonic() - started

    def resume(self, engine: Any, *, from_step: int | None = None) -> dict[str, Any] | None:
        """Load the newest complete checkpoint (or step `from_step`, which must be a
        complete, size-verified one) into `engine` (collective); this rank's state.

        Checkpoints newer than the one resumed from are discarded (an abandoned run's).
        Returns None when there is nothing to resume from.
        """
        found: list[Any] = [None, ""]
        if self.world.is_main:
            if from_step is None:
                latest = self.checkpoints.latest()
                found[0] = latest[0] if latest else None
            else:
                complete = sorted(self.checkpoints.candidates())
                if from_step in complete:
                    found[0] = from_step
                else:
                    found[1] = (
                        f"checkpointing.resumeFromStep: {self.checkpoints.uri(from_step)} is not "
                        f"a complete checkpoint (complete: {complete or 'none'})"
                    )
            if not found[1]:
                self.checkpoints.discard_after(found[0])
        if dist.is_initialized():
            dist.broadcast_object_list(found, src=0)
        if found[1]:
            raise PermanentError(found[1])
        step: int | None = found[0]
        if step is None:
            return None
        tag = step_dir(step)
        shutil.rmtree(self.load_root, ignore_errors=True)
        self.checkpoints.fetch(step, self.load_root / tag)
        state_file = self.load_root / tag / STATE_FILE.format(rank=self.world.rank)
        saved_ranks = len(list((self.load_root / tag).glob("trainer-state-rank-*.pt")))
        if not state_file.exists() or saved_ranks != self.world.size:
            raise PermanentError(
                f"{self.checkpoints.uri(step)} was saved by {saved_ranks} processes, this "
                f"attempt has {self.world.size}: resume needs the same layout"
            )
        path, _ = engine.load_checkpoint(
            str(self.load_root),
            tag=tag,
            load_optimizer_states=True,
            load_lr_scheduler_states=True,
        )
        if path is None:
            raise StorageError(f"DeepSpeed could not load checkpoint {self.checkpoints.uri(step)}")
        # RNG states must come back as CPU tensors (torch.set_rng_state refuses others).
        state: dict[str, Any] = torch.load(state_file, map_location="cpu", weights_only=False)
        shutil.rmtree(self.load_root, ignore_errors=True)
        log.info("resumed from %s (step %d)", self.checkpoints.uri(step), step)
        return state

    def wait(self, timeout: float | None = None) -> None:
        """Wait until every saved checkpoint of this rank is uploaded (re-raising a failure)."""
        self.uploader.wait(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Wait for pending uploads (re-raising a failure) and stop the upload thread."""
        self.uploader.close(timeout)
