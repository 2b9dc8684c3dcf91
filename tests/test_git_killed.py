"""git itself killed in the middle of moving the user's checkout, inside a real ``dag run``
(issue 11): the run's final ``git merge --ff-only`` is held by a smudge filter after it has
written the files before the held one and taken ``index.lock``, and then SIGKILLed, with its
driver alive (the OOM killer's choice) or killed first. Afterwards no stale ``index.lock``
is left, the checkout is as it was or fully moved, git status shows nothing dagspec wrote,
and ``resume`` converges with every spec merged once."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from dagspec import checkout_move
from dagspec.workspace import runs_dir
from tests.conftest import git
from tests.engine_support import Project, branches, dag_text
from tests.git_gates import FilterGate, wait_gone
from tests.test_chaos_signals import BIG, _dag, _wrapper

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow  # three agents writing 8 MB each, a run and a resume


def _status(repo: Path) -> str:
    return git(repo, "status", "--porcelain", "--untracked-files=all")


def _gate_in_checkout(repo: Path, where: Path, name: str) -> FilterGate:
    """A gate that holds git at writing ``name`` in the user's checkout only, not in the
    spec's worktree that makes it."""
    gate = FilterGate(repo, where)
    (repo / ".git" / "info" / "attributes").write_text(f"{name} filter=gate\n")
    smudge = gate.dir / "smudge"
    held = smudge.read_text().replace("#!/bin/sh\n", f'#!/bin/sh\n[ "$PWD" = "{repo}" ] &&\n', 1)
    smudge.write_text(held)
    return gate


@pytest.mark.parametrize("driver_too", [False, True], ids=["git-only", "driver-then-git"])
def test_git_killed_mid_checkout_leaves_no_lock_and_resume_converges(
    project: Project, tmp_path: Path, driver_too: bool
) -> None:
    autospec = _wrapper(tmp_path)
    project.write_dag(dag_text("a", "b", ("c", ["a"])))
    git(project.repo, "add", "-A")
    git(project.repo, "commit", "-qm", "the DAG and autospec's set-up")
    repo, before = project.repo, git(project.repo, "rev-parse", "HEAD").strip()
    # git writes big-a.bin, then holds at big-b.bin: only the checkout of the user's main
    # has it (each spec's worktree starts without it), and only in the final merge.
    gate = _gate_in_checkout(repo, tmp_path / "gate", "big-b.bin")

    driver = _dag(project, "run", "dag.yaml", "--run-id", "r", "--parallel", autospec=autospec)
    try:
        group = gate.git_group()  # git's process group: git and its filter
        assert (repo / "big-a.bin").stat().st_size == BIG  # git has begun writing files
        assert (repo / ".git" / "index.lock").exists()
        if driver_too:
            driver.kill()
        os.killpg(group, signal.SIGKILL)
        wait_gone(group)
        out, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert b"bug" not in out, out.decode()
    if not driver_too:  # the driver saw its git killed, and settled at once
        assert driver.returncode == 1, out.decode()
        assert b"undid the interrupted update" in out, out.decode()
        said = f"git was killed by SIGKILL during the update of {repo}; it was undone; `"
        assert re.search(re.escape(said) + ".* merge r` does it again", out.decode()), out
        assert b"The merged result waits on dag/r/_merged.\n" in out
        assert b"exit code -9" not in out and b"once the checkout is clean" not in out
        assert not (repo / ".git" / "index.lock").exists()
        assert not (runs_dir(repo) / checkout_move.ENDED).exists()
        assert git(repo, "rev-parse", "HEAD").strip() == before
        assert _status(repo) == ""  # byte for byte as it was: nothing of git's is left

    again = _dag(project, "resume", "r", autospec=autospec)
    out, _ = again.communicate(timeout=180)
    assert again.returncode == 0, out.decode()
    if driver_too:
        assert b"undid the interrupted update" in out, out.decode()
    assert not (repo / ".git" / "index.lock").exists()
    assert not (runs_dir(repo) / checkout_move.JOURNAL).exists()
    assert project.statuses() == {"a": "completed", "b": "completed", "c": "completed"}
    assert all(s.merged and s.worktree is None for s in project.state().specs)
    assert _status(repo) == ""
    subjects = git(repo, "log", "--first-parent", "--format=%s", f"{before}..main").splitlines()
    for spec_id in ("a", "b", "c"):
        assert subjects.count(f"Merge dag/r/{spec_id}: {spec_id}") == 1, subjects
        assert (repo / f"big-{spec_id}.bin").stat().st_size == BIG


def test_driver_killed_once_a_moved_base_was_fast_forwarded_merges_nothing_twice(
    project: Project, tmp_path: Path
) -> None:
    """The base branch moved during the run, so b, c and d are replayed onto the chain (not
    ancestors of it); the driver is SIGKILLed while its git is held in the fast-forward, and
    git then finishes alone: the base has every merge, the state none. ``resume`` records
    them as merged and merges nothing twice (issue 11)."""
    repo = project.repo
    wrapper = tmp_path / "autospec-moves-base"
    # a's agent commits on the user's main, so the base branch moves during the run
    wrapper.write_text(
        "#!/bin/sh\n"
        f'"{_wrapper(tmp_path)}" "$@" || exit $?\n'
        f'[ "$1" = run ] && [ "$(basename "$PWD")" = a ] && '
        f'env -u GIT_DIR -u GIT_WORK_TREE -u GIT_INDEX_FILE git -C "{repo}" '
        "commit -q --allow-empty -m 'the user commits meanwhile'\n"
        "exit 0\n"
    )
    wrapper.chmod(0o755)
    project.write_dag(dag_text("a", ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "the DAG and autospec's set-up")
    before = git(repo, "rev-parse", "HEAD").strip()
    gate = _gate_in_checkout(repo, tmp_path / "gate", "big-d.bin")

    driver = _dag(project, "run", "dag.yaml", "--run-id", "r", "--parallel", autospec=wrapper)
    try:
        group = gate.git_group()
        driver.kill()
        driver.communicate(timeout=60)
        assert gate.release()  # git goes on alone, in its own process group, and finishes
        wait_gone(group)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    subjects = git(repo, "log", "--first-parent", "--format=%s", f"{before}..main").splitlines()
    assert len([s for s in subjects if s.startswith("Merge ")]) == 4, subjects
    assert not any(s.merged for s in project.state().specs)  # the driver recorded nothing

    again = _dag(project, "resume", "r", autospec=wrapper)
    out, _ = again.communicate(timeout=180)
    assert again.returncode == 0, out.decode()
    subjects = git(repo, "log", "--first-parent", "--format=%s", f"{before}..main").splitlines()
    for spec_id in ("a", "b", "c", "d"):
        assert subjects.count(f"Merge dag/r/{spec_id}: {spec_id}") == 1, subjects
    assert len(git(repo, "log", "--merges", "--format=%s", f"{before}..main").splitlines()) == 4
    assert all(s.merged and s.worktree is None for s in project.state().specs)
    assert not [b for b in branches(repo) if b.startswith("dag/r/")], branches(repo)
    assert _status(repo) == ""
