"""What a run prints as it goes, when its output is not a terminal."""

from __future__ import annotations

import io
from datetime import datetime

import pytest

from dagspec.lifecycle import Event
from dagspec.progress import Lines, event_line

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


def test_lines_are_printed_and_flushed() -> None:
    out = io.StringIO()
    report = Lines(out)
    report(None, Event("a", "completed"))  # type: ignore[arg-type]
    report.close()
    assert out.getvalue().endswith("] a: completed\n")
