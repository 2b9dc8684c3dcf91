"""Two ``dag run`` of one repository at once, from one checkout or from the main checkout
and a linked worktree of it: distinct spec numbers, both merged, neither run stepping on
the other (README, How a run works)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dagspec import checkout_move, ledgers, spec_dirs
from dagspec.workspace import runs_dir
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


def _held(path: Path) -> int:
    """``path`` locked by the test, standing for a stuck run of the repository."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _interrupted_waiting_for(project: Project, held: Path) -> tuple[str, str]:
    """``dag run`` of one spec while another process holds an ``flock`` on ``held``: once
    the run is seen blocked on it (``/proc/locks``), one SIGINT; its output, exit 130."""
    project.write_dag(dag_text("a"))
    fd = _held(held)
    try:
        driver = start_dag(project.repo, "run", "dag.yaml", "--run-id", "r")
        wait_for(lambda: _blocked_on(held) or driver.poll() is not None, timeout=60, what="a")
        assert driver.poll() is None
        driver.send_signal(signal.SIGINT)
        out, err = _ended(driver)
    finally:
        os.close(fd)
    assert driver.returncode == 130, out + err
    return out, err


def _ended(driver: subprocess.Popen[str]) -> tuple[str, str]:
    """What ``driver`` said once it ended, within 30 s; else it is killed, and the test
    fails (it sat through the Ctrl-C)."""
    try:
        return driver.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        driver.kill()
        out, err = driver.communicate()
        raise AssertionError(f"still running 30 s after a Ctrl-C: {out}{err}") from None


def holder(path: Path) -> subprocess.Popen[str]:
    """Another process (an orphaned git, another run) holding an ``flock`` on ``path``, once
    it says so; it lets go at a line on its stdin or when its stdin closes: the gate."""
    path.parent.mkdir(parents=True, exist_ok=True)
    code = (
        "import fcntl, os, sys\n"
        "fcntl.flock(os.open(sys.argv[1], os.O_RDWR | os.O_CREAT), fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "held\n"
    return child


def test_a_ctrl_c_stops_a_wait_for_the_move_lock_in_a_run_and_in_dag_merge(
    project: Project,
) -> None:
    """A stale holder of ``checkout-move.lock`` (an orphaned git, here a process standing
    for one): the end-of-run merge and ``dag merge`` said only "waiting for git to finish
    updating the checkout" and sat through every Ctrl-C in a blocking ``flock``. Each names
    the lock and its holder, says Ctrl-C stops the wait, and stops at the first, in one
    line that says how to merge."""
    project.write_dag(dag_text("a"))
    lock = runs_dir(project.repo) / checkout_move.LOCK
    held_by = holder(lock)
    try:
        for args in (("run", "dag.yaml", "--run-id", "r"), ("merge", "r")):
            driver = start_dag(project.repo, *args)
            blocked = lambda d=driver: _blocked_on(lock) or d.poll() is not None  # noqa: E731
            wait_for(blocked, timeout=60, what=f"dag {args[0]} waiting for the move lock")
            assert driver.poll() is None
            driver.send_signal(signal.SIGINT)
            out, err = _ended(driver)
            assert driver.returncode == 130, out + err
            assert (
                f"note: waiting for git to finish updating the checkout, which holds {lock}; "
                f"held by pid {held_by.pid} (python"
            ) in err, err
            assert "(Ctrl-C stops the wait)" in err, err
            stopped = [line for line in err.splitlines() if line.startswith("dag: error: ")]
            assert len(stopped) == 1 and stopped[0].startswith(
                "dag: error: the merge of run r stopped waiting for git to finish updating "
                f"the checkout ({lock}) at a Ctrl-C: nothing was merged; `"
            ), err
            assert "Traceback" not in out + err
            assert not (project.repo / "specs").exists()
        # a journal left by a killed move: each command settles it first, before its work
        journal = runs_dir(project.repo) / checkout_move.JOURNAL
        journal.write_text("{}")
        driver = start_dag(project.repo, "cleanup", "r")
        wait_for(lambda: _blocked_on(lock) or driver.poll() is not None, timeout=60, what="c")
        driver.send_signal(signal.SIGINT)
        out, err = _ended(driver)
        assert driver.returncode == 130, out + err
        assert err.endswith(  # not a bare "dag: interrupted"
            "(Ctrl-C stops the wait)\ndag: error: stopped waiting for git to finish updating "
            f"the checkout ({lock}) at a Ctrl-C: nothing was done\n"
        ), err
        journal.unlink()
    finally:
        held_by.communicate(input="")
    out, err = _ended(start_dag(project.repo, "merge", "r"))
    assert (project.repo / "specs").is_dir(), out + err


def test_a_ctrl_c_stops_a_wait_for_the_spec_number_ledger(project: Project) -> None:
    """Another run holds the ledger of spec numbers (stuck): the run says it waits for it,
    and a Ctrl-C ends the wait (a blocking ``flock`` in the worktree's thread sat through
    it, and a second one too). Its specs are called off, their worktrees recorded."""
    ledger = project.repo / ".git" / ledgers.SPEC_NUMBERS
    out, err = _interrupted_waiting_for(project, ledger)
    assert f"note: waiting for another run of this repository, which holds {ledger}" in err
    assert "Traceback" not in out + err
    assert project.statuses() == {"a": "pending"}
    assert project.state().spec("a").worktree == str(project.worktree("a"))


def test_a_ctrl_c_stops_a_wait_for_another_runs_update_of_the_checkout(project: Project) -> None:
    """The end-of-run merge waits for the checkout's lock (another run's update): the first
    Ctrl-C ends the wait, nothing merged, in one line that says how to merge (not that a
    second Ctrl-C stops a signer, with no signer)."""
    lock = project.repo / ".git" / checkout_move.CHECKOUT_LOCK
    out, err = _interrupted_waiting_for(project, lock)
    stopped = [line for line in err.splitlines() if line.startswith("dag: error: ")]
    assert len(stopped) == 1 and stopped[0].startswith(
        f"dag: error: the merge of run r stopped waiting for another run's update of "
        f"{project.repo} at a Ctrl-C: nothing was merged; `"
    ), err
    assert stopped[0].endswith(" merge r` merges it"), err
    assert "signer" not in err and "Traceback" not in out + err
    assert not (project.repo / "specs").exists()
    assert git(project.repo, "status", "--porcelain", "--untracked-files=no") == ""


def test_a_ctrl_c_while_another_run_holds_the_run_id_ledger_leaves_nothing(
    project: Project,
) -> None:
    """The run's directory is made before its id is written down: a Ctrl-C while another
    run holds the ledger of run ids left it behind, empty."""
    project.write_dag(dag_text("a"))
    ledger = project.repo / ".git" / ledgers.RUN_IDS
    fd = _held(ledger)
    try:
        driver = start_dag(project.repo, "run", "dag.yaml")
        wait_for(lambda: _blocked_on(ledger) or driver.poll() is not None, timeout=60, what="id")
        assert driver.poll() is None
        driver.send_signal(signal.SIGINT)
        out, err = driver.communicate(timeout=30)
    finally:
        os.close(fd)
    assert driver.returncode == 130, out + err
    assert f"note: waiting for another run of this repository, which holds {ledger}" in err
    assert "Traceback" not in out + err
    runs = project.repo / ".autospec" / "state" / "dag-runs"
    assert not runs.exists() or list(runs.iterdir()) == []
    assert ledger.read_text() == ""
