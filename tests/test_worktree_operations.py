"""A spec's worktree that someone left in the middle of an operation of git's (a rebase
stopped on a conflict: HEAD detached): ``dag retry`` and ``dag resume`` refuse it in one
line, naming the operation and how to end it, instead of starting the agent inside it,
whose commits would go on no branch."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git
from tests.engine_support import Project, dag_text

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow  # whole runs of the fake autospec
RunCli = Callable[..., int]


def _stop_a_rebase(repo: Path, worktree: Path) -> None:
    """In the spec's worktree, ``git rebase side`` stopped by a conflict in ``x.txt``."""
    git(repo, "branch", "side", "main")
    git(repo, "checkout", "-q", "side")
    (repo / "x.txt").write_text("side\n")
    git(repo, "add", "x.txt")
    git(repo, "commit", "-qm", "side")
    git(repo, "checkout", "-q", "main")
    (worktree / "x.txt").write_text("mine\n")
    git(worktree, "add", "-A")  # with what the failed agent left
    git(worktree, "commit", "-qm", "mine")
    stopped = subprocess.run(["git", "rebase", "side"], cwd=worktree, capture_output=True)
    assert stopped.returncode != 0 and b"CONFLICT" in stopped.stdout, stopped


def test_retry_and_resume_refuse_a_worktree_in_the_middle_of_a_rebase(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    project.fake.setenv("FAIL_AT", "implement:T002")
    project.fake.setenv("COMMIT", "always")
    assert run_cli("run", project.write_dag(dag_text("a")), "--run-id", "r") == 1
    worktree = Path(project.state().spec("a").worktree or "")
    _stop_a_rebase(project.repo, worktree)
    capsys.readouterr()
    for command in ("retry r a", "resume r"):
        assert run_cli(*command.split()) == 1
        out, err = capsys.readouterr()
        assert err == (
            f"dag: error: the worktree {worktree} of spec a of run r is in the middle of a "
            "rebase (`git rebase --continue` or `--abort` there), and its agent would work "
            f"inside it: end it, then `dag {command}`\n"
        ), err
        assert out == ""
    assert project.state().spec("a").attempts == 1  # no agent started

    git(worktree, "rebase", "--abort")
    project.fake.setenv("FAIL_AT", "never")
    assert run_cli("retry", "r", "a") == 0, capsys.readouterr()


def test_a_merge_left_where_the_agent_would_work_is_refused_too(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only a spec whose agent is done may take up a merge under way (the join conflict
    resolved by hand and staged, ``test_rejoin``): its commit concludes the merge. One whose
    agent would run again would run it inside the merge."""
    project.fake.setenv("FAIL_AT", "implement:T002")
    project.fake.setenv("COMMIT", "always")
    assert run_cli("run", project.write_dag(dag_text("a")), "--run-id", "r") == 1
    worktree = Path(project.state().spec("a").worktree or "")
    _stop_a_rebase(project.repo, worktree)
    git(worktree, "rebase", "--abort")
    stopped = subprocess.run(["git", "merge", "side"], cwd=worktree, capture_output=True)
    assert stopped.returncode != 0 and b"CONFLICT" in stopped.stdout, stopped
    capsys.readouterr()
    assert run_cli("retry", "r", "a") == 1
    assert (
        "is in the middle of a merge (commit it, or `git merge --abort` there), and its "
        "agent would work inside it" in capsys.readouterr().err
    )
    assert project.state().spec("a").attempts == 1
