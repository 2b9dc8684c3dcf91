"""``dag cleanup`` after a merge was dropped from the base branch (``git reset``, an aborted
rebase): the state still says "merged", but only git says what the base has now. A spec
branch the base lacks is the only ref holding the spec's work: it stays, named with what
to do, with or without ``--forget``. Real git in temporary repositories; runs built as
``test_merge`` builds them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import state as dstate
from dagspec.console import dag_command
from dagspec.merge import merge_run
from dagspec.removal import remove_merged_worktrees, render_cleanup
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.test_merge import RUN, branch, load, make_run, tip
from tests.test_merge_rebasing import A
from tests.test_squash_merged import branches

Cli = Callable[..., int]


def merged_then_dropped(repo: Path) -> tuple[RunPaths, str]:
    """Spec a merged by ``dag merge`` and recorded so, then main reset to before the merge:
    a's commit is on its branch only. Returns the run and that commit."""
    paths = make_run(repo, A)
    state, _ = merge_run(repo, *load(paths))
    assert state.spec("a").merged
    dstate.save(state, paths.state_file)
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    return paths, tip(repo, branch("a"))


@pytest.mark.parametrize("flags", [(), ("--forget",), ("--force",), ("--forget", "--force")])
def test_a_branch_whose_merge_was_dropped_stays(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], flags: tuple[str, ...]
) -> None:
    _, work = merged_then_dropped(git_repo)
    code = run_cli("cleanup", RUN, *flags)
    captured = capsys.readouterr()
    assert code == (0 if "--forget" in flags else 1), captured
    assert (
        f"kept {branch('a')}: 1 commit not on main (its merge is no longer on main)\n"
        in captured.out
    )
    hint = "`git merge BRANCH` takes one's work, `git branch -D BRANCH` drops it"
    assert hint in (captured.out if "--forget" in flags else captured.err)
    assert branch("a") in branches(git_repo) and tip(git_repo, branch("a")) == work


def replayed_then_dropped(repo: Path) -> tuple[RunPaths, str]:
    """Spec a replayed onto a rewritten main (``dag merge --onto-current``: main has its
    work in content, not in history) and recorded so, then main reset to before that
    merge: its work is on its branch only. Returns the run and that branch's tip."""
    paths = make_run(repo, A)
    git(repo, "commit", "-q", "--amend", "-m", "initial, reworded")  # main rewritten
    state, _ = merge_run(repo, *load(paths), onto_current=True)
    merge = state.spec("a").merge_commit
    assert merge is not None and git(repo, "rev-parse", f"{merge}^2").strip() != tip(
        repo, branch("a")
    )  # a replay, not a's branch itself
    dstate.save(state, paths.state_file)
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    return paths, tip(repo, branch("a"))


def test_a_branch_whose_replayed_merge_was_dropped_stays(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """The replay the state records is no longer on main: it says nothing of main now."""
    _, work = replayed_then_dropped(git_repo)
    assert run_cli("cleanup", RUN, "--forget") == 0
    out = capsys.readouterr().out
    # 1: its own; the commit main dropped (the initial one, reworded) is not its work
    assert f"kept {branch('a')}: 1 commit not on main (its merge is no longer on main)" in out
    assert "`git merge" not in out.replace("(`git merge` would", "")  # it brings that back
    assert " merge r1 --onto-current` replays a completed spec's work" in out
    assert tip(git_repo, branch("a")) == work


def test_removing_merged_worktrees_keeps_a_branch_whose_replayed_merge_was_dropped(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """The end of a run and ``dag merge --cleanup`` delete branches the same way. The
    advice was `git merge dag/r1/a`, which brings back the commit main dropped (every
    branch of the run holds it); `dag merge --onto-current` replays a's work alone."""
    paths, work = replayed_then_dropped(git_repo)
    dropped = git(git_repo, "rev-parse", f"{work}~1").strip()  # main's initial commit, as was
    state = dstate.load(paths)
    cleaned = remove_merged_worktrees(git_repo, state)
    assert tip(git_repo, branch("a")) == work
    b = branch("a")
    assert render_cleanup(state, cleaned, only_unseen=True) == (
        f"kept branch {b}: main no longer has its work (its merge was dropped?): "
        f"`dag merge r1 --onto-current` replays it, `git branch -D {b}` drops it\n"
    )
    dstate.save(cleaned.run, paths.state_file)
    assert run_cli("merge", RUN, "--onto-current") == 0  # as advised
    assert "  merged          a  " in capsys.readouterr().out
    assert "main" not in git(git_repo, "branch", "--format=%(refname:short)", "--contains", dropped)
    assert (git_repo / "a.txt").exists()


def test_status_says_a_dropped_merge_is_not_merged_before_the_next_merge(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """``dag status`` asks git whether each recorded merge is still on the base branch:
    after the reset it no longer says "merged", and says what to do (exit 1: completed
    work is off the base branch). The state file is left as it is (status writes nothing)."""
    paths, _ = merged_then_dropped(git_repo)
    recorded = paths.state_file.read_bytes()
    assert run_cli("status", RUN) == 1
    out = capsys.readouterr().out
    assert "merged" not in out.replace("not merged yet", ""), out
    assert (
        "note: main no longer has the merge of a (reset, or a rebase aborted after the "
        "merge?): `dag merge r1` merges it again\n"
    ) in out.replace(dag_command(), "dag"), out
    assert "next: dag merge r1" in out.replace(dag_command(), "dag"), out
    assert run_cli("status", RUN, "--json") == 1
    shown = json.loads(capsys.readouterr().out)
    assert (shown["specs"][0]["merged"], shown["specs"][0]["merge_commit"]) == (False, None)
    assert paths.state_file.read_bytes() == recorded

    git(git_repo, "reset", "-q", "--hard", "ORIG_HEAD")  # the merge is back on main
    assert run_cli("status", RUN) == 0
    out = capsys.readouterr().out
    assert "no longer has" not in out, out
    assert "next: dag cleanup r1" in out.replace(dag_command(), "dag"), out  # its branch stays
