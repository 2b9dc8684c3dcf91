"""A failed spec's worktree switched off its branch by the user: ``retry`` refuses it up
front, in one line naming the run, the spec and what to do, before any agent runs
(``dagspec.off_branch``); a branch held by another checkout is named with what to do."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import worktree
from dagspec.worktree import WorktreeError
from tests.conftest import git
from tests.engine_support import Project, dag_text

pytest_plugins = ("tests.engine_fixtures",)

RunCli = Callable[..., int]


def _switch_mine(a: Path) -> str:
    git(a, "switch", "-q", "-c", "mine")
    return "is on the branch mine, not its branch dag/r/a, and mine is not one autospec made"


def _detach_behind(a: Path) -> str:
    (a / "more.txt").write_text("more\n")
    git(a, "add", "more.txt")
    git(a, "commit", "-q", "-m", "more")
    behind = git(a, "rev-parse", "HEAD~1").strip()
    git(a, "checkout", "-q", "--detach", behind)
    return f"is detached at {behind[:12]}, which does not hold its branch dag/r/a"


@pytest.mark.slow
@pytest.mark.parametrize("move", [_switch_mine, _detach_behind], ids=["switch-c", "detached"])
def test_retry_refuses_a_worktree_off_its_branch_before_any_agent(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    move: Callable[[Path], str],
) -> None:
    project.write_dag(dag_text("a"))
    project.fake.setenv("FAIL_AT", "implement")
    assert run_cli("run", "dag.yaml", "--run-id", "r") == 1
    a = project.worktree("a")
    said = move(a)
    starts = len(project.starts())
    capsys.readouterr()
    assert run_cli("retry", "r", "a") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"dag: error: the worktree {a} of spec a of run r {said}")
    assert f"switch it back (`git -C {a} switch dag/r/a`" in err
    assert err.rstrip().endswith("then `dag retry r a`")
    assert len(project.starts()) == starts  # no agent ran
    assert project.statuses() == {"a": "failed"}


def test_a_branch_checked_out_elsewhere_is_named_with_what_to_do(
    git_repo: Path, tmp_path: Path
) -> None:
    path = tmp_path / "wts" / "r" / "a"
    head = git(git_repo, "rev-parse", "HEAD").strip()
    worktree.create_worktree(git_repo, path, branch="dag/r/a", start=head)
    shutil.rmtree(path)
    git(git_repo, "worktree", "prune")
    other = tmp_path / "other"
    git(git_repo, "worktree", "add", "-q", str(other), "dag/r/a")
    with pytest.raises(WorktreeError) as raised:
        worktree.reopen_worktree(git_repo, path, branch="dag/r/a")
    assert str(raised.value) == (
        f"branch dag/r/a is checked out elsewhere, in {other.resolve()}: switch that checkout "
        f"off it (`git -C {other.resolve()} switch --detach` keeps its files and commits), "
        "then retry the spec"
    )
