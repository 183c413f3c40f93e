"""Hyperparameter sweeps: a grid of `--set` overrides -> one FineTuneJob per point.

    name, points = sweep_points("job.yaml", parse_grid(["hyperparameters.learningRate=1e-5,1e-4"]))
    views = run_on_cluster(Client(), points, parallel=2)   # or `run_local` point by point

A sweep is a client-side loop over ordinary FineTuneJobs (no extra kind, no controller
state): every point is a complete, validated job whose name says which sweep and which
point it is, with labels linking them (`kubectl get ftj -l ftjobs.dev/sweep=NAME`), so
each run can be watched, compared, cancelled or resumed like any other. The sweep's
name carries a hash of the base spec and the grid: the same command submitted twice
names the same jobs (idempotent), a changed grid never collides with an old one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import yaml

from ftjobs.api.constants import GROUP
from ftjobs.api.job import FineTuneJob
from ftjobs.api.types import JOB_NAME_MAX
from ftjobs.api.validation import FieldError, SpecError
from ftjobs.sdk.client import Client, JobView
from ftjobs.sdk.spec import load_job

LABEL_SWEEP = f"{GROUP}/sweep"
LABEL_SWEEP_POINT = f"{GROUP}/sweep-point"
ANNOTATION_SWEEP_PARAMS = f"{GROUP}/sweep-params"


@dataclass(frozen=True)
class GridAxis:
    """One `--grid PATH=V1,V2,...`: a spec path (camelCase, relative to spec) and its values."""

    path: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class SweepPoint:
    index: int
    overrides: tuple[str, ...]  # PATH=VALUE, as `--set` takes them
    job: FineTuneJob

    @property
    def name(self) -> str:
        return self.job.metadata.name or ""


def parse_grid(items: Sequence[str]) -> list[GridAxis]:
    """`PATH=V1,V2,...` strings -> axes; values are YAML scalars as in `--set`."""
    axes: list[GridAxis] = []
    seen: set[str] = set()
    for item in items:
        path, sep, raw = item.partition("=")
        path = path.strip().removeprefix("spec.")
        values = tuple(v.strip() for v in raw.split(",") if v.strip())
        if not sep or not path or not values:
            raise SpecError([FieldError("", f"--grid {item!r} is not PATH=V1,V2,...")])
        if path in seen:
            raise SpecError([FieldError(path, "appears in two --grid options")])
        if len(set(values)) != len(values):
            raise SpecError([FieldError(path, f"--grid repeats a value: {raw}")])
        seen.add(path)
        axes.append(GridAxis(path, values))
    if not axes:
        raise SpecError([FieldError("", "give at least one --grid PATH=V1,V2,...")])
    return axes


def sweep_name(base: FineTuneJob, axes: Sequence[GridAxis]) -> str:
    """`<job name>-<6 hex>`: the hash covers the base spec and the grid."""
    doc = {
        "spec": base.spec.model_dump(by_alias=True, mode="json"),
        "grid": [[a.path, list(a.values)] for a in axes],
    }
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:6]
    stem = base.metadata.name or "sweep"
    return f"{stem}-{digest}"


def point_name(sweep: str, index: int, count: int) -> str:
    """`<sweep>-<i>` within the 40-character job-name limit (the stem is shortened)."""
    suffix = f"-{index:0{len(str(count - 1))}d}"
    digest = sweep.rsplit("-", 1)[-1]
    stem = sweep[: -len(digest) - 1]
    room = JOB_NAME_MAX - len(suffix) - len(digest) - 1
    stem = stem[:room].rstrip("-") or "sweep"
    return f"{stem}-{digest}{suffix}"


def sweep_points(
    file: str, axes: Sequence[GridAxis], overrides: Sequence[str] = ()
) -> tuple[str, list[SweepPoint]]:
    """The sweep's name and its points (the cartesian product of the axes, in order).

    Each point is `load_job(file, overrides + point overrides)`: validated exactly as
    `ftjobs submit --set` would, so a bad value is reported with its field path.
    """
    base = load_job(file, overrides)
    name = sweep_name(base, axes)
    combos = list(itertools.product(*(a.values for a in axes)))
    points: list[SweepPoint] = []
    for index, values in enumerate(combos):
        sets = tuple(f"{a.path}={v}" for a, v in zip(axes, values, strict=True))
        try:
            job = load_job(file, [*overrides, *sets])
        except SpecError as exc:
            raise SpecError(exc.errors, f"{file} (sweep point {', '.join(sets)})") from None
        job.metadata.name = point_name(name, index, len(combos))
        job.metadata.generate_name = None
        job.metadata.labels = {
            **job.metadata.labels,
            LABEL_SWEEP: name,
            LABEL_SWEEP_POINT: str(index),
        }
        job.metadata.annotations = {
            **job.metadata.annotations,
            ANNOTATION_SWEEP_PARAMS: yaml.safe_dump(
                dict(s.split("=", 1) for s in sets), default_flow_style=True, width=10_000
            ).strip(),
        }
        points.append(SweepPoint(index, sets, job))
    return name, points


class SweepTimeout(Exception):
    def __init__(self, message: str, views: dict[str, JobView]) -> None:
        super().__init__(message)
        self.views = views


def run_on_cluster(
    client: Client,
    points: Sequence[SweepPoint],
    *,
    namespace: str | None = None,
    parallel: int = 2,
    timeout: float | None = None,
    poll_seconds: float = 2.0,
    on_update: Callable[[JobView], None] | None = None,
) -> dict[str, JobView]:
    """Submit the points, at most `parallel` unfinished at a time, until all have ended.

    Returns the final view of each point (by name, in point order). Raises SweepTimeout
    (with the latest views) after `timeout` seconds; the jobs keep running. Re-running a
    sweep finds its finished points already there (submit is idempotent).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    pending = list(points)
    active: dict[str, str] = {}  # name -> namespace
    views: dict[str, JobView] = {}
    while pending or active:
        while pending and len(active) < parallel:
            point = pending.pop(0)
            result = client.submit(point.job, namespace=namespace)
            active[result.name] = result.namespace
        for name, ns in list(active.items()):
            view = client.get(name, namespace=ns)
            previous = views.get(name)
            views[name] = view
            if on_update is not None and (previous is None or _changed(previous, view)):
                on_update(view)
            if view.finished:
                del active[name]
        if not (pending or active):
            break
        if deadline is not None and time.monotonic() >= deadline:
            raise SweepTimeout(f"sweep not finished after {timeout:g}s", views)
        time.sleep(poll_seconds)
    return {p.name: views[p.name] for p in points if p.name in views}


def _changed(old: JobView, new: JobView) -> bool:
    p_old, p_new = old.status.progress, new.status.progress
    return (old.phase, old.status.attempt, p_old and p_old.step) != (
        new.phase,
        new.status.attempt,
        p_new and p_new.step,
    )
