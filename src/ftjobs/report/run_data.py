"""What a report is drawn from: the run's own files, parsed (no I/O here)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# The keys of a job's output a report reads (eval/step-*.json are listed).
REPORT_INPUTS = ("progress.jsonl", "summary.json", "data-report.json")


class ReadableStore(Protocol):
    """The two methods of `ftjobs.storage.ObjectStore` a report needs (no import of it)."""

    def get_bytes(self, key: str) -> bytes: ...

    def list(self, prefix: str = "") -> list[str]: ...


@dataclass(frozen=True)
class RunData:
    name: str
    progress: Sequence[Mapping[str, Any]] = ()  # progress.jsonl records
    evaluations: Sequence[Mapping[str, Any]] = ()  # eval/step-*.json documents
    summary: Mapping[str, Any] | None = None
    data_report: Mapping[str, Any] | None = None
    lineage: Sequence[str] = field(default_factory=tuple)

    @classmethod
    def from_store(cls, name: str, store: ReadableStore) -> RunData:
        """From a job's output prefix (S3 or a folder); missing files are fine."""
        keys = [k for k in REPORT_INPUTS if k in store.list(k)]  # a listing, not a NotFound
        keys += [k for k in store.list("eval/step-") if k.endswith(".json")]
        return cls.from_files(name, {k: store.get_bytes(k) for k in keys})

    @classmethod
    def from_files(
        cls,
        name: str,
        files: Mapping[str, bytes],
    ) -> RunData:
        """From {relative key: bytes} of a job's output (missing keys are fine)."""

        def doc(key: str) -> Any:
            raw = files.get(key)
            return json.loads(raw) if raw else None

        progress = []
        for line in (files.get("progress.jsonl") or b"").decode().splitlines():
            try:
                progress.append(json.loads(line))
            except ValueError:
                continue  # the line being written
        evaluations = [
            json.loads(raw)
            for key, raw in sorted(files.items())
            if key.startswith("eval/step-") and key.endswith(".json")
        ]
        return cls(
            name=name,
            progress=progress,
            evaluations=evaluations,
            summary=doc("summary.json"),
            data_report=doc("data-report.json"),
        )
