"""What a run prints as it goes, when its output is not a terminal."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest

from dagspec.lifecycle import Event, SpecStatus
from dagspec.progress import Lines, event_line
from tests.run_states import run, spec

NOON = datetime(2026, 11, 24, 12, 0, 1)


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (Event("050-x", "started", "attempt 1"), "[12:00:01] 050-x: started"),
        (Event("050-x", "started", "attempt 2"), "[12:00:01] 050-x: started (attempt 2)"),
        (Event("050-x", "stage", "plan"), "[12:00:01] 050-x: plan"),
        (Event("050-x", "tasks", "3/6"), "[12:00:01] 050-x: implement 3/6 tasks"),
        (Event("050-x", "completed"), "[12:00:01] 050-x: completed"),
        (
            Event("050-x", "failed", "timed out after 45m00s"),
            "[12:00:01] 050-x: failed: timed out after 45m00s",
        ),
        (Event("050-x", "blocked", "a, b"), "[12:00:01] 050-x: blocked by a, b"),
        (Event("050-x", "interrupted"), "[12:00:01] 050-x: interrupted"),
    ],
)
def test_one_line_per_event(event: Event, line: str) -> None:
    assert event_line(event, NOON) == line


def test_lines_are_printed_and_flushed_with_the_count_of_completed_specs() -> None:
    out = io.StringIO()
    report = Lines(out)
    state = run(Path("/r"), "r", spec("a", SpecStatus.COMPLETED), spec("b"))
    report(state, Event("a", "completed"))
    report.stopping(state, 10.0, 2)
    report.close()
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("] [1/2] a: completed")
    assert lines[1].endswith(
        "] stopping: waiting up to 10 s for 2 agents (Ctrl-C again to kill them now)"
    )
    assert "\x1b" not in out.getvalue()
