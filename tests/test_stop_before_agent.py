"""A stop before a spec's agent starts: the worktrees still queued for their slots are not
made, the one being made is finished and recorded, and each such spec stays as it was
(pending, no attempt counted). Real git held at a gate, real signals, the stand-in autospec."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.engine_support import Project, dag_text
from tests.git_gates import CommandGate
from tests.run_states import Output, start_dag
from tests.test_cleanup import branches, worktrees

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow


def _agents(project: Project) -> list[str]:
    """The specs (by description) whose agent the fake saw start."""
    return [e["argv"][-1] for e in project.fake.events("start") if e["argv"][:1] == ["run"]]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_makes_no_worktree_queued_for_a_slot_and_records_the_one_being_made(
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: Callable[..., int],
    sig: int,
) -> None:
    """Three slots, three specs: the first ``git worktree add`` is held, the other two wait
    their turn at the drive's worktrees lock. A stop now does not wait for them to be made one
    after another: they are never made; the one being made is finished and recorded. No
    agent started, so no spec is interrupted: each stays pending, no attempt counted, and
    resume goes on with the recorded worktree."""
    gate = CommandGate(tmp_path / "gate", "worktree add")
    monkeypatch.setenv("PATH", f"{gate.path}{os.pathsep}{os.environ['PATH']}")
    project.write_dag(dag_text("a", "b", "c"))
    args = ("run", "dag.yaml", "--run-id", "r", "--parallel", "--max-parallel", "3")
    with start_dag(project.repo, *args) as driver:
        out = Output(driver)
        try:
            gate.wait()
            driver.send_signal(sig)
            out.wait_for(b"stopping: no agent is running")
        finally:
            gate.release()
        assert out.finish() == 130, out.data
    assert b"started" not in out.data and b"interrupted" not in out.data.split(b"report")[0]
    run = project.state()
    assert {s.id: (s.status.value, s.attempts) for s in run.specs} == {
        spec_id: ("pending", 0) for spec_id in ("a", "b", "c")
    }
    made = [s for s in run.specs if s.worktree is not None]
    assert len(made) == 1 and made[0].branch is not None
    assert worktrees(project.repo) == sorted([str(project.repo), str(made[0].worktree)])
    assert branches(project.repo) == sorted(["main", made[0].branch])
    assert _agents(project) == []

    assert run_cli("resume", "r") == 0
    again = project.state()
    assert {s.id: (s.status.value, s.attempts) for s in again.specs} == {
        spec_id: ("completed", 1) for spec_id in ("a", "b", "c")
    }
    assert sorted(_agents(project)) == ["Build a", "Build b", "Build c"]
