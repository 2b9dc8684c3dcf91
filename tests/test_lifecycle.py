"""The lifecycle's transitions, pure: a record before, the facts, the record and events after."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from dagspec import lifecycle
from dagspec.lifecycle import RunStatus, SpecState, SpecStatus
from tests.run_states import at, run, spec

MADE = {"worktree": "/wt/r/a", "branch": "dag/r/a", "log": "/logs/a.log"}

NEW = spec("a")
RESUMED = spec(  # interrupted at plan by an earlier drive, then made pending by resume
    "a",
    stage="plan",
    attempts=2,
    earlier_seconds=30.0,
    started_at=at(100),
    finished_at=at(160),
    spec_dir="specs/001-a",
    worktree="/wt/r/a",
    branch="dag/r/a",
    log="/logs/a.log",
)


@pytest.mark.parametrize(
    ("before", "started", "spec_dir", "events"),
    [
        (NEW, True, "specs/001-a", ["called off"]),  # stopped in its execution.copy or setup
        (NEW, False, None, []),  # its worktree finished being made after the stop
        (RESUMED, True, "specs/001-a", ["called off"]),
        (RESUMED, False, "specs/001-a", []),
        (RESUMED, True, None, ["called off"]),  # its unfinished spec directory was removed
    ],
)
def test_an_attempt_called_off_before_its_agent_leaves_the_spec_as_it_was_where_it_is_now(
    before: SpecState, started: bool, spec_dir: str | None, events: list[str]
) -> None:
    """No attempt counted; its times, stage and error as before the attempt; only where its
    worktree, branch, spec directory and log are now, so that nothing made for it is left
    unrecorded."""
    other = spec("b", SpecStatus.RUNNING, attempts=1, started_at=at(50))
    drive = run(Path("/repo"), "r", before, other, status=RunStatus.RUNNING)
    if started:
        drive, _ = lifecycle.start(
            drive, "a", now=at(200), spec_dir=spec_dir, stage="specify", **MADE
        )
        assert drive.spec("a").attempts == before.attempts + 1
    after, happened = lifecycle.call_off(drive, "a", before=before, spec_dir=spec_dir, **MADE)
    assert after.spec("a") == attrs.evolve(before, spec_dir=spec_dir, **MADE)
    assert after.spec("a").status is SpecStatus.PENDING
    assert [e.kind.value for e in happened] == events
    assert after.spec("b") == other
