"""A spec whose merge was dropped from the base branch (a reset) and then pruned (``git gc
--prune=now``), with no branch left: its work is no longer in the repository. The first
`dag merge` says so, records it failed (so `dag retry` does it again) and merges the
others; no loop of "branch missing". Real git in temporary repositories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import state as dstate
from dagspec.console import dag_command
from dagspec.lifecycle import RunStatus, SpecStatus
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.test_merge import RUN, add_commit, branch, make_run

Cli = Callable[..., int]
AB = {"a": ((), {"a.txt": "a\n"}), "b": ((), {"b.txt": "b\n"})}


def merged_dropped_and_pruned(repo: Path, run_cli: Cli) -> RunPaths:
    """a and b merged, their branches deleted, b's merge dropped by a reset and pruned."""
    paths = make_run(repo, AB)
    assert run_cli("merge", RUN) == 0
    git(repo, "branch", "-q", "-D", branch("a"), branch("b"))
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    return paths


def test_work_pruned_after_its_merge_was_dropped_is_said_lost_the_first_time(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = merged_dropped_and_pruned(git_repo, run_cli)
    lost = dstate.load(paths).spec("b").merge_commit
    assert lost is not None
    add_commit(git_repo, {"c.txt": "c\n"}, "the user's work")  # main moves on: a is kept
    capsys.readouterr()

    assert run_cli("merge", RUN) == 1
    out = capsys.readouterr().out
    assert f"  work lost       b  no longer in this repository: {lost[:12]} pruned" in out
    assert "The work of b is no longer in this repository" in out
    assert f"now recorded failed; `{dag_command()} retry r1 b` does it again" in out
    assert "branch missing" not in out and "merge dropped" not in out
    run = dstate.load(paths)
    b = run.spec("b")
    assert b.status is SpecStatus.FAILED and not b.merged and b.error is not None
    assert "`dag retry r1 b` does it again, or `dag cleanup r1 --forget`" in b.error
    assert run.spec("a").merged and run.status is RunStatus.FAILED

    assert run_cli("status", RUN) == 1
    assert f"next: {dag_command()} retry r1 b\n" in capsys.readouterr().out
    assert run_cli("merge", RUN) == 0  # nothing to merge: b is failed, not "branch missing"
    assert "branch missing" not in capsys.readouterr().out
    assert run_cli("cleanup", RUN, "--forget") == 0


@pytest.mark.slow
def test_dag_retry_does_lost_work_again(
    runnable: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    git(runnable, "add", "-A")
    git(runnable, "commit", "-q", "-m", "autospec init")
    paths = merged_dropped_and_pruned(runnable, run_cli)
    assert run_cli("merge", RUN) == 1
    capsys.readouterr()
    assert run_cli("retry", RUN, "b") == 0, capsys.readouterr().err
    run = dstate.load(paths)
    assert run.status is RunStatus.COMPLETED and all(s.merged for s in run.specs)
    assert git(runnable, "rev-parse", "main").strip() == run.spec("b").merge_commit


def test_work_lost_with_its_dependency_s_is_retried_with_it(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """b depends on a, both lost: the advice was `dag retry r1 b` for b, which left b
    blocked behind a; it names a with it, in one retry of both."""
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"}), "b": (("a",), {"b.txt": "b\n"})})
    assert run_cli("merge", RUN) == 0
    git(git_repo, "branch", "-q", "-D", branch("a"), branch("b"))
    git(git_repo, "reset", "-q", "--hard", "HEAD~2")
    git(git_repo, "reflog", "expire", "--expire=now", "--all")
    git(git_repo, "gc", "-q", "--prune=now")
    add_commit(git_repo, {"c.txt": "c\n"}, "the user's work")
    capsys.readouterr()

    assert run_cli("merge", RUN) == 1
    out = capsys.readouterr().out.replace(dag_command(), "dag")
    assert "The work of a, b is no longer in this repository (their merges were dropped" in out
    assert "now recorded failed; `dag retry r1 a b` does them again" in out, out
    assert "retry r1 b`" not in out
    run = dstate.load(paths)
    assert "`dag retry r1 a` does it again" in (run.spec("a").error or "")
    assert "`dag retry r1 a b` does it again" in (run.spec("b").error or "")
    assert run_cli("status", RUN) == 1
    assert "next: dag retry r1 a b\n" in capsys.readouterr().out.replace(dag_command(), "dag")
