"""One ``git worktree add`` at a time in a repository, across processes
(``dagspec.worktree_adds``): two at once failed about 1 in 40 on git 2.39.5 ("failed to
read .git/worktrees/x46/commondir"), and runs of one repository at once made theirs under
per-process locks only."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dagspec import worktree, worktree_adds
from tests.conftest import git
from tests.engine_support import Project, dag_text, start_dag
from tests.fake_autospec_fixture import make_autospec_project, wait_for
from tests.test_concurrent_runs import _interrupted_waiting_for, holder
from tests.test_ledgers import _blocked_on

pytest_plugins = ("tests.engine_fixtures",)


def _adding_blocked(
    repo: Path, path: Path, lock: Path, **options: Any
) -> tuple[threading.Thread, list[BaseException]]:
    """``worktree.create_worktree`` of ``dag/r/a`` at ``path`` in a thread, once it is seen
    waiting on ``lock`` (``/proc/locks``); the thread and what it raised."""
    errors: list[BaseException] = []

    def add() -> None:
        try:
            worktree.create_worktree(repo, path, branch="dag/r/a", start="main", **options)
        except BaseException as exc:
            errors.append(exc)

    adding = threading.Thread(target=add)
    adding.start()
    wait_for(lambda: _blocked_on(lock) or not adding.is_alive(), timeout=30, what="a wait")
    assert _blocked_on(lock), errors  # not made already, past the lock
    return adding, errors


def test_an_add_waits_for_another_process_holding_the_lock_saying_so(
    git_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A child process holds the lock: the add waits (blocked on the lock, nothing made),
    says so after a moment, and is made once the child lets go."""
    lock = git_repo / ".git" / worktree_adds.ADD_LOCK
    child = holder(lock)
    path = tmp_path / "wt" / "r" / "a"
    try:
        adding, errors = _adding_blocked(git_repo, path, lock)
        said = ""
        deadline = time.monotonic() + 30
        while "note: waiting for another run" not in said and time.monotonic() < deadline:
            said += capsys.readouterr().err
            adding.join(0.05)
        note = f"note: waiting for another run of this repository, which holds {lock} while "
        assert said.startswith(f"{note}it adds a worktree; held by pid {child.pid} "), said
        assert said.endswith(" (Ctrl-C stops the wait)\n") and said.count("\n") == 1, said
        assert adding.is_alive() and not path.exists()
        assert "dag/r/a" not in git(git_repo, "branch", "--list", "dag/*")
    finally:
        child.communicate("go\n", timeout=30)  # let go, the pipes closed
    adding.join(timeout=30)
    assert not adding.is_alive() and errors == []
    assert (path / "README.md").is_file()


def test_a_stop_ends_the_wait_with_nothing_made(git_repo: Path, tmp_path: Path) -> None:
    """The drive's cancellation (``go_on`` raising, as ``trio.from_thread.check_cancelled``
    does at a Ctrl-C) ends the wait: what it raised comes out, no worktree, no branch."""
    lock = git_repo / ".git" / worktree_adds.ADD_LOCK
    child = holder(lock)
    stop = threading.Event()

    class Stopped(Exception):
        pass

    def go_on() -> None:
        if stop.is_set():
            raise Stopped

    path = tmp_path / "wt" / "r" / "a"
    try:
        adding, errors = _adding_blocked(git_repo, path, lock, go_on=go_on)
        stop.set()
        adding.join(timeout=30)
        assert not adding.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], Stopped), errors
        assert not path.exists() and not path.parent.exists()
        assert git(git_repo, "branch", "--list", "dag/*") == ""
    finally:
        child.communicate("go\n", timeout=30)  # let go, the pipes closed


@pytest.mark.slow  # two whole runs of many specs
def test_two_runs_of_one_repository_at_once_make_every_worktree(project: Project) -> None:
    """The main checkout's run and a linked worktree's, eight specs each, all at once: no
    `git worktree add` fails."""
    linked = project.repo.parent / "linked"
    git(project.repo, "worktree", "add", "-q", "-b", "side", str(linked))
    make_autospec_project(linked)
    ids = [f"s{n}" for n in range(8)]
    project.write_dag(dag_text(*ids))
    (linked / "dag.yaml").write_text(dag_text(*(f"t{n}" for n in range(8))))
    flags = ("--parallel", "--max-parallel", "8")
    first = start_dag(project.repo, "run", "dag.yaml", "--run-id", "ra", *flags)
    second = start_dag(linked, "run", "dag.yaml", "--run-id", "rb", *flags)
    for driver in (first, second):
        out, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, out + err
        assert "commondir" not in out + err
    assert set(project.statuses("ra").values()) == {"completed"}
    assert len(project.state("ra").specs) == 8


@pytest.mark.slow  # a dag run, and a signal
def test_a_ctrl_c_ends_a_run_s_wait_to_add_a_worktree(project: Project) -> None:
    """Another run of the repository holds the lock (stuck): a Ctrl-C ends the run's wait,
    its spec called off with no worktree made."""
    lock = project.repo / ".git" / worktree_adds.ADD_LOCK
    out, err = _interrupted_waiting_for(project, lock)
    assert "Traceback" not in out + err
    assert project.statuses() == {"a": "pending"}
    assert not project.worktree("a").exists()
    assert git(project.repo, "branch", "--list", "dag/*") == ""
