"""A spec's branch whose commit the repository no longer has (reset, then ``git gc
--prune=now``): every git command in its worktree fails (``bad object HEAD``). ``dag retry``
and ``dag resume`` refuse it in one line that says what happened and what to do, instead
of failing the spec again at once, for ever; ``dag cleanup`` keeps its files (all that is
left of its work) unless ``--force``, which removes them and the branch. ``dag merge``
leaves such a spec off and merges the others."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git
from tests.engine_support import Project, dag_text
from tests.test_merge import RUN, branch, make_run

pytest_plugins = ("tests.engine_fixtures",)
RunCli = Callable[..., int]


def _prune_branch_commit(repo: Path, branch: str) -> str:
    """Point ``branch`` at a commit ``git gc --prune=now`` then removes: the commit the
    branch was at, once it was reset away and every reflog expired; returns it."""
    lost = git(repo, "rev-parse", branch).strip()
    git(repo, "update-ref", f"refs/heads/{branch}", "main")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    (repo / ".git" / "refs" / "heads" / branch).write_text(lost + "\n")  # over the packed one
    gone = subprocess.run(["git", "cat-file", "-e", lost], cwd=repo, capture_output=True)
    assert gone.returncode != 0  # the commit is gone
    return lost


@pytest.fixture
def pruned(project: Project, run_cli: RunCli) -> tuple[Project, str, Path]:
    """Run ``r`` whose spec ``a`` failed after committing, then lost its commit."""
    project.fake.setenv("FAIL_AT", "implement:T002")
    project.fake.setenv("COMMIT", "always")
    assert run_cli("run", project.write_dag(dag_text("a")), "--run-id", "r") == 1
    spec = project.state().spec("a")
    assert spec.worktree is not None
    (Path(spec.worktree) / "notes.md").write_text("the agent's notes\n")
    lost = _prune_branch_commit(project.repo, "dag/r/a")
    return project, lost, Path(spec.worktree)


@pytest.mark.slow  # whole runs of the fake autospec
def test_retry_and_resume_say_the_commit_is_gone_and_what_to_do(
    pruned: tuple[Project, str, Path], run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    project, lost, worktree = pruned
    capsys.readouterr()
    for command in (("retry", "r", "a"), ("resume", "r")):
        assert run_cli(*command) == 1
        out, err = capsys.readouterr()
        assert err == (
            "dag: error: branch dag/r/a of spec a of run r points at "
            f"commit {lost[:12]}, which the repository no longer has (pruned by `git gc` "
            f"after a reset?): the spec's work is lost, but for the files in {worktree}; "
            "fetch that commit back from a clone that has it, or `dag cleanup r --force` "
            f"(it removes the branch and worktree), then `dag {' '.join(command)}` starts "
            "the spec afresh\n"
        ), err
        assert out == ""
    assert project.state().spec("a").attempts == 1  # no attempt was made
    assert (worktree / "notes.md").read_text() == "the agent's notes\n"


@pytest.mark.slow  # whole runs of the fake autospec
def test_status_names_the_lost_commit_and_a_next_that_works(
    pruned: tuple[Project, str, Path], run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dag status` said "next: dag retry r a", which retry refuses, and did not mention
    the lost commit."""
    project, lost, _worktree = pruned
    capsys.readouterr()
    assert run_cli("status", "r") == 1
    out = capsys.readouterr().out
    assert (
        f"note: the branch of spec a points at commit {lost[:12]}, which the repository no "
        "longer has (pruned by `git gc` after a reset?): the files of its worktree are all "
        "that is left of its work; `dag cleanup r --force` removes them and the branch"
    ) in out, out
    assert out.endswith("next: dag cleanup r --force, then dag retry r a\n"), out

    assert run_cli("cleanup", "r", "--force") == 0, capsys.readouterr()
    run_cli("retry", "r", "a")  # as the next line said: an attempt is made
    assert project.state().spec("a").attempts == 2, capsys.readouterr()


@pytest.mark.slow
def test_cleanup_keeps_the_files_then_force_removes_them_and_the_branch(
    pruned: tuple[Project, str, Path], run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    project, lost, worktree = pruned
    capsys.readouterr()
    assert run_cli("cleanup", "r") == 1
    out, err = capsys.readouterr()
    assert (
        f"kept {worktree.name}: the commit {lost[:12]} of dag/r/a is gone (pruned by `git "
        "gc`?), so its files are all that is left of its work"
    ) in out + err, out + err
    assert "\n  " not in err and "fatal" not in out + err
    assert "commit a worktree's files there" not in err  # git cannot commit there
    assert "copy a worktree's files elsewhere: git cannot commit where its branch's" in err
    assert run_cli("cleanup", "r", "--forget") == 1
    err = capsys.readouterr().err
    assert "holds its files, all that is left of its work (the commit of branch dag/r/a " in err
    assert "copy them elsewhere to keep them, or add --force to lose them" in err, err
    assert (worktree / "notes.md").exists()

    assert run_cli("cleanup", "r", "--force") == 0, capsys.readouterr()
    out, err = capsys.readouterr()
    assert "--force: this work will be lost:" in out and f"commit {lost[:12]}" in out
    assert err == ""
    assert not worktree.exists()
    assert "dag/r/a" not in git(project.repo, "branch", "--list", "dag/r/*")
    git(project.repo, "for-each-ref", "refs/heads/")  # no broken ref left behind


@pytest.mark.slow  # gc of a repository
def test_merge_leaves_off_a_spec_whose_commit_is_gone_and_cleanup_drops_its_branch(
    git_repo: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A completed spec's commit pruned: ``dag merge`` refused the whole run (git cannot
    merge what it lacks); now that spec is left off, named with its lost commit, and the
    others merge. ``dag cleanup`` deletes its broken branch (nothing is lost: the commit is
    gone), after which git can list the repository's branches again."""
    make_run(git_repo, {"a": ((), {"a.txt": "a\n"}), "b": ((), {"b.txt": "b\n"})})
    lost = _prune_branch_commit(git_repo, branch("a"))
    assert run_cli("merge", RUN) == 1
    out = capsys.readouterr().out
    assert f"branch missing  a  dag/r1/a: its commit {lost[:12]} is gone (pruned by git gc?)" in out
    assert "merged          b" in out and (git_repo / "b.txt").exists(), out
    assert run_cli("cleanup", RUN) == 0, capsys.readouterr()
    assert "deleted branch dag/r1/a" in capsys.readouterr().out
    assert git(git_repo, "for-each-ref", "refs/heads/").count("dag/r1/") == 0
