"""Commits on no branch, reachable only from a spec's worktree's detached ``HEAD``: no path
that removes or takes up the worktree drops them (``dagspec.adrift``)."""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import adrift, removal
from dagspec.errors import DagspecError
from dagspec.lifecycle import SpecStatus
from tests.conftest import git
from tests.run_states import branch, run, save, spec
from tests.test_cleanup import add_worktree, merge

Cli = Callable[..., int]


def commit_detached(path: Path, subject: str) -> str:
    """``git checkout --detach`` in ``path``, then a commit there: on no branch."""
    git(path, "checkout", "-q", "--detach")
    (path / "mine.txt").write_text(f"{subject}\n")
    git(path, "add", "mine.txt")
    git(path, "commit", "-q", "-m", subject)
    return git(path, "rev-parse", "HEAD").strip()


@pytest.mark.parametrize("status", [SpecStatus.COMPLETED, SpecStatus.FAILED])
def test_cleanup_keeps_a_worktree_whose_detached_head_holds_a_commit(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], status: SpecStatus
) -> None:
    """A commit on a detached HEAD, no operation under way: `dag cleanup`, even --force and
    --forget, removed the worktree (it looked only at uncommitted files), and the commit
    with it. It is kept, the commit named with the command that keeps it."""
    path = add_worktree(git_repo, "r", "a", commit="a work")
    if status is SpecStatus.COMPLETED:
        merge(git_repo, branch("r", "a"))
    mine = commit_detached(path, "my fix")
    save(run(git_repo, "r", spec("a", status, worktree=str(path), merged=False)))
    kept = (
        f"kept wt-a: its detached HEAD holds 1 commit on no branch ({mine[:7]} my fix): "
        f"`git branch NAME {mine[:7]}` keeps it, then `dag cleanup r`"
    )
    for flags in ((), ("--force",)):
        assert run_cli("cleanup", "r", *flags) == 1
        captured = capsys.readouterr()
        assert kept in captured.out, captured.out
        assert captured.err.startswith("dag: error: kept 1 worktree"), captured.err
        assert git(path, "rev-parse", "HEAD").strip() == mine
    assert run_cli("cleanup", "r", "--forget", "--force") == 1
    err = capsys.readouterr().err
    assert f"its worktree {path} stays: its detached HEAD holds 1 commit" in err, err
    assert err.count("\n") == 1 and err.startswith("dag: error: run r is not forgotten")
    assert git(path, "rev-parse", "HEAD").strip() == mine

    git(git_repo, "branch", "kept", mine[:7])  # as told: then cleanup goes on
    failed = status is SpecStatus.FAILED  # its branch stays: the base lacks its commit
    assert run_cli("cleanup", "r", "--force") == int(failed), capsys.readouterr()
    assert not path.exists()
    assert git(git_repo, "rev-parse", "kept").strip() == mine


def test_a_detached_head_on_a_branch_s_commit_is_removed_as_before(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Detached, but at a commit a branch or tag has: nothing on no branch, nothing kept."""
    path = add_worktree(git_repo, "r", "a", commit="a work")
    merge(git_repo, branch("r", "a"))
    git(path, "checkout", "-q", "--detach")
    save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED, worktree=str(path), merged=True)))
    assert run_cli("cleanup", "r") == 0, capsys.readouterr()
    assert not path.exists()


def test_the_end_of_a_merged_run_names_the_commits_a_kept_worktree_holds(
    git_repo: Path,
) -> None:
    """The end of a run (and `dag merge --cleanup`) kept a detached worktree, being on no
    branch of the spec's, but said nothing of it: the commit there is named, and how to
    keep it, even where only work git status misses is told (``only_unseen``)."""
    path = add_worktree(git_repo, "r", "a", commit="a work")
    merge(git_repo, branch("r", "a"))
    mine = commit_detached(path, "my fix")
    state = run(git_repo, "r", spec("a", SpecStatus.COMPLETED, worktree=str(path), merged=True))
    cleaned = removal.remove_merged_worktrees(git_repo, state)
    assert cleaned.run.spec("a").worktree == str(path)
    said = removal.render_cleanup(state, cleaned, only_unseen=True)
    assert said == (
        f"kept worktree {path} (a): its detached HEAD holds 1 commit on no branch "
        f"({mine[:7]} my fix): `git branch NAME {mine[:7]}` keeps it; then "
        f"`git worktree remove --force {path}`\n"
    )
    assert git(path, "rev-parse", "HEAD").strip() == mine


def backticked(line: str) -> list[list[str]]:
    """The commands a line of advice names between backticks, split as a shell would."""
    return [shlex.split(command) for command in line.split("`")[1::2]]


@pytest.mark.parametrize("deleted", [False, True], ids=["present", "directory-deleted"])
def test_the_end_of_a_run_keeps_a_worktree_whose_branch_was_deleted_under_it(
    git_repo: Path, deleted: bool
) -> None:
    """`git update-ref -d` of a merged spec's branch, a commit of the user's on it (its
    directory deleted too, or not): the end of a run and `dag merge --cleanup` removed the
    worktree, or advised `git worktree remove --force`, and with it its HEAD and reflog,
    the last names of that commit. It stays, with the command that brings the branch back;
    followed as printed, the commit is on the branch and the worktree gone."""
    path = add_worktree(git_repo, "r", "a", commit="a work")
    merge(git_repo, branch("r", "a"))
    (path / "more.txt").write_text("more\n")
    git(path, "add", "more.txt")
    git(path, "commit", "-q", "-m", "my more")
    mine = git(path, "rev-parse", "HEAD").strip()
    git(git_repo, "update-ref", "-d", f"refs/heads/{branch('r', 'a')}")
    if deleted:
        shutil.rmtree(path)
    state = run(git_repo, "r", spec("a", SpecStatus.COMPLETED, worktree=str(path), merged=True))
    cleaned = removal.remove_merged_worktrees(git_repo, state)
    assert cleaned.run.spec("a").worktree == str(path)
    said = removal.render_cleanup(state, cleaned, only_unseen=True)
    assert said.startswith(
        f"kept worktree {path} (a): branch dag/r/a of spec a of run r was deleted while its "
        f"worktree {path} was on it, so the spec's commits are on no branch; "
    ), said
    assert said.count("\n") == 1 and f"`git branch dag/r/a {mine[:12]}` brings it back" in said
    assert said.endswith(f"; then `git worktree remove {path}`\n"), said
    assert f"{path} " in git(git_repo, "worktree", "list")  # its registration, and reflog, stay

    for command in backticked(said):  # as told
        assert command[0] == "git"
        git(git_repo, *command[1:])
    assert git(git_repo, "rev-parse", branch("r", "a")).strip() == mine
    assert f"{path} " not in git(git_repo, "worktree", "list") and not path.exists()


def test_a_deleted_worktree_is_forgotten_before_a_fresh_start_only_when_it_names_nothing(
    git_repo: Path,
) -> None:
    """Before a spec starts afresh, git's registration of its deleted worktree goes (`git
    worktree add` refuses "a missing but already registered worktree"), unless its detached
    HEAD holds a commit on no branch: then it is named, with the commands that keep it,
    which followed as printed leave nothing to forget."""
    path = add_worktree(git_repo, "r", "a", commit="a work")
    mine = commit_detached(path, "my fix")
    shutil.rmtree(path)
    with pytest.raises(DagspecError) as raised:
        adrift.forget_deleted(git_repo, path, branch("r", "a"))
    said = str(raised.value)
    assert f"`git branch NAME {mine[:7]}` keeps it, then `git worktree remove {path}`" in said, said
    assert f"{path}\n" in git(git_repo, "worktree", "list", "--porcelain")
    for command in backticked(said):  # as told
        git(git_repo, *[{"NAME": "mine"}.get(word, word) for word in command[1:]])
    adrift.forget_deleted(git_repo, path, branch("r", "a"))
    assert git(git_repo, "rev-parse", "mine").strip() == mine

    again = add_worktree(git_repo, "r", "b")  # on a branch that exists: it goes
    shutil.rmtree(again)
    adrift.forget_deleted(git_repo, again, branch("r", "b"))
    assert f"{again}\n" not in git(git_repo, "worktree", "list", "--porcelain")


def test_cleanup_keeps_the_branch_of_a_worktree_git_would_not_remove(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed spec's worktree, detached at its branch's commit and locked (`git worktree
    lock`): git refused to remove it, and its branch, holding nothing of its own, was
    deleted all the same, so the worktree that stayed had no branch to go back to."""
    path = add_worktree(git_repo, "r", "a")
    git(path, "checkout", "-q", "--detach")
    git(git_repo, "worktree", "lock", str(path))
    save(run(git_repo, "r", spec("a", SpecStatus.FAILED, worktree=str(path))))
    assert run_cli("cleanup", "r") == 1
    out = capsys.readouterr().out
    assert f"kept dag/r/a: the branch of the worktree {path}, which stays\n" in out, out
    assert git(git_repo, "rev-parse", "--verify", "-q", "refs/heads/dag/r/a").strip()
    assert path.is_dir()

    git(git_repo, "worktree", "unlock", str(path))
    assert run_cli("cleanup", "r") == 0, capsys.readouterr()
    assert not path.exists()
