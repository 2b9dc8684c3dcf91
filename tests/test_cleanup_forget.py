"""``dag cleanup RUN_ID --forget``: the run's own record goes too (state file, logs), so
``dag list`` no longer shows it. The user's work never goes with it: branches with work not
on the base branch stay, and a worktree that would stay with no run to know it refuses the
forgetting, before anything is removed. Real git in temporary repositories; the run of
``test_cleanup``'s ``Setup``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagspec.lifecycle import RunStatus, SpecStatus
from dagspec.state import load
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.run_states import run, save, spec
from tests.test_cleanup import Cli, Setup, add_worktree, branches, driven, worktrees
from tests.test_cleanup import setup as setup  # the fixture, by name

FORGOT = "forgot run r: its state file and logs are removed, `dag list` no longer shows it"


def recorded(paths: RunPaths) -> dict[str, bool]:
    """Which of the run's own files are there."""
    return {"state": paths.state_file.exists(), "logs": paths.log_file("b").exists()}


def with_logs(setup: Setup) -> RunPaths:
    paths = setup.state
    paths.log_file("b").parent.mkdir(parents=True)
    paths.log_file("b").write_text("b's output\n")
    return paths


@pytest.mark.slow
def test_a_worktree_with_uncommitted_work_refuses_it_and_nothing_is_removed(
    setup: Setup, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = with_logs(setup)
    before = (worktrees(setup.repo), branches(setup.repo), paths.state_file.read_bytes())
    assert run_cli("cleanup", "r", "--forget") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"dag: error: run r is not forgotten (nothing was removed): its worktree {setup.b} "
        "holds 2 uncommitted files: commit that work there to keep it on branch dag/r/b, "
        "which stays, or add --force to lose it\n"
    )
    assert (worktrees(setup.repo), branches(setup.repo), paths.state_file.read_bytes()) == before
    assert recorded(paths) == {"state": True, "logs": True}


@pytest.mark.slow
def test_once_committed_the_run_is_forgotten_and_its_branches_with_work_stay(
    setup: Setup, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = with_logs(setup)
    git(setup.b, "add", "-A")
    git(setup.b, "commit", "-q", "-m", "kept by the user")
    assert run_cli("cleanup", "r", "--forget") == 0
    assert capsys.readouterr().out == (
        f"removed {setup.a}\n"
        f"removed {setup.b}\n"
        f"removed {setup.c}\n"
        "deleted branch dag/r/a\n"
        "deleted branch dag/r/c\n"
        "deleted branch dag/r/_merged\n"
        "kept dag/r/b: 2 commits not on main\n"
        f"{FORGOT}; the branches kept above stay: `git merge BRANCH` takes one's work, "
        "`git branch -D BRANCH` drops it\n"
    )
    assert recorded(paths) == {"state": False, "logs": False}
    assert not paths.run_dir.exists()
    assert branches(setup.repo) == ["dag/other/z", "dag/r/b", "feature", "main"]
    assert worktrees(setup.repo) == sorted(str(p) for p in (setup.repo, setup.z, setup.elsewhere))
    assert run_cli("list", "--json") == 0
    assert capsys.readouterr().out == "[]\n"
    assert run_cli("cleanup", "r", "--forget") == 1
    assert "no run 'r' in" in capsys.readouterr().err


@pytest.mark.slow
def test_force_loses_the_work_it_names_then_forgets_the_run(
    setup: Setup, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = with_logs(setup)
    assert run_cli("cleanup", "r", "--forget", "--force") == 0
    out = capsys.readouterr().out
    assert out.startswith("--force: this work will be lost:\n  wt-b: 2 uncommitted files\n")
    # --force loses the files it names, never the commits of a branch main lacks
    assert out.endswith(
        "deleted branch dag/r/_merged\nkept dag/r/b: 1 commit not on main\n"
        f"{FORGOT}; the branches kept above stay: `git merge BRANCH` takes one's work, "
        "`git branch -D BRANCH` drops it\n"
    )
    assert recorded(paths) == {"state": False, "logs": False}
    assert branches(setup.repo) == ["dag/other/z", "dag/r/b", "feature", "main"]


def test_an_unrecorded_worktree_with_work_refuses_it(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worktree on the run's branch that a killed driver did not record yet."""
    path = add_worktree(git_repo, "r", "a")
    (path / "notes.txt").write_text("mine\n")
    paths = save(run(git_repo, "r", spec("a"), status=RunStatus.INTERRUPTED))
    assert run_cli("cleanup", "r", "--forget") == 1
    assert capsys.readouterr().err == (
        f"dag: error: run r is not forgotten (nothing was removed): its worktree {path} holds "
        "1 uncommitted file: commit that work there to keep it on branch dag/r/a, which "
        "stays, or add --force to lose it\n"
    )
    assert paths.state_file.exists() and path.is_dir()


def test_a_worktree_git_refuses_to_remove_keeps_the_run(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    path = add_worktree(git_repo, "r", "a")
    git(git_repo, "worktree", "lock", "--reason", "on a USB stick", str(path))
    paths = save(run(git_repo, "r", spec("a", SpecStatus.FAILED, worktree=str(path))))
    assert run_cli("cleanup", "r", "--forget") == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("kept wt-a: git could not remove it: ")
    assert captured.err == (
        f"dag: error: run r is not forgotten: its worktree {path} would stay with no run to "
        f"know it: remove it (`git worktree remove {path}`; branch dag/r/a keeps its "
        "commits), then `dag cleanup r --forget` again\n"
    )
    assert load(paths).spec("a").worktree == str(path)


def test_a_run_being_driven_is_refused(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    add_worktree(git_repo, "r", "a")
    paths = save(driven(git_repo))
    assert run_cli("cleanup", "r", "--forget") == 1
    assert capsys.readouterr().err == (
        f"dag: error: run 'r' is being driven by process {os.getpid()}: wait for it to "
        "finish, or stop it, then run `dag cleanup r --forget` again\n"
    )
    assert paths.state_file.exists()


def test_a_run_directory_moved_and_linked_back_goes_with_its_link(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``mv .autospec/state/dag-runs/r /disk2/r && ln -s /disk2/r .autospec/state/dag-runs/r``:
    the directory is the run's own, wherever it is; the disk it is on is not."""
    paths = save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED, merged=True)))
    paths.log_file("a").parent.mkdir(parents=True)
    paths.log_file("a").write_text("a's output\n")
    disk = tmp_path / "disk"
    disk.mkdir()
    paths.run_dir.rename(disk / "r")
    paths.run_dir.symlink_to(disk / "r")
    assert run_cli("cleanup", "r", "--forget") == 0
    assert capsys.readouterr().out == f"{FORGOT}\n"
    assert not os.path.lexists(paths.run_dir) and not paths.state_file.exists()
    assert disk.is_dir() and not (disk / "r").exists()


def test_a_branch_a_stale_lock_kept_keeps_the_run_and_is_not_advised_git_merge(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stale packed-refs.lock: git deletes no branch. The run was forgotten, exit 0, its
    merged branches left with "`git merge BRANCH` takes one's work"; it stays, exit 1, one
    line saying to put the lock right, then --forget again, which forgets it."""
    from tests.test_merge import RUN, make_run

    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"}), "c": ((), {"c.txt": "c\n"})})
    assert run_cli("merge", RUN) == 0
    stale = git_repo / ".git" / "packed-refs.lock"
    stale.write_text("")
    capsys.readouterr()
    assert run_cli("cleanup", RUN, "--forget") == 1
    out, err = capsys.readouterr()
    assert f"kept dag/r1/a: git could not remove it: {stale} is in the way" in out, out
    assert "git merge" not in out + err and "forgot" not in out
    assert err == (
        "dag: error: run r1 is not forgotten: git could not delete 2 branches of it, each "
        "named above with what is in the way: once that is put right, `dag cleanup r1 "
        "--forget` again\n"
    )
    assert paths.state_file.exists()
    stale.unlink()
    assert run_cli("cleanup", RUN, "--forget") == 0
    out = capsys.readouterr().out
    assert "forgot run r1" in out and "git merge" not in out
    assert not paths.state_file.exists()
    assert branches(git_repo) == ["main"]


def test_a_branch_moved_on_after_its_merge_is_advised_as_the_run_goes(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A commit on a's branch after its merge: `dag cleanup` says `dag merge` takes it (its
    last line too, not `git merge BRANCH`); with --forget, which leaves no run to merge,
    `git merge` of that branch."""
    from tests.test_merge import RUN, add_commit, make_run

    make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    assert run_cli("merge", RUN) == 0
    git(git_repo, "checkout", "-q", "dag/r1/a")
    add_commit(git_repo, {"late.txt": "late\n"}, "a commit made after the merge")
    git(git_repo, "checkout", "-q", "main")
    capsys.readouterr()
    assert run_cli("cleanup", RUN) == 1
    out, err = capsys.readouterr()
    assert (
        "kept dag/r1/a: 1 commit not on main (made after its merge: `dag merge r1` takes it)" in out
    )
    assert "git merge" not in err and err.endswith("`dag merge r1` takes it\n"), err
    assert run_cli("cleanup", RUN, "--forget") == 0
    out = capsys.readouterr().out
    assert "(made after its merge: `git merge dag/r1/a` takes it)\n" in out, out
    assert "`git merge BRANCH` takes one's work" in out
