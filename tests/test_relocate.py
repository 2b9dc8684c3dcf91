"""A repository moved or renamed between a run and its resume, a worktree deleted by hand,
dag started from a directory that is gone (issue 13 item 7). Real git, the stand-in
autospec, real moves of real directories."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import git as dagspec_git
from dagspec.errors import DagspecError
from dagspec.workspace import RunPaths
from tests.conftest import ROOT, git
from tests.engine_support import Project, dag_text

pytest_plugins = ("tests.engine_fixtures",)

RunCli = Callable[..., int]


def failed_run(project: Project, run_cli: RunCli) -> None:
    """Run r: a fails in tasks and b in implement, their work committed in their worktrees;
    c waits for a."""
    project.fake.setenv("COMMIT", "always")
    project.fake.control(
        [
            {"match": "^Build a$", "FAIL_AT": "tasks"},
            {"match": "^Build b$", "FAIL_AT": "implement"},
        ]
    )
    dag = project.write_dag(dag_text("a", "b", ("c", ["a"])))
    assert run_cli("run", dag, "--run-id", "r") == 1
    assert project.statuses() == {"a": "failed", "b": "failed", "c": "blocked"}
    project.fake.control([])


def restarts(project: Project) -> list[list[str]]:
    """The argv of each autospec run after the first three (a, b, then c never started)."""
    return [s["argv"][:2] for s in project.starts() if s["argv"][0] == "run"][2:]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["together", "repository only", "together, a deleted"])
def test_resume_after_the_repository_was_moved(
    project: Project, run_cli: RunCli, tmp_path: Path, how: str
) -> None:
    failed_run(project, run_cli)
    moved = tmp_path / "renamed"
    project.repo.rename(moved)
    if how != "repository only":
        (tmp_path / "repo.worktrees").rename(tmp_path / "renamed.worktrees")
    if how == "together, a deleted":
        shutil.rmtree(tmp_path / "renamed.worktrees" / "r" / "a")
    here = Project(moved, project.fake)
    assert run_cli("--repo", moved, "resume", "r") == 0
    assert here.statuses() == dict.fromkeys("abc", "completed")
    assert restarts(here)[:2] == [["run", "-ti"], ["run", "-i"]]  # nothing started afresh
    run = here.state()
    assert run.repo == str(moved) and all(s.merged for s in run.specs)
    assert all(str(moved) in (s.log or "") for s in run.specs)
    listed = git(moved, "worktree", "list", "--porcelain")
    assert "prunable" not in listed and listed.count("worktree ") == 1  # all removed
    assert sorted(git(moved, "branch", "--format=%(refname:short)").split()) == ["main"]


@pytest.mark.slow
@pytest.mark.parametrize("moved", ["its worktrees", "its state directory"])
def test_resume_after_a_runs_directory_was_moved_and_linked_back(
    project: Project, run_cli: RunCli, tmp_path: Path, moved: str
) -> None:
    """``mv repo.worktrees/r /disk2/r && ln -s /disk2/r repo.worktrees/r`` (or the same of
    ``.autospec/state/dag-runs/r``): the run goes on where it is. Its worktrees were refused
    as "a state file copied from another run"; its state directory lost its driver."""
    failed_run(project, run_cli)
    place = {
        "its worktrees": tmp_path / "repo.worktrees" / "r",
        "its state directory": RunPaths(project.repo, "r").run_dir,
    }[moved]
    disk2 = tmp_path / "disk2" / "r"
    disk2.parent.mkdir()
    shutil.move(place, disk2)
    place.symlink_to(disk2)
    assert run_cli("status", "r") == 1  # failed: it needs you
    assert run_cli("resume", "r") == 0
    assert project.statuses() == dict.fromkeys("abc", "completed")
    assert restarts(project)[:2] == [["run", "-ti"], ["run", "-i"]]  # nothing started afresh
    assert all(s.merged for s in project.state().specs)


@pytest.mark.slow
def test_cleanup_after_the_repository_was_moved_takes_its_worktrees(
    project: Project, run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failed_run(project, run_cli)
    moved = tmp_path / "renamed"
    project.repo.rename(moved)
    (tmp_path / "repo.worktrees").rename(tmp_path / "renamed.worktrees")
    capsys.readouterr()
    # a completed, not merged: its branch stays even with --force (its commits are not on main)
    assert run_cli("--repo", moved, "cleanup", "r", "--force") == 1
    out = capsys.readouterr().out
    assert "kept dag/r/a: 2 commits not on main" in out
    assert f"removed {tmp_path / 'renamed.worktrees' / 'r' / 'a'}" in out
    assert not (tmp_path / "renamed.worktrees" / "r").exists()
    assert git(moved, "worktree", "list", "--porcelain").count("worktree ") == 1


@pytest.mark.slow
def test_a_completed_specs_worktree_deleted_before_the_move_leaves_no_branch_behind(
    project: Project, run_cli: RunCli, tmp_path: Path
) -> None:
    """git keeps a registration of the deleted worktree at the old place, which holds its
    branch as checked out: it is dropped when the run arrives in the new place, so the
    merge and cleanup can delete the branch."""
    assert run_cli("run", project.write_dag(dag_text("a", "b")), "--run-id", "r", "--no-merge") == 0
    moved = tmp_path / "renamed"
    project.repo.rename(moved)
    (tmp_path / "repo.worktrees").rename(tmp_path / "renamed.worktrees")
    shutil.rmtree(tmp_path / "renamed.worktrees" / "r" / "a")
    assert run_cli("--repo", moved, "merge", "r") == 0
    assert run_cli("--repo", moved, "cleanup", "r") == 0
    assert "prunable" not in git(moved, "worktree", "list", "--porcelain")
    assert sorted(git(moved, "branch", "--format=%(refname:short)").split()) == ["main"]


def test_status_of_a_moved_run_shows_where_things_are_now_and_writes_nothing(
    project: Project, run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "plan"}])
    assert run_cli("run", project.write_dag(dag_text("a")), "--run-id", "r") == 1
    moved = tmp_path / "renamed"
    project.repo.rename(moved)
    (tmp_path / "repo.worktrees").rename(tmp_path / "renamed.worktrees")
    state_file = RunPaths(moved, "r").state_file
    before = state_file.read_bytes()
    capsys.readouterr()
    assert run_cli("--repo", moved, "status", "r", "--json") == 1
    (spec,) = json.loads(capsys.readouterr().out)["specs"]
    assert spec["worktree"] == str(tmp_path / "renamed.worktrees" / "r" / "a")
    assert spec["log"].startswith(f"{moved}/")
    assert state_file.read_bytes() == before


def test_a_copy_is_refused_and_the_original_left_alone(
    project: Project, run_cli: RunCli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "plan"}])
    assert run_cli("run", project.write_dag(dag_text("a")), "--run-id", "r") == 1
    copy = tmp_path / "copy"
    shutil.copytree(project.repo, copy, symlinks=True)
    before = (project.worktree("a") / ".git").read_text()
    capsys.readouterr()
    assert run_cli("--repo", copy, "resume", "r") == 1
    assert capsys.readouterr().err == (
        f"dag: error: run 'r' was started in {project.repo}, which is still there: this "
        f"repository is a copy of it; continue the run there (`dag --repo {project.repo} "
        "resume r`)\n"
    )
    assert (project.worktree("a") / ".git").read_text() == before


def test_git_in_a_directory_that_is_gone_says_so(tmp_path: Path) -> None:
    with pytest.raises(DagspecError) as raised:
        dagspec_git.run(tmp_path / "gone", "status")
    assert str(raised.value).startswith(f"{tmp_path / 'gone'} is gone (moved or deleted?)")
    assert "not installed" not in str(raised.value)


def dag_from_a_deleted_directory(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m dagspec ARGS`` started in a directory removed before it starts."""
    gone = tmp_path / "gone"
    script = f'mkdir "{gone}" && cd "{gone}" && rmdir "{gone}" && exec "$0" -m dagspec "$@"'
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = ["sh", "-c", script, sys.executable, *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_dag_from_a_deleted_directory(project: Project, run_cli: RunCli, tmp_path: Path) -> None:
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "plan"}])
    assert run_cli("run", project.write_dag(dag_text("a")), "--run-id", "r") == 1
    project.fake.control([])
    done = dag_from_a_deleted_directory(tmp_path, "status")
    assert (done.returncode, done.stderr) == (
        1,
        "dag: error: the current directory no longer exists (deleted or moved): cd into your "
        "repository, or pass --repo DIR\n",
    )
    relative = os.path.relpath(project.repo, tmp_path / "gone")
    done = dag_from_a_deleted_directory(tmp_path, "--repo", relative, "status", "r")
    assert (done.returncode, done.stderr) == (
        1,
        f"dag: error: --repo {relative} is relative to the current directory, which no "
        "longer exists (deleted or moved): give the repository's absolute path\n",
    )
    done = dag_from_a_deleted_directory(tmp_path, "--repo", str(project.repo), "resume", "r")
    assert done.returncode == 0, done.stderr
    assert project.statuses() == {"a": "completed"}
