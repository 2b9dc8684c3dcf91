"""``dag cleanup`` of a run whose driver was killed: the agents it left running are ended
first, and a worktree it made but did not record yet (``git worktree add`` done, the state
not saved: the one prepared ahead, ``dagspec.ahead``) is the run's, removed like the others.
Real git, the stand-in autospec, real SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec.lifecycle import RunStatus, SpecStatus
from tests.conftest import git
from tests.engine_support import Project, dag_text, pid_alive, start_dag
from tests.fake_autospec_fixture import wait_for
from tests.run_states import run, save, spec
from tests.test_cleanup import add_worktree, branches, worktrees

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow

Cli = Callable[..., int]


def forgotten_run(repo: Path) -> tuple[Path, Path]:
    """Run ``r`` of specs a (recorded, merged) and b: b's worktree is on ``dag/r/b`` but
    not in the state, as a driver killed before saving it leaves it."""
    a = add_worktree(repo, "r", "a")
    b = add_worktree(repo, "r", "b")
    a_spec = spec("a", SpecStatus.COMPLETED, worktree=str(a), merged=True)
    save(run(repo, "r", a_spec, spec("b"), status=RunStatus.INTERRUPTED))
    return a, b


def test_an_unrecorded_worktree_of_the_run_is_removed_with_its_branch(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = forgotten_run(git_repo)
    assert run_cli("cleanup", "r") == 0
    out = capsys.readouterr().out
    assert f"removed {a}\n" in out and f"removed {b}\n" in out
    assert "deleted branch dag/r/b\n" in out
    assert worktrees(git_repo) == [str(git_repo)]
    assert branches(git_repo) == ["main"]


def test_an_unrecorded_worktree_holding_work_is_kept_unless_forced(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    _, b = forgotten_run(git_repo)
    (b / "notes.txt").write_text("mine\n")
    assert run_cli("cleanup", "r") == 1
    captured = capsys.readouterr()
    assert f"kept {b}: 1 uncommitted file (notes.txt), not recorded in the run\n" in captured.out
    assert f"kept dag/r/b: checked out in {b}\n" in captured.out
    assert "`dag cleanup r --force` removes the worktrees too" in captured.err
    assert (b / "notes.txt").read_text() == "mine\n"
    assert run_cli("cleanup", "r", "--force") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"--force: this work will be lost:\n  {b.name}: 1 uncommitted file\n")
    assert worktrees(git_repo) == [str(git_repo)] and branches(git_repo) == ["main"]


def test_a_commit_on_an_unrecorded_worktree_s_branch_is_kept_even_when_forced(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    forgotten_run(git_repo)
    c = add_worktree(git_repo, "r", "c", commit="c work")
    save(run(git_repo, "r", spec("a"), spec("b"), spec("c"), status=RunStatus.INTERRUPTED))
    assert run_cli("cleanup", "r") == 1
    captured = capsys.readouterr()
    assert f"kept {c}: 1 commit not on main, not recorded" in captured.out
    assert captured.err.endswith(  # not "and loses that work": the commit is its branch's
        "`dag cleanup r --force` removes the worktrees too; their commits stay on their branches\n"
    ), captured.err
    assert "dag/r/c" in branches(git_repo)
    # --force is for uncommitted files: the worktree goes, the commit stays on its branch
    assert run_cli("cleanup", "r", "--force") == 1
    assert "kept dag/r/c: 1 commit not on main\n" in capsys.readouterr().out
    assert worktrees(git_repo) == [str(git_repo)] and branches(git_repo) == ["dag/r/c", "main"]


def test_cleanup_after_a_killed_driver_ends_its_agents_and_removes_everything(
    project: Project, run_cli: Cli
) -> None:
    project.fake.control([{"match": "^Build a$", "HANG_AT": "plan"}])
    project.write_dag(dag_text("a", "b"))
    args = ("run", "dag.yaml", "--run-id", "r", "--parallel", "--max-parallel", "1")
    driver = start_dag(project.repo, *args)

    def b_prepared_ahead() -> bool:
        return bool(project.fake.events("hang")) and "dag/r/b" in git(
            project.repo, "worktree", "list", "--porcelain"
        )

    wait_for(b_prepared_ahead, timeout=30, what="a hanging and b's worktree made ahead")
    driver.send_signal(signal.SIGKILL)
    driver.communicate(timeout=30)
    agent = project.fake.events("hang")[0]["pid"]
    try:
        assert pid_alive(agent)
        assert project.state().spec("b").worktree is None  # made, but not recorded
        assert run_cli("cleanup", "r") == 1  # a holds what its agent wrote
        assert not pid_alive(agent)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(agent, signal.SIGKILL)  # the fake leads its own group
    assert "dag/r/b" not in git(project.repo, "worktree", "list")
    assert run_cli("cleanup", "r", "--force") == 0
    assert worktrees(project.repo) == [str(project.repo)]
    assert branches(project.repo) == ["main"]


def _stopped_once_made_ahead(project: Project, run_id: str, hangs: int, sig: int) -> int:
    """Start a run of a, b, c, d with two slots, send ``sig`` once ``hangs`` agents hang and
    c's and d's worktrees are made; the driver's exit code."""
    args = ("run", "dag.yaml", "--parallel", "--max-parallel", "2", "--run-id", run_id)
    driver = start_dag(project.repo, *args)

    def made() -> bool:
        listing = ["git", "worktree", "list", "--porcelain"]  # fails while one is half-made
        done = subprocess.run(listing, cwd=project.repo, capture_output=True, text=True)
        listed = done.stdout if done.returncode == 0 else ""
        ahead = all(f"dag/{run_id}/{spec_id}\n" in listed for spec_id in ("c", "d"))
        return len(project.fake.events("hang")) == hangs and ahead

    try:
        wait_for(made, timeout=30, what=f"{hangs} agents hanging, c and d made ahead")
    finally:
        driver.send_signal(sig)
        driver.communicate(timeout=60)
    return driver.returncode


@pytest.mark.slow
def test_worktrees_made_ahead_for_each_slot_are_removed_when_the_run_stops_or_is_killed(
    project: Project, run_cli: Cli
) -> None:
    """Issue 16: with two slots busy, c's and d's worktrees are made ahead. SIGINT: the
    drive removes both, they stay pending with nothing recorded. SIGKILL in the same place
    (a second run): cleanup removes what the killed driver made ahead."""
    project.fake.control([{"match": "^Build [ab]$", "HANG_AT": "plan"}])
    project.write_dag(dag_text("a", "b", "c", "d"))
    assert _stopped_once_made_ahead(project, "r", 2, signal.SIGINT) == 130
    statuses = {"a": "interrupted", "b": "interrupted", "c": "pending", "d": "pending"}
    assert project.statuses() == statuses
    for spec_id in ("c", "d"):
        assert project.state().spec(spec_id).attempts == 0
        assert not project.worktree(spec_id).exists()
    assert branches(project.repo) == ["dag/r/a", "dag/r/b", "main"]
    assert run_cli("cleanup", "r", "--force") == 0

    assert _stopped_once_made_ahead(project, "r2", 4, signal.SIGKILL) == -signal.SIGKILL
    assert project.state("r2").spec("c").worktree is None  # made, not recorded
    assert run_cli("cleanup", "r2", "--force") == 0
    assert worktrees(project.repo) == [str(project.repo)]
    assert branches(project.repo) == ["main"]
