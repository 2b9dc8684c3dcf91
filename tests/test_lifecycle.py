"""The lifecycle's transitions, pure: a record before, the facts, the record and events after."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from dagspec import lifecycle
from dagspec.lifecycle import RunState, RunStatus, SpecState, SpecStatus
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


DEPS = {"a": (), "b": ("a",)}


def _exited(**fields: object) -> RunState:
    """Run r with a running (its agent just exited 0, ``agent_exited``) and b pending."""
    a = spec("a", SpecStatus.RUNNING, attempts=1, stage="implement", started_at=at(0), **fields)
    started = run(Path("/repo"), "r", a, spec("b", depends_on=("a",)), status=RunStatus.RUNNING)
    exited, events = lifecycle.agent_exited(started, "a")
    assert events == ()
    return exited


@pytest.mark.parametrize(
    ("end", "status", "exit_code", "agent_done"),
    [
        ("conflict", SpecStatus.FAILED, 0, True),  # its work conflicts with the joined work
        ("complete", SpecStatus.COMPLETED, 0, False),
        ("interrupt", SpecStatus.INTERRUPTED, 0, True),
        ("driver killed", SpecStatus.INTERRUPTED, 0, True),
    ],
)
def test_an_attempt_ended_after_its_agent_exited_0_keeps_that_fact_until_its_work_joins(
    end: str, status: SpecStatus, exit_code: int, agent_done: bool
) -> None:
    exited = _exited(agent_pid=4242)
    assert (exited.spec("a").exit_code, exited.spec("a").agent_pid) == (0, None)
    if end == "conflict":
        ended, _ = lifecycle.fail(exited, DEPS, "a", now=at(9), reason="conflicts")
        assert ended.spec("b").status is SpecStatus.BLOCKED
    elif end == "complete":
        ended, _ = lifecycle.complete(exited, "a", now=at(9), spec_dir="specs/001-a", tasks=None)
    elif end == "interrupt":
        ended, _ = lifecycle.interrupt(exited, "a", now=at(9))
    else:
        ended = lifecycle.settle_stale(exited, driver_alive=False)
    a = ended.spec("a")
    assert (a.status, a.exit_code, a.agent_done) == (status, exit_code, agent_done)
    again = lifecycle.prepare_retry(ended, ["a"], ended.options)
    assert again.spec("a").agent_done is agent_done  # what the next attempt goes on from


@pytest.mark.parametrize(("agent_done", "exit_code"), [(True, 0), (False, None)])
def test_an_attempt_starts_with_its_agent_done_or_to_run(
    agent_done: bool, exit_code: int | None
) -> None:
    """An attempt that only joins the work of an agent that finished earlier starts with
    exit code 0 and says so; any other attempt runs its agent: exit code unknown yet."""
    failed, _ = lifecycle.fail(_exited(), DEPS, "a", now=at(9), reason="conflicts")
    pending = lifecycle.prepare_retry(failed, ["a"], failed.options)
    started, events = lifecycle.start(
        pending, "a", now=at(20), spec_dir=None, stage="implement", agent_done=agent_done, **MADE
    )
    a = started.spec("a")
    assert (a.status, a.attempts, a.exit_code, a.agent_done) == (
        SpecStatus.RUNNING, 2, exit_code, agent_done
    )  # fmt: skip
    assert events[0].detail == (
        "attempt 2, its agent done: joining its work" if agent_done else "attempt 2"
    )
