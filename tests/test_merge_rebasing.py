"""A base branch held by an operation of git's in a checkout (a rebase, a bisect: HEAD
detached) is not moved under it, and a merge the base branch lost since is not called
"merged before"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import state as dstate
from dagspec.merge import merge_run
from dagspec.merge_report import Outcome, merge_exit_code, render_report
from tests.conftest import git
from tests.test_merge import RUN, add_commit, load, make_run, outcomes, tip

A = {"a": ((), {"a.txt": "a\n"})}


def stop_a_rebase_of_main_on_a_conflict(repo: Path) -> None:
    """The user's ``git rebase other`` of main, stopped by a conflict: HEAD detached."""
    add_commit(repo, {"c.txt": "mine\n"}, "mine")
    git(repo, "checkout", "-q", "-b", "other", "main~1")
    add_commit(repo, {"c.txt": "theirs\n"}, "theirs")
    git(repo, "checkout", "-q", "main")
    done = git_may_fail(repo, "rebase", "other")
    assert done != 0 and (repo / ".git" / "rebase-merge" / "head-name").exists()


def git_may_fail(repo: Path, *args: str) -> int:
    import subprocess

    return subprocess.run(["git", *args], cwd=repo, capture_output=True).returncode


def start_a_bisect_from_main(repo: Path) -> None:
    add_commit(repo, {"c.txt": "1\n"}, "one")
    add_commit(repo, {"c.txt": "2\n"}, "two")
    git(repo, "bisect", "start", "main", "main~2")  # checks out main~1, HEAD detached


@pytest.mark.parametrize(
    "operation", [stop_a_rebase_of_main_on_a_conflict, start_a_bisect_from_main]
)
def test_a_base_branch_under_an_operation_counts_as_checked_out(
    git_repo: Path, operation: Callable[[Path], None]
) -> None:
    """A run ended during the user's rebase of main: main was moved by update-ref (HEAD was
    detached, so main looked checked out nowhere), and `git rebase --abort` then set main
    back, dropping every merge, while dagspec recorded them merged."""
    paths = make_run(git_repo, A)
    operation(git_repo)
    main = tip(git_repo)

    state, report = merge_run(git_repo, *load(paths))

    assert tip(git_repo) == main
    assert report.parked_on == "dag/r1/_merged" and merge_exit_code(report) == 1
    assert f"{git_repo} is " in (report.parked_because or "")
    said = render_report(report)
    assert "Once the checkout is clean" not in said, said  # it is clean: no edit of yours
    kind = "rebase of main" if operation is stop_a_rebase_of_main_on_a_conflict else "bisect"
    assert f"Once the {kind} in {git_repo} has ended, take it with `dag merge r1`" in said
    assert not state.spec("a").merged
    assert git(git_repo, "rev-parse", "dag/r1/_merged^2").strip() == tip(git_repo, "dag/r1/a")


def test_a_rebase_aborted_then_lets_the_next_merge_take_the_result(git_repo: Path) -> None:
    paths = make_run(git_repo, A)
    stop_a_rebase_of_main_on_a_conflict(git_repo)
    merge_run(git_repo, *load(paths))
    git(git_repo, "rebase", "--abort")

    state, report = merge_run(git_repo, *load(paths))

    assert state.spec("a").merged and report.checkout == str(git_repo)
    assert (git_repo / "a.txt").read_text() == "a\n"


def test_a_merge_the_base_branch_lost_is_not_merged_before(git_repo: Path) -> None:
    """Merged, then main reset to before the merge: `dag merge` said "merged before <sha>"
    and "main did not move", exit 0, for a commit not on main; `dag status` said merged."""
    run, dag = load(make_run(git_repo, A))
    state, _ = merge_run(git_repo, run, dag)
    merge = state.spec("a").merge_commit
    assert merge is not None
    git(git_repo, "reset", "-q", "--hard", "HEAD~1")

    state, report = merge_run(git_repo, state, dag)

    assert outcomes(report) == {"a": Outcome.DROPPED} and merge_exit_code(report) == 1
    assert not state.spec("a").merged and state.spec("a").merge_commit is None
    assert state.spec("a").dropped_merge == merge
    text = render_report(report)
    assert f"  merge dropped   a  not merged any more: {merge[:12]} is not on the branch" in text
    assert "main did not move." in text and "merged before" not in text
    assert "main no longer has the merge of a " in text
    state, report = merge_run(git_repo, state, dag)  # its branch is there: merged again
    assert outcomes(report) == {"a": Outcome.MERGED} and state.spec("a").merged


def test_a_dropped_merge_whose_branch_is_gone_is_merged_again_from_the_merge(
    git_repo: Path,
) -> None:
    """Merged, the branches deleted (as a run's end does), then main reset: the first `dag
    merge` said "merge dropped" and forgot the merge commit, every one after "branch
    missing" with nothing to act on, while the work was left only in main's reflog."""
    run, dag = load(make_run(git_repo, {**A, "b": (("a",), {"b.txt": "b\n"})}))
    state, _ = merge_run(git_repo, run, dag)
    git(git_repo, "branch", "-q", "-D", "dag/r1/a", "dag/r1/b")
    git(git_repo, "reset", "-q", "--hard", "HEAD~2")
    state, report = merge_run(git_repo, state, dag)
    assert outcomes(report) == {"a": Outcome.DROPPED, "b": Outcome.DROPPED}
    assert "from its merge above (whose second parent holds its work)" in render_report(report)
    git(git_repo, "reflog", "expire", "--expire=now", "--all")  # main's reflog: no help

    state, report = merge_run(git_repo, state, dag)

    assert outcomes(report) == {"a": Outcome.MERGED, "b": Outcome.MERGED}
    assert merge_exit_code(report) == 0 and state.spec("b").dropped_merge is None
    assert (git_repo / "a.txt").read_text() == "a\n" and (git_repo / "b.txt").exists()


def amend_the_merge(repo: Path) -> None:
    git(repo, "commit", "-q", "--amend", "-m", "Merge a (reworded)")


def flatten_the_merge(repo: Path) -> None:
    """What `git pull --rebase` does to a merge: its first parent's side replayed, linear."""
    git(repo, "rebase", "-q", "--force-rebase", "HEAD~1")


@pytest.mark.parametrize("rewrite", [amend_the_merge, flatten_the_merge])
def test_a_merge_rewritten_with_its_work_kept_is_not_dropped(
    git_repo: Path, rewrite: Callable[[Path], None]
) -> None:
    """The merge commit reworded, or flattened by `git pull --rebase`: a's work was on main,
    yet `dag merge` said "merge dropped" (exit 1) and recorded a not merged, then "branch
    missing" at every merge after."""
    run, dag = load(make_run(git_repo, A))
    state, _ = merge_run(git_repo, run, dag)
    rewrite(git_repo)
    assert (git_repo / "a.txt").read_text() == "a\n"
    assert state.spec("a").merge_commit not in git(git_repo, "rev-list", "main")
    main = tip(git_repo)

    state, report = merge_run(git_repo, state, dag)

    assert outcomes(report) == {"a": Outcome.ALREADY_MERGED} and merge_exit_code(report) == 0
    assert state.spec("a").merged and tip(git_repo) == main
    assert "dropped" not in render_report(report)
    # not "merged before" a commit main no longer has: its work is there, with no merge
    assert "  already merged  a\n" in render_report(report), render_report(report)
    assert state.spec("a").merge_commit is None


def test_status_says_already_merged_of_a_merge_a_rebase_flattened(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    """Before the next `dag merge` records it, `dag status` says it as the merge would."""
    paths = make_run(git_repo, A)
    assert run_cli("merge", RUN) == 0
    flatten_the_merge(git_repo)
    capsys.readouterr()
    assert run_cli("status", RUN) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].endswith("already merged"), out
    assert dstate.load(paths).spec("a").merge_commit is not None  # status writes nothing


def test_onto_current_merges_again_a_replay_a_reset_dropped(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    """`dag merge --onto-current`, then `git reset --hard` dropping b's replayed merge: the
    next `--onto-current` saw b "merged before" by a commit main no longer has, and left its
    work off; it sees the merge gone, as plain `dag merge` does, and replays b again."""
    paths = make_run(git_repo, {"a": ((), {"a.txt": "a\n"}), "b": ((), {"b.txt": "b\n"})})
    git(git_repo, "commit", "-q", "--amend", "-m", "initial, reworded")  # main rewritten
    assert run_cli("merge", RUN, "--onto-current") == 0
    dropped = dstate.load(paths).spec("b").merge_commit
    git(git_repo, "reset", "-q", "--hard", "HEAD~1")  # b's merge dropped
    capsys.readouterr()

    assert run_cli("merge", RUN, "--onto-current") == 0
    out = capsys.readouterr().out
    assert "merged before   b" not in out and "  merged          b  " in out, out
    b = dstate.load(paths).spec("b")  # (its commit may be the dropped one, made again)
    assert b.merged and dropped is not None
    assert git(git_repo, "show", "main:b.txt") == "b\n"
    assert git(git_repo, "rev-parse", "main").strip() == b.merge_commit
