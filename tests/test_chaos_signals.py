"""Chaos beyond SIGKILL (issue 11): SIGINT to the driver's process group (a terminal's
Ctrl-C), SIGTERM, SIGHUP and SIGKILL at seeded random moments of a run whose specs write
large files. Half the moments are aimed with a gate (``tests.git_gates.CommandGate``) inside
the final merge (the fast-forward of the checkout, the compare-and-swap of a branch, the
merges built as objects) and inside the removal of a merged spec's worktree; the others are
random times. Afterwards the user's checkout is as it was or fully fast-forwarded, git status
shows nothing dagspec wrote, and resume converges with every spec merged exactly once.

``DAGSPEC_CHAOS_TRIALS`` trials per signal (default 1, CI-sized; the issue's 20 each is
``DAGSPEC_CHAOS_TRIALS=20``); ``DAGSPEC_CHAOS_SEED`` changes the moments. Last full run
(20 per signal, 80 trials, seed 20261130): see ``bench/RESULTS.md``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagspec import checkout_move
from dagspec.workspace import RunPaths, runs_dir
from tests.conftest import ROOT, git
from tests.engine_support import Project, dag_text
from tests.fake_autospec_fixture import FAKE_DIR, wait_for
from tests.git_gates import CommandGate, wait_gone

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow

TRIALS = int(os.environ.get("DAGSPEC_CHAOS_TRIALS", "1"))
SEED = int(os.environ.get("DAGSPEC_CHAOS_SEED", "20261130"))
SIGNALS = {"int-group": signal.SIGINT, "term": signal.SIGTERM, "hup": signal.SIGHUP}
SIGNALS["kill"] = signal.SIGKILL
SPECS = ("a", "b", ("c", ["a"]))
BIG = 8 * 1024 * 1024  # bytes each spec's agent writes: a checkout that takes a while


def _wrapper(tmp_path: Path) -> Path:
    """autospec as the fake, which then writes a large file into the spec's work."""
    path = tmp_path / "autospec-big"
    path.write_text(
        "#!/bin/sh\n"
        f'"{FAKE_DIR / "autospec"}" "$@" || exit $?\n'
        # only for a run: preflight asks `autospec --version` in the user's checkout
        f'[ "$1" = run ] && head -c {BIG} /dev/urandom > "big-$(basename "$PWD").bin"\n'
        "exit 0\n"
    )
    path.chmod(0o755)
    return path


def _dag(
    project: Project, *args: str, autospec: Path, path: str | None = None
) -> subprocess.Popen[bytes]:
    """``dag ARGS`` in its own session, as the foreground job of a terminal would be; with
    ``path`` first on PATH (a gate's ``git``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if path is not None:
        env["PATH"] = f"{path}{os.pathsep}{env['PATH']}"
    return subprocess.Popen(
        [sys.executable, "-m", "dagspec", *args, "--autospec", str(autospec)],
        cwd=project.repo,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


# Where a gate can hold the driver: the fast-forward of the user's checkout, the
# compare-and-swap of a branch, a merge built as objects, the removal of a worktree.
GATES = ("merge --ff-only", "update-ref", "merge-tree", "worktree remove")


def _moment(rng: random.Random, tmp_path: Path) -> CommandGate | float:
    """A gate inside git, or a time after the start (seconds): half and half."""
    if rng.random() < 0.5:
        return rng.uniform(0.0, 8.0)
    return CommandGate(tmp_path / "gate", rng.choice(GATES))


def _wait_for_moment(driver: subprocess.Popen[bytes], moment: CommandGate | float) -> None:
    if isinstance(moment, float):
        time.sleep(moment)  # the random moment is the point of this test
    else:
        reached = lambda: moment.reached() or driver.poll() is not None  # noqa: E731
        wait_for(reached, timeout=120, what=f"the gate at git {moment.words}")


def _settled_checkout(repo: Path, moment: CommandGate | float) -> None:
    """Let a git a killed driver left behind end (it finishes what it started): the one
    held at the gate, and the checkout's move, whose lock that git holds."""
    if isinstance(moment, CommandGate) and moment.reached():
        held = moment.wait()  # the git itself, once the gate's shell has exec'd it
        moment.release()
        wait_gone(held)
    lock = runs_dir(repo) / checkout_move.LOCK
    if lock.exists():
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held while a git of a move still runs
        finally:
            os.close(fd)
    wait_for(lambda: not (repo / ".git" / "index.lock").exists(), timeout=60, what="index.lock")


@contextlib.contextmanager
def _ended(driver: subprocess.Popen[bytes], moment: CommandGate | float) -> Iterator[None]:
    """However the block ends, nothing of the trial is left running: a held git is let go,
    a driver still running is killed."""
    try:
        yield
    finally:
        if isinstance(moment, CommandGate) and moment.reached():
            moment.release()
        if driver.poll() is None:
            driver.kill()
            driver.communicate()


@pytest.mark.parametrize("trial", range(TRIALS))
@pytest.mark.parametrize("how", list(SIGNALS))
def test_a_signal_at_any_moment_loses_nothing_and_resume_converges(
    project: Project, tmp_path: Path, how: str, trial: int
) -> None:
    rng = random.Random(f"{SEED}-{how}-{trial}")
    autospec = _wrapper(tmp_path)
    project.write_dag(dag_text(*SPECS))
    git(project.repo, "add", "-A")
    git(project.repo, "commit", "-qm", "the DAG and autospec's set-up")
    before = git(project.repo, "rev-parse", "HEAD").strip()
    moment = _moment(rng, tmp_path)
    gated = moment.path if isinstance(moment, CommandGate) else None
    args = ("run", "dag.yaml", "--run-id", "r", "--parallel")
    driver = _dag(project, *args, autospec=autospec, path=gated)
    with _ended(driver, moment):
        _wait_for_moment(driver, moment)
        if driver.poll() is not None:
            pass  # it ended before the moment came: nothing to interrupt
        elif how == "int-group":
            os.killpg(driver.pid, signal.SIGINT)
        else:
            driver.send_signal(SIGNALS[how])
        if isinstance(moment, CommandGate) and moment.reached() and how != "kill":
            moment.release()  # a deferred signal waits for the step it came in: let it end
        out, _ = driver.communicate(timeout=120)
    assert b"bug" not in out, out.decode()
    _settled_checkout(project.repo, moment)
    head = git(project.repo, "rev-parse", "HEAD").strip()
    assert git(project.repo, "status", "--porcelain", "--untracked-files=all") == ""
    if head != before:  # fully fast-forwarded: the checkout is what HEAD says
        assert git(project.repo, "merge-base", "--is-ancestor", before, head) == ""

    for _ in range(3):
        started = RunPaths(project.repo, "r").state_file.exists()
        args = ("resume", "r") if started else ("run", "dag.yaml", "--run-id", "r")
        again = _dag(project, *args, autospec=autospec)
        out, _ = again.communicate(timeout=180)
        if again.returncode == 0:
            break
    assert again.returncode == 0, out.decode()
    assert project.statuses() == {"a": "completed", "b": "completed", "c": "completed"}
    assert all(s.merged and s.worktree is None for s in project.state().specs)
    subjects = git(project.repo, "log", "--first-parent", "--format=%s", f"{before}..main")
    for spec_id in ("a", "b", "c"):
        merges = subjects.splitlines().count(f"Merge dag/r/{spec_id}: {spec_id}")
        assert merges == 1, subjects
    assert git(project.repo, "status", "--porcelain", "--untracked-files=all") == ""
    for spec_id in ("a", "b", "c"):
        assert (project.repo / f"big-{spec_id}.bin").stat().st_size == BIG
