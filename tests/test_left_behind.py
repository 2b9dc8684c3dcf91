"""What a finished run still leaves to do that its specs' statuses cannot say, said alike
by ``dag status`` and the end of the run (``dagspec.left_behind``): a merged spec's branch
that moved on after its merge (``next: dag merge``, exit 1), merged specs' branches a stale
lock kept (every lock named, ``next: dag cleanup``). Real git, real runs of the stand-in
autospec."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import state as dstate
from dagspec.console import dag_command
from dagspec.integration import integration_branch
from dagspec.workspace import RunPaths
from tests.conftest import ROOT, git
from tests.engine_support import Project, dag_text
from tests.git_gates import CommandGate
from tests.test_merge import RUN, add_commit, branch, make_run
from tests.test_squash_merged import branches

pytest_plugins = ("tests.engine_fixtures",)

Cli = Callable[..., int]


def _typed(out: str) -> str:
    return out.replace(dag_command(), "dag")


def test_status_says_dag_merge_for_a_branch_that_moved_on_after_its_merge(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A commit on a's branch after its merge: status said "nothing left to do" (exit 0)
    while `dag merge --dry-run` said "would merge a"; it says what the merge would do."""
    make_run(git_repo, {"a": ((), {"a.txt": "a\n"}), "c": ((), {"c.txt": "c\n"})})
    assert run_cli("merge", RUN, "--cleanup") == 0
    git(
        git_repo,
        "branch",
        branch("a"),
        f"{dstate.load(RunPaths(git_repo, RUN)).spec('a').merge_commit}^2",
    )
    git(git_repo, "checkout", "-q", branch("a"))
    late = add_commit(git_repo, {"late.txt": "late\n"}, "a commit made after the merge")
    git(git_repo, "checkout", "-q", "main")
    capsys.readouterr()

    assert run_cli("status", RUN) == 1
    out = _typed(capsys.readouterr().out)
    assert (
        f"note: {branch('a')} has a commit made after the merge of a, which main lacks: "
        "`dag merge r1` takes it\n"
    ) in out, out
    assert out.endswith("next: dag merge r1\n"), out
    assert run_cli("merge", RUN, "--dry-run") == 0
    assert "would merge     a" in capsys.readouterr().out

    assert run_cli("merge", RUN, "--cleanup") == 0
    assert git(git_repo, "merge-base", "--is-ancestor", late, "main") == ""
    capsys.readouterr()
    assert run_cli("status", RUN) == 0
    assert "nothing left to do: every spec is merged into main" in capsys.readouterr().out


def test_every_stale_lock_is_named_and_status_says_dag_cleanup_while_branches_stay(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """packed-refs.lock and a's own lock: git names only the first it meets; both are named,
    at the merge and by `dag status`, which said "nothing left to do" with the branches there."""
    make_run(git_repo, {"a": ((), {"a.txt": "a\n"}), "c": ((), {"c.txt": "c\n"})})
    packed = git_repo / ".git" / "packed-refs.lock"
    own = git_repo / ".git" / "refs" / "heads" / f"{branch('a')}.lock"
    packed.write_text("")
    own.write_text("")
    assert run_cli("merge", RUN, "--cleanup") == 1
    err = _typed(capsys.readouterr().err)
    assert err.count("\n") == 1, err
    assert (
        f"{packed} and {own} are in the way: if no git is running in this repository, delete "
        "them (a git killed earlier left them); then `dag cleanup r1` deletes them\n"
    ) in err, err

    assert run_cli("status", RUN) == 0  # all merged: the branches are cleanup's
    out = _typed(capsys.readouterr().out)
    assert f"note: the run's branches {branch('a')}, {branch('c')} are still there" in out, out
    assert f"{packed} and {own} are in the way" in out
    assert out.endswith("next: dag cleanup r1\n"), out
    packed.unlink()
    own.unlink()
    assert run_cli("cleanup", RUN) == 0
    capsys.readouterr()
    assert run_cli("status", RUN) == 0
    assert "nothing left to do" in capsys.readouterr().out
    assert branches(git_repo) == ["main"]


def _dag(project: Project, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "dagspec", *args],
        cwd=project.repo,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_the_end_of_a_run_a_stale_lock_kept_branches_of_says_next_dag_cleanup(
    project: Project, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its last line said "nothing left to do: every spec is merged" under the error."""
    project.write_dag(dag_text("a", "c"))
    stale = project.repo / ".git" / "packed-refs.lock"
    stale.write_text("")
    done = _dag(project, "run", "dag.yaml", "--run-id", "r")
    out, err = done.communicate(timeout=120)
    assert done.returncode == 1, out + err
    assert f"{stale} is in the way" in err and "then `" in err
    assert "nothing left to do" not in out
    assert out.endswith(" cleanup r\n") and "\nnext: " in out, out
    assert run_cli("status", "r") == 0
    assert _typed(capsys.readouterr().out).endswith("next: dag cleanup r\n")


@pytest.mark.slow
def test_the_end_of_a_run_whose_branch_moved_on_after_its_merge_says_next_dag_merge(
    project: Project, tmp_path: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A commit on a's branch once its merge is made (at the removal of the worktrees): the
    end said "kept branch ...: `dag merge` takes the new commit", then "nothing left to do",
    exit 0; it says `next: dag merge`, exit 1, as `dag status` does."""
    project.write_dag(dag_text("a"))
    gate = CommandGate(tmp_path / "gate", "worktree remove")
    env_path = os.environ["PATH"]
    os.environ["PATH"] = f"{gate.path}{os.pathsep}{env_path}"
    try:
        done = _dag(project, "run", "dag.yaml", "--run-id", "r")
    finally:
        os.environ["PATH"] = env_path
    try:
        gate.wait()  # main has a's merge; a's worktree is about to go
        add_commit(project.worktree("a", "r"), {"late.txt": "late\n"}, "made after the merge")
    finally:
        gate.release()
    out, err = done.communicate(timeout=120)
    assert done.returncode == 1, out + err
    assert "kept branch dag/r/a: it moved during the merge" in out
    assert "nothing left to do" not in out
    assert out.endswith(" merge r\n") and "\nnext: " in out, out
    assert run_cli("status", "r") == 1
    assert _typed(capsys.readouterr().out).endswith("next: dag merge r\n")
    assert integration_branch("r") not in branches(project.repo)


def _moved_on_after_its_merge(repo: Path, run_cli: Cli) -> None:
    make_run(repo, {"a": ((), {"a.txt": "a\n"})})
    assert run_cli("merge", RUN) == 0
    git(repo, "checkout", "-q", branch("a"))
    add_commit(repo, {"late.txt": "late\n"}, "a commit made after the merge")
    git(repo, "checkout", "-q", "main")


def test_resume_and_a_watch_say_dag_merge_for_a_branch_moved_on_after_its_merge(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dag resume` of it said "nothing to resume" then "nothing left to do", and the end of
    `dag status --watch` the same, exit 0."""
    _moved_on_after_its_merge(git_repo, run_cli)
    capsys.readouterr()
    assert run_cli("resume", RUN) == 0
    out = _typed(capsys.readouterr().out)
    assert out.endswith("nothing to resume\nnext: dag merge r1\n"), out
    assert run_cli("status", RUN, "--watch") == 1
    out = _typed(capsys.readouterr().out)
    assert f"note: {branch('a')} has a commit made after the merge of a" in out, out
    assert out.endswith("`dag merge r1` takes it\nnext: dag merge r1\n"), out


def test_a_watch_of_a_run_whose_branches_a_lock_kept_says_dag_cleanup(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run(git_repo, {"a": ((), {"a.txt": "a\n"})})
    stale = git_repo / ".git" / "packed-refs.lock"
    stale.write_text("")
    assert run_cli("merge", RUN, "--cleanup") == 1
    capsys.readouterr()
    assert run_cli("status", RUN, "--watch") == 0
    out = _typed(capsys.readouterr().out)
    assert f"note: the run's branch {branch('a')} is still there, its work merged: {stale}" in out
    assert out.endswith("`dag cleanup r1` deletes it\nnext: dag cleanup r1\n"), out
    assert run_cli("resume", RUN) == 0
    assert _typed(capsys.readouterr().out).endswith("nothing to resume\nnext: dag cleanup r1\n")


def test_the_integration_branch_s_lock_and_a_spec_s_are_both_named(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two deletions, two locks (the merge's of _integration, the cleanup's of a): the one
    line named only the first; it names both, then `dag cleanup` once they are gone."""
    from tests.test_integration import joined_run

    joined_run(git_repo)
    heads = git_repo / ".git" / "refs" / "heads"
    locks = [heads / f"{integration_branch(RUN)}.lock", heads / f"{branch('a')}.lock"]
    for lock in locks:
        lock.write_text("")
    assert run_cli("merge", RUN, "--cleanup") == 1
    err = _typed(capsys.readouterr().err)
    assert err.count("\n") == 1, err
    assert f"{locks[0]} and {locks[1]} are in the way" in err, err
    for lock in locks:
        lock.unlink()
    assert run_cli("cleanup", RUN) == 0
    assert branches(git_repo) == ["main"]
