"""A run id given with ``--run-id`` is claimed where every checkout of the repository sees it
(``run_ids.claim_given``): two runs from two checkouts given the same id at the same moment
both passed preflight, and the second then deleted the first's live branches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import ledgers, preflight, run_ids
from dagspec.dagfile import load_dag
from dagspec.lifecycle import RunOptions
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.engine_support import Project, dag_text
from tests.fake_autospec_fixture import make_autospec_project

pytest_plugins = ("tests.engine_fixtures",)

RunCli = Callable[..., int]


def _linked(project: Project) -> Path:
    linked = project.repo.parent / "linked"
    git(project.repo, "worktree", "add", "-q", "-b", "side", str(linked))
    make_autospec_project(linked)
    (linked / "dag.yaml").write_text(dag_text("b", extra='execution:\n  base_branch: "side"'))
    return linked


@pytest.mark.slow  # a whole run at its end
def test_an_id_another_checkout_s_run_took_at_the_same_moment_is_refused(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The main checkout's run has passed preflight with `--run-id r` and made nothing yet
    (no branch, no worktree: the moment both started); the linked worktree's `dag run
    --run-id r` is refused in one line, writing nothing, touching nothing of the other's."""
    dag = load_dag(project.write_dag(dag_text("a")), repo=project.repo)
    preflight.before_run(project.repo, dag, RunOptions(), "r", dry_run=False)
    theirs = RunPaths(project.repo, "r").run_dir
    theirs.mkdir(parents=True, exist_ok=True)  # made by its claim, or next by its start
    linked = _linked(project)
    (theirs / "mine.txt").write_text("the other run's\n")
    monkeypatch.chdir(linked)

    assert run_cli("run", "dag.yaml", "--run-id", "r") == 1
    captured = capsys.readouterr()
    assert captured.err == (
        f"dag: error: run 'r' is taken by another run of this repository, whose record is "
        f"{theirs} (another checkout's, or one starting now): choose another --run-id, or "
        f"leave it out to have one made\n"
    ), captured.err
    assert not (linked / ".autospec" / "state" / "dag-runs" / "r").exists()
    assert git(project.repo, "branch", "--list", "dag/*") == ""
    assert (theirs / "mine.txt").read_text() == "the other run's\n"
    ledger = project.repo / ".git" / ledgers.RUN_IDS
    assert ledger.read_text() == f"r\t{theirs}\n"  # the refused run wrote nothing

    (theirs / "mine.txt").unlink()
    theirs.rmdir()  # the other run gone (forgotten): its id is free again
    assert run_cli("run", "dag.yaml", "--run-id", "r") == 0, capsys.readouterr()
    assert git(linked, "rev-parse", "--verify", "-q", "side:specs") != ""


def test_a_made_id_is_never_one_a_given_id_claimed(git_repo: Path) -> None:
    """The ledger's lines of given ids carry their run's directory: the made ids read
    the id alone from them."""
    (git_repo / ".git" / ledgers.RUN_IDS).write_text("t-20261201-050000\t/nowhere\n")
    assert not run_ids.free(git_repo, "t-20261201-050000", None)
    assert run_ids.free(git_repo, "t-20261201-050001", None)
