"""A repository with a submodule, as many users' are: real git, a real submodule cloned from a
repository next door, the fake autospec, through ``main``.

git leaves a submodule's working tree alone on a checkout or a fast-forward of the
superproject unless asked to recurse (git-submodule(1), ``submodule.recurse``), so the
user's edits inside one are not in the way of a fast-forward that dagspec makes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git
from tests.engine_support import Project, dag_text

pytest_plugins = ("tests.engine_fixtures",)
RunCli = Callable[..., int]
FILE_PROTOCOL = ("-c", "protocol.file.allow=always")  # a submodule cloned from a local path


@pytest.fixture
def with_submodule(project: Project, tmp_path: Path) -> Project:
    """The project with ``lib/`` a submodule (one file, ``lib.txt``), committed on main."""
    lib = tmp_path / "lib"
    lib.mkdir()
    git(lib, "init", "-q", "-b", "main")
    (lib / "lib.txt").write_text("library\n")
    git(lib, "add", "lib.txt")
    git(lib, "commit", "-qm", "library")
    git(project.repo, *FILE_PROTOCOL, "submodule", "--quiet", "add", str(lib), "lib")
    git(project.repo, "commit", "-qm", "add the library as a submodule")
    return project


@pytest.mark.slow
def test_edits_inside_a_submodule_do_not_hold_back_the_fast_forward(
    with_submodule: Project, run_cli: RunCli
) -> None:
    repo = with_submodule.repo
    (repo / "lib" / "lib.txt").write_text("my edit in the library\n")
    (repo / "lib" / "scratch.txt").write_text("mine\n")
    dag = with_submodule.write_dag(dag_text("a", ("b", ["a"])))
    git(repo, "add", dag.name)
    git(repo, "commit", "-qm", "the DAG")
    assert run_cli("run", str(dag), "--run-id", "r") == 0
    assert with_submodule.statuses() == {"a": "completed", "b": "completed"}
    assert git(repo, "rev-parse", "HEAD") == git(repo, "rev-parse", "main")
    assert "Merge dag/r/b" in git(repo, "log", "-1", "--format=%s")
    assert (repo / "lib" / "lib.txt").read_text() == "my edit in the library\n"
    assert (repo / "lib" / "scratch.txt").read_text() == "mine\n"


@pytest.mark.slow
def test_a_new_commit_checked_out_in_a_submodule_still_holds_the_checkout(
    with_submodule: Project, run_cli: RunCli
) -> None:
    """The submodule's HEAD moved: that is a change to a tracked path of the superproject
    (its gitlink), which the user has not committed yet; the result waits on a branch."""
    repo = with_submodule.repo
    git(repo / "lib", "commit", "-q", "--allow-empty", "-m", "a library change")
    dag = with_submodule.write_dag(dag_text("a"))
    git(repo, "add", dag.name)
    git(repo, "commit", "-qm", "the DAG")
    head = git(repo, "rev-parse", "HEAD")
    assert run_cli("run", str(dag), "--run-id", "r") == 1
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "rev-parse", "--verify", "-q", "dag/r/_merged")


@pytest.mark.slow
def test_worktrees_whose_setup_checked_out_the_submodule_are_removed(
    with_submodule: Project, run_cli: RunCli
) -> None:
    """``git worktree remove`` refuses a worktree with a submodule checked out in it
    (git-worktree(1)); the setup that users write for such a repository does exactly that."""
    repo = with_submodule.repo
    setup = "execution:\n  setup: git -c protocol.file.allow=always submodule update --init\n"
    dag = with_submodule.write_dag(dag_text("a", "b", extra=setup))
    git(repo, "add", dag.name)
    git(repo, "commit", "-qm", "the DAG")
    assert run_cli("run", str(dag), "--run-id", "r", "--parallel") == 0
    log = (repo / ".autospec" / "state" / "dag-runs" / "r" / "logs" / "a.log").read_text()
    assert "Submodule path 'lib': checked out" in log
    assert not with_submodule.worktree("a").exists()
    assert not with_submodule.worktree("b").exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert git(repo, "branch", "--list", "dag/*") == ""


@pytest.mark.slow
def test_a_worktree_whose_submodule_holds_a_commit_found_nowhere_else_is_kept(
    with_submodule: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """The agent committed inside the submodule, pushed nowhere: the spec's commit (and so
    main) points at a commit only the worktree's copy of the submodule has. git refuses to
    remove a worktree with a submodule; forcing it, as a clean one is, lost that commit."""
    repo = with_submodule.repo
    work = "cd lib && echo $DAG_SPEC_ID > work.txt && git add work.txt && git commit -qm work"
    setup = (
        "execution:\n  setup: git -c protocol.file.allow=always submodule update --init"
        f" --quiet && ({work})\n"
    )
    dag = with_submodule.write_dag(dag_text("a", extra=setup))
    git(repo, "add", dag.name)
    git(repo, "commit", "-qm", "the DAG")
    assert run_cli("run", str(dag), "--run-id", "r") == 0
    place = with_submodule.worktree("a")
    commit = git(place / "lib", "rev-parse", "HEAD").strip()
    assert git(repo, "ls-tree", "main", "lib").split()[2] == commit
    assert git(place / "lib", "cat-file", "-t", commit).strip() == "commit"  # kept, with it
    out = capsys.readouterr().out
    assert (
        f"kept worktree {place} (a): its submodule lib has 1 commit found only in this "
        f"worktree ({commit[:7]} work), which the spec's commit may point at: push it from "
        f"{place / 'lib'}, or fetch it into your checkout's (`git -C lib fetch "
        f"{place / 'lib'} {commit[:7]}`); then `git worktree remove --force {place}`"
    ) in out

    assert run_cli("cleanup", "r") == 1
    assert place.exists()
    assert "kept a: its submodule lib has 1 commit found only in this worktree" in (
        capsys.readouterr().out
    )
    git(repo / "lib", "fetch", "-q", str(place / "lib"), commit)  # as the message says
    assert run_cli("cleanup", "r") == 0
    assert not place.exists()
