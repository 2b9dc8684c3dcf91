"""How a run shows its progress: the live board on a terminal, one line per event elsewhere.

The scheduler calls a reporter with the new state and the event after every change, and
``stopping(state, grace, agents, signs=...)`` after the first Ctrl-C; ``heartbeat`` calls its
``tick()`` once a second. What is shown is decided by the pure ``event_line`` and
``dagspec.board``; ``dagspec.terminal`` draws it.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TextIO

import trio

from dagspec.board import committing, stopping_line
from dagspec.errors import as_typed
from dagspec.faults import Quiet
from dagspec.lifecycle import Event, RunState, SpecStatus
from dagspec.terminal import Board

TICK = 1.0  # seconds between two frames of the board while nothing happens


def event_line(event: Event, now: datetime, done: int = 0, total: int = 0) -> str:
    """One event as a line: ``[12:00:01] [3/6] 050-error-handling: plan``, where 3 of the
    run's 6 specs are completed (the count is left out when ``total`` is 0).

    >>> event_line(Event("a", "failed", "exited with 1"), datetime(2026, 1, 1, 12, 0, 1), 1, 2)
    '[12:00:01] [1/2] a: failed: exited with 1'
    """
    count = f" [{done}/{total}]" if total else ""
    return f"[{now:%H:%M:%S}]{count} {event.spec_id}: {_what(event)}"


def _what(event: Event) -> str:
    if event.kind == "stage":
        return event.detail
    if event.kind == "tasks":
        return f"implement {event.detail} tasks"
    if event.kind == "started":
        return "started" if event.detail in ("", "attempt 1") else f"started ({event.detail})"
    if event.kind == "failed":
        return f"failed: {event.detail}"
    if event.kind == "blocked":
        return f"blocked by {event.detail}"
    if event.kind in ("stalled", "restarting", "waiting", "called off") and event.detail:
        return f"{event.kind}: {event.detail}"
    return event.kind


class Lines:
    """One plain line per event (logs, CI, pipes, ``TERM=dumb``): never a control sequence."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def __call__(self, state: RunState, event: Event) -> None:
        done = sum(s.status is SpecStatus.COMPLETED for s in state.specs)
        line = event_line(event, datetime.now(), done, len(state.specs))
        print(as_typed(line), file=self.out, flush=True)  # a reason's `dag retry ...`

    def tick(self) -> None:
        pass

    def stopping(self, state: RunState, grace: float, agents: int, *, signs: bool = False) -> None:
        line = stopping_line(grace, agents, committing=committing(state), signs=signs)
        print(f"[{datetime.now():%H:%M:%S}] {line}", file=self.out, flush=True)

    def close(self) -> None:
        pass


class Live:
    """The live board (``terminal.Board``), fed by the scheduler's events."""

    def __init__(
        self,
        *,
        color: bool,
        out: TextIO | None = None,
        history: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.board = Board(out or sys.stdout, color=color, history=history)

    def __call__(self, state: RunState, event: Event) -> None:
        # Progress, and the cascade of a failure (one event per blocked spec), come in
        # bursts: those redraw at most ten times a second; the heartbeat shows the rest.
        self.board.show(state, urgent=event.kind not in ("stage", "tasks", "blocked"))

    def tick(self) -> None:
        self.board.tick()

    def stopping(self, state: RunState, grace: float, agents: int, *, signs: bool = False) -> None:
        self.board.stopping(state, grace, agents, signs=signs)

    def close(self) -> None:
        self.board.close()


def reporter(
    *,
    live: bool,
    color: bool,
    out: TextIO | None = None,
    history: Mapping[str, Sequence[float]] | None = None,
) -> Lines | Live:
    """The live board when ``live`` (its estimate from ``history``, seconds per spec id in
    earlier runs), plain lines otherwise."""
    return Live(color=color, out=out, history=history) if live else Lines(out)


async def heartbeat(report: Lines | Live | Quiet, *, interval: float = TICK) -> None:
    """Tick ``report`` every ``interval`` seconds, and at once when the terminal is resized
    (SIGWINCH), until cancelled. Start it beside the scheduler, in the same nursery."""
    with trio.open_signal_receiver(signal.SIGWINCH) as resizes:
        while True:
            with trio.move_on_after(interval):
                await anext(resizes)
            report.tick()
