"""Two ``dag run`` of one repository at once, from one checkout or from the main checkout
and a linked worktree of it: distinct spec numbers, both merged, neither run stepping on
the other (README, How a run works)."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

import pytest

from dagspec import checkout_move, spec_dirs
from tests.conftest import git
from tests.engine_support import Gatekeeper, Project, dag_text, start_dag
from tests.fake_autospec_fixture import make_autospec_project, wait_for
from tests.test_ledgers import _blocked_on

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow


def _finish(*drivers: subprocess.Popen[str]) -> None:
    for driver in drivers:
        out, err = driver.communicate(timeout=60)
        assert driver.returncode == 0, out + err


def _checkout(project: Project, where: str) -> tuple[Path, str]:
    """The checkout the second run starts from, and its branch."""
    if where == "main checkout":
        return project.repo, "main"
    linked = project.repo.parent / "linked"
    git(project.repo, "worktree", "add", "-q", "-b", "side", str(linked))
    make_autospec_project(linked)
    return linked, "side"


@pytest.mark.parametrize("mode", ["auto", "always"])  # autospec 0.10.x, 0.7.3 (contract §1.5)
@pytest.mark.parametrize("where", ["main checkout", "linked worktree"])
def test_two_runs_at_once_hand_out_distinct_spec_numbers(
    project: Project, gates: Gatekeeper, where: str, mode: str
) -> None:
    checkout, branch = _checkout(project, where)
    project.fake.setenv("BRANCH", mode)
    project.fake.setenv("GATES", "specify")
    gates.hold("specify", 2)  # both agents started, each with its number, before either ends
    project.write_dag(dag_text("alpha"), "alpha.yaml")
    (checkout / "banana.yaml").write_text(dag_text("banana"))
    first = start_dag(project.repo, "run", "alpha.yaml", "--run-id", "ra")
    second = start_dag(checkout, "run", "banana.yaml", "--run-id", "rb")
    _finish(first, second)
    gates.check()
    made = [
        git(project.repo, "ls-tree", "--name-only", f"{b}:specs").split() for b in ("main", branch)
    ]
    dirs = sorted(set(made[0] + made[1]))
    assert sorted(d.split("-", 1)[1] for d in dirs) == ["build-alpha", "build-banana"]
    assert len({spec_dirs.number_of(d) for d in dirs}) == 2, dirs
    assert "dag(ra): alpha" in git(project.repo, "log", "--format=%s", "main")
    assert "dag(rb): banana" in git(project.repo, "log", "--format=%s", branch)


def test_a_run_of_a_linked_worktree_moves_the_main_checkout_only_when_no_other_run_does(
    project: Project,
) -> None:
    """Its base branch is checked out in the main checkout, whose move lock and journal are
    not the ones of the linked worktree's runs: the checkout's own lock (here held by the
    test, as a run of the main checkout would while it updates it) is waited for, so two
    runs never run git in one checkout at once."""
    linked, _ = _checkout(project, "linked worktree")
    (linked / "dag.yaml").write_text(dag_text("a", extra='execution:\n  base_branch: "main"'))
    lock = project.repo / ".git" / checkout_move.CHECKOUT_LOCK
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        driver = start_dag(linked, "run", "dag.yaml", "--run-id", "r")
        wait_for(lambda: _blocked_on(lock) or driver.poll() is not None, timeout=60, what="merge")
        assert driver.poll() is None and _blocked_on(lock)
        assert not (project.repo / "specs").exists()  # not moved while the lock is held
    finally:
        os.close(fd)
    out, err = driver.communicate(timeout=60)
    assert driver.returncode == 0, out + err
    assert f"note: waiting for another run's update of {project.repo}" in err
    assert [p.name for p in (project.repo / "specs").iterdir()] == ["001-build"]
    assert git(project.repo, "status", "--porcelain", "--untracked-files=no") == ""
