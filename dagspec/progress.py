"""How a run shows its progress: a live table on a terminal, one line per event elsewhere.

The scheduler calls a reporter with the new state and the event after every change; what
is shown is decided by the pure ``event_line`` and ``render.status_table``.
"""

from __future__ import annotations

import shutil
import sys
import time
from datetime import datetime
from typing import TextIO

from dagspec import render
from dagspec.lifecycle import Event, RunState
from dagspec.state import utcnow


def event_line(event: Event, now: datetime) -> str:
    """One event as a line: ``[12:00:01] 050-error-handling: plan``.

    >>> event_line(Event("a", "failed", "exited with 1"), datetime(2026, 1, 1, 12, 0, 1))
    '[12:00:01] a: failed: exited with 1'
    """
    return f"[{now:%H:%M:%S}] {event.spec_id}: {_what(event)}"


def _what(event: Event) -> str:
    if event.kind == "stage":
        return event.detail
    if event.kind == "tasks":
        return f"implement {event.detail} tasks"
    if event.kind == "started":
        return "started" if event.detail in ("", "attempt 1") else f"started ({event.detail})"
    if event.kind in ("failed",):
        return f"failed: {event.detail}"
    if event.kind == "blocked":
        return f"blocked by {event.detail}"
    return event.kind


class Lines:
    """One plain line per event (logs, CI, pipes)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def __call__(self, state: RunState, event: Event) -> None:
        print(event_line(event, datetime.now()), file=self.out, flush=True)

    def close(self) -> None:
        pass


class LiveTable:  # pragma: no cover - a terminal redraw loop; the table is tested in render
    """The status table, redrawn in place at most ten times a second."""

    def __init__(self, *, color: bool, out: TextIO | None = None) -> None:
        self.color = color
        self.out = out or sys.stdout
        self.height = 0
        self.drawn_at = 0.0
        self.state: RunState | None = None

    def __call__(self, state: RunState, event: Event) -> None:
        self.state = state
        if time.monotonic() - self.drawn_at >= 0.1 or event.kind not in ("stage", "tasks"):
            self._draw()

    def close(self) -> None:
        if self.state is not None:
            self._draw()

    def _draw(self) -> None:
        assert self.state is not None
        width = shutil.get_terminal_size().columns
        table = render.status_table(self.state, now=utcnow(), width=width, color=self.color)
        up = f"\x1b[{self.height}F\x1b[J" if self.height else ""
        self.out.write(up + table)
        self.out.flush()
        self.height = table.count("\n")
        self.drawn_at = time.monotonic()


def reporter(*, live: bool, color: bool) -> Lines | LiveTable:
    """The live table on a terminal, plain lines anywhere else."""
    return LiveTable(color=color) if live else Lines()
