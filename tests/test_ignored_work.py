"""An agent's work in files git ignores (``dagspec.unseen_work``): with ``src/`` in
``.gitignore``, agents wrote all their code there; the run said "completed, merged", nothing
reached main, and removing the worktrees deleted the code. A worktree whose spec's merge
changed only its spec directory, yet holds files written during its run, is kept; one whose
merge brought work is removed with its ignored files (``__pycache__/``, caches) as ever."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git
from tests.engine_support import Project, dag_text

pytest_plugins = ("tests.engine_fixtures",)
RunCli = Callable[..., int]


def ignoring(project: Project, directory: str) -> Path:
    """``directory`` ignored, as in a project whose build writes there; the DAG of ``a``.
    The stand-in agent writes its work under ``fake_impl/``."""
    repo = project.repo
    with (repo / ".gitignore").open("a") as ignore:
        ignore.write(f"{directory}\n")
    dag = project.write_dag(dag_text("a"))
    git(repo, "add", ".gitignore", dag.name)
    git(repo, "commit", "-qm", f"ignore {directory}, the DAG")
    return dag


@pytest.mark.slow
def test_a_spec_whose_work_git_ignores_keeps_its_worktree(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    dag = ignoring(project, "fake_impl/")
    assert run_cli("run", str(dag), "--run-id", "r") == 0
    place = project.worktree("a")
    work = ["fake_impl/001-build/T001.txt", "fake_impl/001-build/T002.txt"]
    assert all((place / name).is_file() for name in work)
    assert "fake_impl" not in git(project.repo, "ls-tree", "-r", "--name-only", "main")
    spec_dir = project.state().spec("a").spec_dir
    assert (
        f"kept worktree {place} (a): its merge changed only its spec directory {spec_dir}, "
        f"yet its worktree holds 2 files written during its run that git ignores "
        f"({', '.join(work)}), maybe its work: check .gitignore and copy out what you need; "
        f"then `git worktree remove --force {place}`"
    ) in capsys.readouterr().out

    assert run_cli("cleanup", "r") == 1
    assert all((place / name).is_file() for name in work)
    assert "kept a: its merge changed only its spec directory" in capsys.readouterr().out
    assert run_cli("cleanup", "r", "--force") == 0
    out = capsys.readouterr().out
    assert f"a: 2 files git ignores\n    {work[0]} (ignored by git)\n" in out
    assert not place.exists()


@pytest.mark.slow
def test_ignored_files_keep_no_worktree_whose_merge_brought_work(
    project: Project, run_cli: RunCli
) -> None:
    dag = ignoring(project, "src/")
    project.fake.setenv("TOUCH", "src/cache.pyc")
    assert run_cli("run", str(dag), "--run-id", "r") == 0
    assert "fake_impl/" in git(project.repo, "ls-tree", "-r", "--name-only", "main")
    assert not project.worktree("a").exists()
