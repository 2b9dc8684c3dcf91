"""``execution.setup`` is part of the attempt (issue 17): the spec's timeout and the stall
watchdog cover it as they cover the agent. A real hanging command, trio's autojump clock."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import trio
import trio.testing

from tests.conftest import git
from tests.engine_support import pid_alive
from tests.test_policy import statuses
from tests.test_stall_and_limits import Scripted, _drive

# silent forever, and says which process it is in a file of its worktree (not in the log)
HANG = "echo $$ >> ../setup-pids; exec sleep 1000"


def _repo(tmp_path: Path) -> Path:
    """The workspace's worktrees are directories of a git repository: setup keeps its
    done-marker in the git directory."""
    git(tmp_path, "init", "-q")
    return tmp_path


def _setup(command: str) -> str:
    return f"execution:\n  setup: {command!r}"


def _all_ended(tmp_path: Path) -> list[int]:
    """The setup processes still alive, once each had a moment to be reaped (a kill is
    SIGKILL; the thread that waits for it reaps it)."""
    pids_file = tmp_path / "wt" / "setup-pids"
    pids = [int(p) for p in pids_file.read_text().split()] if pids_file.exists() else []
    deadline = time.monotonic() + 10
    while [p for p in pids if pid_alive(p)] and time.monotonic() < deadline:
        time.sleep(0.01)
    return [p for p in pids if pid_alive(p)]


async def test_a_setup_without_output_is_stalled_like_an_agent(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    agents, events = Scripted(), []
    final = await _drive(
        _repo(tmp_path), ["a", "b"], agents, events, extra=_setup(HANG), stall_timeout=60.0
    )
    assert statuses(final) == {"a": "failed", "b": "failed"}
    assert final.spec("a").error == "no progress for 2 min (in execution.setup)"
    assert final.spec("a").attempts == 2  # restarted once, at its stage, setup again
    log = await trio.Path(final.spec("a").log or "").read_text()
    assert log.count("\n=== dagspec: execution.setup ended: no progress for 2 min\n") == 2
    kinds = [e.kind.value for e in events if e.spec_id == "a"]
    # (the setup's own header in the log is progress: on this clock it may come after a look)
    assert kinds[0] == "started" and kinds[-2:] == ["stalled", "failed"]
    assert kinds.count("restarting") == 1 and kinds.count("started") == 2
    assert agents.spans == {}  # no agent ever started
    assert _all_ended(tmp_path) == []


async def test_the_specs_timeout_covers_its_setup(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    agents, events = Scripted(), []
    final = await _drive(
        _repo(tmp_path), ["a"], agents, events, extra=_setup(HANG), timeouts={"a": 300.0}
    )
    assert statuses(final) == {"a": "failed"}
    assert final.spec("a").error == "timed out after 5m00s (in execution.setup)"
    log = await trio.Path(final.spec("a").log or "").read_text()
    # (the setup's thread, abandoned, may write its header after: on this clock it had no time)
    assert "\n=== dagspec: execution.setup ended: timed out after 5m00s\n" in log
    assert agents.spans == {}
    assert _all_ended(tmp_path) == []


@pytest.mark.slow
async def test_an_interrupt_during_setup_ends_its_process_group_and_calls_the_attempt_off(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A stop during setup: its process group is ended, and the spec, whose agent never
    started, is as it was before (pending, no attempt counted), its worktree recorded."""
    autojump_clock.autojump_threshold = 5.0  # real seconds: the signal comes far sooner
    agents, events = Scripted(), []
    pids = tmp_path / "wt" / "setup-pids"

    async def interrupt_once_set_up() -> None:
        deadline = time.monotonic() + 60  # real seconds: the setup runs on the wall clock
        while not pids.exists() or not pids.read_text():
            assert time.monotonic() < deadline, "the setup never started"
            await trio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(interrupt_once_set_up)
        final = await _drive(_repo(tmp_path), ["a"], agents, events, extra=_setup(HANG))
    assert statuses(final) == {"a": "pending"}
    a = final.spec("a")
    assert (a.attempts, a.started_at, a.error, a.worktree) == (
        0,
        None,
        None,
        str(pids.parent / "a"),
    )
    assert [e.kind.value for e in events if e.spec_id == "a"] == ["started", "called off"]
    assert agents.spans == {}
    assert _all_ended(tmp_path) == []
