"""The base branch or its checkout moved between the merge's build and its publication,
while ``dag merge`` waited for the move lock (held here by a process of the test's, as
another run's update would hold it, released once the user's move is done).

git's ``merge --ff-only`` takes any ancestor of the chain's head: a reset of the checked-out
base branch during the wait was fast-forwarded over, and the commit it dropped came back.
The checkout is asked again once the locks are held: the chain is built again on the new
tip, refused when the base was rewritten, or the result parked when the checkout is in the
way, and the new place of a branch moved to another checkout is found.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import checkout_move
from dagspec.workspace import runs_dir
from tests.conftest import git
from tests.engine_support import Project, dag_text, start_dag
from tests.fake_autospec_fixture import wait_for
from tests.git_gates import CommandGate
from tests.test_concurrent_runs import holder
from tests.test_ledgers import _blocked_on

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow


def _commit(repo: Path, name: str, text: str = "x\n") -> str:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-qm", f"add {name}")
    return git(repo, "rev-parse", "HEAD").strip()


def _merge_while_held(project: Project, move: Callable[[Path], None]) -> tuple[int, str]:
    """``dag merge r`` of a finished run of spec a, with ``move`` done by the user while the
    merge waits for the move lock; its exit code and output."""
    lock = runs_dir(project.repo) / checkout_move.LOCK
    held_by = holder(lock)
    try:
        driver = start_dag(project.repo, "merge", "r")
        waiting = lambda: _blocked_on(lock) or driver.poll() is not None  # noqa: E731
        wait_for(waiting, timeout=60, what="dag merge waiting for the move lock")
        assert driver.poll() is None, driver.communicate()
        move(project.repo)
    finally:
        held_by.communicate(input="")
    out, err = driver.communicate(timeout=60)
    assert "Traceback" not in out + err
    return driver.returncode, out + err


def _dag(repo: Path, *args: str) -> tuple[int, str]:
    driver = start_dag(repo, *args)
    out, err = driver.communicate(timeout=120)
    return driver.returncode, out + err


@pytest.fixture
def finished(project: Project) -> Project:
    """A run ``r`` of spec a, not merged (started on ``base2``), then secret.txt committed."""
    _commit(project.repo, "base2.txt")
    project.write_dag(dag_text("a"))
    code, said = _dag(project.repo, "run", "dag.yaml", "--run-id", "r", "--no-merge")
    assert code == 0, said
    _commit(project.repo, "secret.txt")
    return project


def _log(repo: Path, rev: str = "main") -> str:
    return git(repo, "log", "--format=%s", rev)


def test_a_reset_of_the_checked_out_base_during_the_wait_is_not_undone(
    finished: Project,
) -> None:
    repo = finished.repo
    code, said = _merge_while_held(finished, lambda r: git(r, "reset", "-q", "--hard", "HEAD~1"))
    assert code == 0, said
    assert "add secret.txt" not in _log(repo), said  # the reset is kept
    assert not (repo / "secret.txt").exists()
    assert (repo / "specs").is_dir() and "add base2.txt" in _log(repo)
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert finished.state().spec("a").merged


def test_a_reset_past_the_runs_base_during_the_wait_is_refused_as_rewritten(
    finished: Project,
) -> None:
    repo = finished.repo
    code, said = _merge_while_held(finished, lambda r: git(r, "reset", "-q", "--hard", "HEAD~2"))
    assert code != 0, said
    assert "rewritten" in said, said
    assert "add base2.txt" not in _log(repo) and "add secret.txt" not in _log(repo)
    assert not (repo / "specs").exists() and not finished.state().spec("a").merged


def test_a_soft_reset_during_the_wait_parks_the_result_rebuilt_on_the_new_tip(
    finished: Project,
) -> None:
    """The branch moved back and the checkout holds the dropped commit's change staged: the
    chain is built on the new tip, and waits, as the checkout has uncommitted changes."""
    repo = finished.repo
    reset = git(repo, "rev-parse", "HEAD~1").strip()
    code, said = _merge_while_held(finished, lambda r: git(r, "reset", "-q", "--soft", "HEAD~1"))
    assert "uncommitted changes (secret.txt)" in said, said
    assert git(repo, "rev-parse", "main").strip() == reset
    assert "add secret.txt" not in _log(repo, "dag/r/_merged")
    assert git(repo, "rev-parse", "dag/r/_merged^").strip() == reset
    assert not finished.state().spec("a").merged and code != 0


@pytest.mark.parametrize("switch", ["another branch", "detached"])
def test_a_checkout_switched_away_from_the_base_during_the_wait_is_left_alone(
    finished: Project, switch: str
) -> None:
    """git's fast-forward moves whatever HEAD names: the branch the checkout was switched
    to (an ancestor of the chain) was moved in the base branch's stead."""
    repo = finished.repo
    secret, before = (git(repo, "rev-parse", r).strip() for r in ("main", "main~1"))
    args = ("-b", "other") if switch == "another branch" else ("--detach",)
    code, said = _merge_while_held(finished, lambda r: git(r, "checkout", "-q", *args, "HEAD~1"))
    assert code == 0, said
    assert git(repo, "rev-parse", "HEAD").strip() == before, said  # not moved
    assert git(repo, "status", "--porcelain", "-uno") == "" and not (repo / "specs").exists()
    if switch == "another branch":
        assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/other"
    assert git(repo, "rev-parse", "main^").strip() == secret  # moved where it is, as a branch
    assert "specs" in git(repo, "ls-tree", "--name-only", "main").split()
    assert finished.state().spec("a").merged


def test_an_untracked_file_made_during_the_wait_parks_the_result_naming_it(
    finished: Project,
) -> None:
    """The file the merge would overwrite was made while the merge waited: git refused and
    its message, cut at its first line, named no file."""
    repo = finished.repo
    tip = git(repo, "rev-parse", "main").strip()
    spec_dir = next(
        p
        for p in git(repo, "ls-tree", "-r", "--name-only", "dag/r/a").split()
        if p.startswith("specs/")
    )

    def make(r: Path) -> None:
        (r / spec_dir).parent.mkdir(parents=True, exist_ok=True)
        (r / spec_dir).write_text("mine\n")

    code, said = _merge_while_held(finished, make)
    assert f"untracked files the merge would overwrite ({spec_dir})" in said, said
    assert git(repo, "rev-parse", "main").strip() == tip
    assert (repo / spec_dir).read_text() == "mine\n" and code != 0


def test_the_base_checked_out_elsewhere_during_the_wait_is_fast_forwarded_there(
    finished: Project,
) -> None:
    """The user took main to a worktree of its own while the merge waited: that checkout is
    the one fast-forwarded, not the one it left (detached)."""
    repo = finished.repo
    other = repo.parent / "other"

    def move(r: Path) -> None:
        git(r, "checkout", "-q", "--detach")
        git(r, "worktree", "add", "-q", str(other), "main")

    code, said = _merge_while_held(finished, move)
    assert code == 0, said
    assert (other / "specs").is_dir() and not (repo / "specs").exists(), said
    assert git(other, "status", "--porcelain", "-uno") == ""
    assert git(repo, "rev-parse", "HEAD").strip() == git(repo, "rev-parse", "main^").strip()


def test_an_edit_made_during_the_wait_parks_the_result_naming_it(finished: Project) -> None:
    repo = finished.repo
    tip = git(repo, "rev-parse", "main").strip()
    code, said = _merge_while_held(finished, lambda r: (r / "secret.txt").write_text("edit\n"))
    assert "uncommitted changes (secret.txt)" in said and code != 0, said
    assert git(repo, "rev-parse", "main").strip() == tip
    assert (repo / "secret.txt").read_text() == "edit\n"


def test_a_reset_just_before_git_fast_forwards_is_taken_back_and_merged_again(
    finished: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkout is asked with the locks held, and git's ``merge --ff-only`` starts a
    moment later, reading the tip it moves from afresh: a reset in that moment (held here
    by a gate before git runs) was fast-forwarded over. git's ``ORIG_HEAD`` names the tip
    it moved from: the move is taken back, and the merges built again on the reset tip."""
    repo = finished.repo
    reset = git(repo, "rev-parse", "HEAD~1").strip()
    gate = CommandGate(tmp_path / "gate", "--ff-only")
    monkeypatch.setenv("PATH", f"{gate.path}{os.pathsep}{os.environ['PATH']}")
    driver = start_dag(repo, "merge", "r")
    gate.wait()
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    gate.release()
    out, err = driver.communicate(timeout=60)
    assert driver.returncode == 0, out + err
    assert "Traceback" not in out + err
    assert "add secret.txt" not in _log(repo) and not (repo / "secret.txt").exists(), out + err
    assert git(repo, "rev-parse", "main^").strip() == reset and (repo / "specs").is_dir()
    assert git(repo, "status", "--porcelain", "-uno") == ""
    assert finished.state().spec("a").merged
    assert not (runs_dir(repo) / checkout_move.JOURNAL).exists()
