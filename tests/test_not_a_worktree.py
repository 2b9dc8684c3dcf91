"""A plain directory where a spec's worktree was (``rm -rf`` then ``mkdir``): no longer the
worktree git registered there, so git run in it would act on whatever repository encloses
it. The merge's removal leaves it alone, ``dag cleanup`` refuses it in one line, and a
retry makes the worktree again when it is empty, else refuses it (``worktree.reopen_worktree``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git
from tests.engine_support import Project, dag_text

pytestmark = pytest.mark.slow
pytest_plugins = ("tests.engine_fixtures",)

RunCli = Callable[..., int]


def _outer(project: Project) -> Path:
    """Make the worktree root a repository of its own, on ``main`` with one commit."""
    outer = project.repo.parent / f"{project.repo.name}.worktrees"
    git(outer, "init", "-q", "-b", "main")
    git(outer, "commit", "-q", "--allow-empty", "-m", "outer")
    return outer


def _plain(path: Path, *files: str) -> None:
    shutil.rmtree(path)
    path.mkdir()
    for name in files:
        (path / name).write_text("mine\n")


def test_merge_leaves_a_plain_directory_alone_and_cleanup_refuses_it(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write_dag(dag_text("a", "b"))
    assert run_cli("run", "dag.yaml", "--run-id", "r", "--no-merge", "--keep-worktrees") == 0
    a, b = project.worktree("a"), project.worktree("b")
    outer = _outer(project)
    _plain(a, "mine.txt")
    capsys.readouterr()
    assert run_cli("merge", "r", "--cleanup") == 0, capsys.readouterr()
    assert all(s.merged for s in project.state().specs)
    assert (a / "mine.txt").read_text() == "mine\n"
    assert not b.exists()
    assert git(outer, "symbolic-ref", "--short", "HEAD").strip() == "main"
    assert git(outer, "rev-list", "--count", "HEAD").strip() == "1"
    assert run_cli("cleanup", "r", "--force") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"dag: error: {a} is no longer the worktree git registered there")
    assert (a / "mine.txt").read_text() == "mine\n"
    shutil.rmtree(a)  # moved away: a deleted worktree, cleaned up
    assert run_cli("cleanup", "r") == 0


@pytest.mark.parametrize("files", [(), ("mine.txt",)], ids=["empty", "with-a-file"])
def test_retry_remakes_an_empty_one_and_refuses_one_with_files(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], files: tuple[str, ...]
) -> None:
    project.write_dag(dag_text("a"))
    project.fake.setenv("FAIL_AT", "implement")
    assert run_cli("run", "dag.yaml", "--run-id", "r") == 1
    a = project.worktree("a")
    outer = _outer(project)
    _plain(a, *files)
    project.fake.setenv("FAIL_AT", "")
    capsys.readouterr()
    code = run_cli("retry", "r", "a")
    out = capsys.readouterr()
    assert git(outer, "symbolic-ref", "--short", "HEAD").strip() == "main"
    if files:
        assert code == 1
        assert "no longer the worktree git registered there" in out.out + out.err
        assert (a / "mine.txt").read_text() == "mine\n"
        assert not (a / ".git").exists()
    else:
        assert code == 0, out
        assert project.statuses() == {"a": "completed"}
        assert project.state().spec("a").merged
