"""An agent's work in files git ignores (``dagspec.unseen_work``): with ``src/`` in
``.gitignore``, agents wrote all their code there; the run said "completed, merged", nothing
reached main, and removing the worktrees deleted the code. A worktree whose spec's merge
changed only its spec directory, yet holds files written during its run, is kept; one whose
merge brought work is removed with its ignored files (``__pycache__/``, caches) as ever."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec.unseen_work import written_since
from tests.conftest import git
from tests.engine_support import Project, dag_text
from tests.fake_autospec_fixture import FAKE_DIR

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


@pytest.mark.slow
def test_a_spec_already_merged_by_an_earlier_run_keeps_its_ignored_work(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same DAG run again: its spec "already merged", with no merge commit of its own,
    was never looked at, and its worktree went with the agent's new work under fake_impl/."""
    dag = ignoring(project, "src/")
    agent = project.repo.parent / "autospec"  # the fake, then the work under src/
    agent.write_text(
        f'#!/bin/sh\n"{FAKE_DIR / "autospec"}" "$@" || exit\n'
        'if [ "$1" = run ]; then mkdir -p src && date +%s%N > src/app.py; fi\n'
    )
    agent.chmod(0o755)
    assert run_cli("run", str(dag), "--run-id", "r", "--autospec", agent) == 0
    capsys.readouterr()

    assert run_cli("run", str(dag), "--run-id", "r2", "--autospec", agent) == 0

    again = project.state("r2").spec("a")
    assert again.merged and again.merge_commit is None
    place = project.worktree("a", "r2")
    assert (place / "src/app.py").is_file()
    assert f"kept worktree {place} (a): " in capsys.readouterr().out


def test_a_file_with_its_modification_time_set_back_counts_as_written(tmp_path: Path) -> None:
    """Unpacked by `tar x`, `cp -p` or `unzip`: its modification time is the archive's, but
    its change time is when it was written, which no tool can set back."""
    (tmp_path / "src").mkdir()
    work = tmp_path / "src" / "app.py"
    work.write_text("work\n")
    os.utime(work, (946684800, 946684800))  # 2000-01-01
    moment = work.stat().st_ctime - 1  # the attempt started just before

    assert written_since(tmp_path, moment, None) == ["src/app.py"]


@pytest.mark.slow
def test_a_file_execution_copy_put_there_is_not_the_agents_work(
    project: Project, run_cli: RunCli
) -> None:
    """`execution.copy` keeps a file's modification time (`shutil.copy2`), so its change
    time is the copy's: after the checkout was made, yet before the agent started."""
    ignoring(project, "fake_impl/\n.env")
    env = project.repo / ".env"
    env.write_text("KEY=1\n")
    os.utime(env, (946684800, 946684800))  # 2000-01-01
    agent = project.repo.parent / "autospec"  # the fake, its work then thrown away
    agent.write_text(f'#!/bin/sh\n"{FAKE_DIR / "autospec"}" "$@" || exit\nrm -rf fake_impl\n')
    agent.chmod(0o755)
    dag = project.write_dag(dag_text("a", extra="execution:\n  copy: [.env]\n"))
    git(project.repo, "commit", "-qam", "copy .env")

    assert run_cli("run", str(dag), "--run-id", "r", "--autospec", agent) == 0
    assert not project.worktree("a").exists()
