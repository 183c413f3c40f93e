"""What the job commands print: the progress display of `--wait` and the status tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from ftjobs.cli.output import out
from ftjobs.sdk.client import JobView

# --- progress while waiting --------------------------------------------------------------


class WaitDisplay:
    """Phase changes as lines; progress as a rich bar (step/total, loss, ETA) on a terminal,
    or one line per change elsewhere (CI logs)."""

    def __init__(self) -> None:
        self.live_ok = out.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TextColumn("loss {task.fields[loss]}"),
            TimeRemainingColumn(),
            TextColumn("eta {task.fields[eta]}"),
            console=out,
        )
        self.task: TaskID | None = None
        self.live: Live | None = None
        self.phase: tuple[str, int] | None = None

    def __enter__(self) -> WaitDisplay:
        if self.live_ok:
            self.live = Live(Group(self.progress), console=out, refresh_per_second=4)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def __call__(self, view: JobView) -> None:
        st = view.status
        key = (view.phase, st.attempt)
        if key != self.phase:
            self.phase = key
            attempt = f" (attempt {st.attempt})" if st.attempt else ""
            message = f": {st.message}" if st.message else ""
            out.print(f"{view.name}: {view.phase}{attempt}{message}", markup=False)
        p = st.progress
        if p is None:
            return
        loss = f"{p.loss:.4f}" if p.loss is not None else "-"
        if self.live_ok:
            if self.task is None:
                self.task = self.progress.add_task(
                    view.name, total=p.total_steps, loss=loss, eta="-"
                )
            self.progress.update(
                self.task,
                completed=p.step,
                total=p.total_steps,
                loss=loss,
                eta=p.eta or "-",
                description=f"{view.name} [{view.phase}]",
            )
        else:
            total = f"/{p.total_steps}" if p.total_steps else ""
            eta = f" eta {p.eta}" if p.eta else ""
            out.print(f"{view.name}: step {p.step}{total} loss {loss}{eta}", markup=False)


def status_table(view: JobView) -> Table:
    st = view.status
    table = Table(title=f"FineTuneJob {view.namespace}/{view.name}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("Phase", view.phase)
    if view.reason:
        table.add_row("Reason", view.reason)
    since = view.queued_since
    if since:
        queue = (view.raw.get("spec") or {}).get("queueName", "")
        table.add_row("Queued", f"in Kueue queue {queue} since {since} ({_for(since)})")
    table.add_row("Attempt", f"{st.attempt} (restarts: {st.restarts})")
    if st.progress:
        p = st.progress
        total = f"/{p.total_steps}" if p.total_steps else ""
        pct = f" ({p.percent}%)" if p.percent is not None else ""
        parts = [f"step {p.step}{total}{pct}"]
        if p.loss is not None:
            parts.append(f"loss {p.loss:.4f}")
        if p.samples_per_second is not None:
            parts.append(f"{p.samples_per_second:.1f} samples/s")
        if p.eta:
            parts.append(f"eta {p.eta}")
        table.add_row("Progress", ", ".join(parts))
    if st.latest_checkpoint:
        table.add_row("Checkpoint", f"step {st.latest_checkpoint.step}: {st.latest_checkpoint.uri}")
    if st.base_model:
        table.add_row("Base model", f"{st.base_model} (model.fromJob)")
    if st.output_model:
        table.add_row("Output model", st.output_model)
    if st.start_time:
        table.add_row("Started", st.start_time)
    if st.completion_time:
        table.add_row("Completed", st.completion_time)
    return table


def metrics_table(view: JobView) -> Table:
    m = view.status.metrics
    assert m is not None
    table = Table(title=f"Metrics ({m.split})")
    table.add_column("metric")
    table.add_column("base", justify="right")
    table.add_column("fine-tuned", justify="right")
    for key in sorted({*m.base, *m.fine_tuned}):
        base, tuned = m.base.get(key), m.fine_tuned.get(key)
        table.add_row(
            key,
            "-" if base is None else f"{base:.4g}",
            "-" if tuned is None else f"{tuned:.4g}",
        )
    return table


def events_table(events: list[dict[str, Any]]) -> Table:
    table = Table(title="Events")
    for column in ("time", "type", "reason", "message"):
        table.add_column(column, overflow="fold")
    for ev in events:
        table.add_row(
            str(ev.get("lastTimestamp") or ev.get("eventTime") or ""),
            str(ev.get("type", "")),
            str(ev.get("reason", "")),
            str(ev.get("message", "")),
        )
    return table


def _for(since: str) -> str:
    """How long ago an RFC 3339 time was, as 1h02m03s."""
    try:
        then = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        return "?"
    secs = max(0, int((datetime.now(UTC) - then).total_seconds()))
    h, rest = divmod(secs, 3600)
    return (f"{h}h" if h else "") + f"{rest // 60:02d}m{rest % 60:02d}s"
