"""Checkpoints under `<job output>/checkpoints/`: commit, find the latest, fetch, retain.

Layout (docs/storage-layout.md): `step-000000100/...` with its MANIFEST.json written last, and
`LATEST` holding the newest committed step's directory name. A step counts only when
its manifest exists and every listed file is there with its size; the sha256 of each
file is checked when it is fetched. `LATEST` is written after the manifest as a
pointer for people and tools, but `latest()` does not trust it blindly: a crash between
manifest and LATEST, or a LATEST pointing at a damaged step, falls back to the newest
complete step.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

from ftjobs.storage.base import ObjectStore
from ftjobs.storage.errors import CorruptObject, IncompleteCheckpoint, ObjectNotFound
from ftjobs.storage.manifest import MANIFEST, check_sizes, download_dir, read_manifest, upload_dir

log = logging.getLogger(__name__)

LATEST = "LATEST"
_STEP_DIR = re.compile(r"^step-(\d{9,})$")


def step_dir(step: int) -> str:
    """The directory name of a step: step-000000100."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return f"step-{step:09d}"


class CheckpointStore:
    """Checkpoints of one job; `store` is rooted at the job's `checkpoints/` prefix."""

    def __init__(self, store: ObjectStore, keep: int, *, concurrency: int = 8) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.store = store
        self.keep = keep
        self.concurrency = concurrency

    def uri(self, step: int) -> str:
        return self.store.url(step_dir(step) + "/")

    def steps(self) -> dict[int, bool]:
        """Every step directory present, with whether it has a MANIFEST.json (one listing)."""
        found: dict[int, bool] = {}
        for key in self.store.list("step-"):
            head, _, rest = key.partition("/")
            match = _STEP_DIR.match(head)
            if match:
                step = int(match.group(1))
                found[step] = found.get(step, False) or rest == MANIFEST
        return dict(sorted(found.items()))

    def commit(self, step: int, local_dir: Path) -> str:
        """Upload `local_dir` as step `step`, then LATEST, then apply retention; the step's URI."""
        name = step_dir(step)
        upload_dir(self.store, local_dir, name, concurrency=self.concurrency)
        self.store.put_bytes(LATEST, name.encode())
        self._retain(step)
        return self.uri(step)

    def _retain(self, committed: int) -> None:
        """Keep `committed` and the newest keep-1 complete steps before it; delete the rest.

        "The rest" includes step directories without a manifest (uploads a crash cut
        short) and steps newer than `committed`: those can only exist when a resume
        skipped them as damaged, so they belong to an abandoned run.
        """
        steps = self.steps()
        older = [s for s, complete in steps.items() if complete and s < committed]
        kept = {committed, *sorted(older)[-(self.keep - 1) :]} if self.keep > 1 else {committed}
        for step in steps:
            if step not in kept:
                name = step_dir(step)
                # Manifest first: a reader never sees a complete-looking step losing files.
                self.store.delete(f"{name}/{MANIFEST}")
                self.store.delete_prefix(f"{name}/")
                log.info("retention: deleted %s", self.store.url(name + "/"))

    def read_latest_pointer(self) -> int | None:
        """The step LATEST names, or None when there is no (readable) LATEST."""
        try:
            text = self.store.get_bytes(LATEST).decode().strip()
        except ObjectNotFound:
            return None
        match = _STEP_DIR.match(text)
        return int(match.group(1)) if match else None

    def candidates(self) -> Iterator[int]:
        """Steps whose manifest exists and whose files are all there with the right sizes,
        newest first; lazy, so finding the latest costs one manifest read and one listing."""
        pointer = self.read_latest_pointer()
        for step, has_manifest in sorted(self.steps().items(), reverse=True):
            if not has_manifest:
                if step == pointer:
                    log.warning("LATEST names %s, which has no manifest; skipped", step_dir(step))
                continue
            try:
                check_sizes(self.store, step_dir(step), read_manifest(self.store, step_dir(step)))
            except (IncompleteCheckpoint, CorruptObject) as e:
                log.warning("skipping checkpoint %s: %s", step_dir(step), e)
                continue
            yield step

    def latest(self) -> tuple[int, str] | None:
        """(step, uri) of the newest complete checkpoint, or None when there is none."""
        for step in self.candidates():
            return step, self.uri(step)
        return None

    def fetch(self, step: int, local_dir: Path) -> Path:
        """Download step `step` into `local_dir`, verifying sizes and sha256."""
        download_dir(self.store, step_dir(step), local_dir, concurrency=self.concurrency)
        return local_dir

    def fetch_latest(self, local_dir: Path) -> tuple[int, Path] | None:
        """Fetch the newest checkpoint that verifies, falling back to older ones; None if none.

        This is what resume wants: a checkpoint whose sha256 does not match is refused and
        the next older complete one is tried.
        """
        for step in self.candidates():
            try:
                return step, self.fetch(step, local_dir)
            except (IncompleteCheckpoint, CorruptObject) as e:
                log.warning("checkpoint %s refused: %s", step_dir(step), e)
        return None
