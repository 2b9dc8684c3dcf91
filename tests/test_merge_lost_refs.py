"""Merging after the user deleted a run's branches: a spec whose branch is gone is merged
from the integration branch when it joined it, and a spec is never merged without a
dependency left off."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagspec import integration
from dagspec.errors import DagspecError
from dagspec.integration import integration_branch
from dagspec.merge import merge_run
from dagspec.merge_report import Outcome, merge_exit_code, render_report
from tests.conftest import git
from tests.test_integration import join, joined_run, make_paths, spec_branch
from tests.test_merge import RUN, branch, load, make_run, outcomes, tip


def test_a_deleted_branch_is_merged_from_the_integration_branch(git_repo: Path) -> None:
    """a's worktree and branch removed before `dag merge`: "branch missing a", and b, which
    depends on a and carries its code, merged alone; a's work was on the integration
    branch all along."""
    base, integrated = joined_run(git_repo)
    git(git_repo, "branch", "-q", "-D", branch("a"))

    state, report = merge_run(git_repo, *load(make_paths(git_repo)))

    assert outcomes(report) == {"a": Outcome.MERGED, "b": Outcome.MERGED}
    assert tip(git_repo) == integrated
    assert state.spec("a").merge_commit == tip(git_repo, "main^1")
    assert git(git_repo, "rev-list", "--count", "--first-parent", f"main...{base}").strip() == "2"


def test_a_spec_is_never_merged_without_a_dependency_left_off(git_repo: Path) -> None:
    """a's branch gone and its join not on the integration branch (rebuilt with b's alone):
    b was merged first, since it had joined, and a found missing after it."""
    base = tip(git_repo)
    make_run(git_repo, {"a": ((), {}), "b": (("a",), {})}, branches=False)
    a = spec_branch(git_repo, "a", base, {"a.txt": "a\n"})
    spec_branch(git_repo, "b", a, {"b.txt": "b\n"})
    join(git_repo, "b", base)
    git(git_repo, "branch", "-q", "-D", branch("a"))

    state, report = merge_run(git_repo, *load(make_paths(git_repo)))

    assert outcomes(report) == {"a": Outcome.MISSING, "b": Outcome.BLOCKED}
    assert report.specs[1].blocked_by == ("a",)
    assert tip(git_repo) == base and not any(s.merged for s in state.specs)
    assert tip(git_repo, integration_branch(RUN))  # kept for a second try


def join_new(repo: Path, spec_id: str, base: str, head: str | None) -> str:
    """The join of a spec just committed, as a drive makes it, onto the tip it knows."""
    message = f"Merge {branch(spec_id)}: {spec_id}\n"
    return integration.join_new_work(
        repo,
        RUN,
        base,
        head=head,
        spec_id=spec_id,
        branch=branch(spec_id),
        message=message,
        sign=False,
    )


def test_an_integration_branch_deleted_during_the_run_is_put_back(git_repo: Path) -> None:
    """`git branch -D dag/<run>/_integration` mid-run: the next join started it again at the
    base, the specs joined before were left out of it, and the merge gave them no merge
    commit of their own (their work came in with a dependent's)."""
    base = tip(git_repo)
    a = spec_branch(git_repo, "a", base, {"a.txt": "a\n"})
    joined_a = join_new(git_repo, "a", base, None)
    spec_branch(git_repo, "b", joined_a, {"b.txt": "b\n"})
    git(git_repo, "branch", "-q", "-D", integration_branch(RUN))

    joined_b = join_new(git_repo, "b", base, joined_a)

    assert tip(git_repo, integration_branch(RUN)) == joined_b
    assert git(git_repo, "rev-parse", f"{joined_b}^1").strip() == joined_a
    assert git(git_repo, "rev-parse", f"{joined_a}^2").strip() == a


def test_an_integration_branch_moved_by_someone_else_is_refused(git_repo: Path) -> None:
    base = tip(git_repo)
    spec_branch(git_repo, "a", base, {"a.txt": "a\n"})
    joined_a = join_new(git_repo, "a", base, None)
    spec_branch(git_repo, "b", joined_a, {"b.txt": "b\n"})
    git(git_repo, "branch", "-q", "-f", integration_branch(RUN), base)

    with pytest.raises(DagspecError, match="moved by someone else") as info:
        join_new(git_repo, "b", base, joined_a)

    assert f"`git branch -f {integration_branch(RUN)} {joined_a}`" in str(info.value)
    assert tip(git_repo, integration_branch(RUN)) == base


def _made_anew(repo: Path, spec_id: str) -> None:
    """The spec's branch deleted and made again as a root commit (a commit in its worktree
    after ``git update-ref -d``): it shares no history with the base branch."""
    empty = git(repo, "hash-object", "-t", "tree", "-w", "/dev/null").strip()
    root = git(repo, "commit-tree", empty, "-m", "made anew").strip()
    git(repo, "update-ref", f"refs/heads/{branch(spec_id)}", root)


@pytest.mark.parametrize("dry_run", [False, True], ids=["merge", "dry-run"])
def test_a_branch_made_anew_is_left_off_saying_why_and_the_others_merge(
    git_repo: Path, dry_run: bool
) -> None:
    """b's branch recreated with no commit of the run's: git's "refusing to merge unrelated
    histories" stopped every merge, no spec named; now b is left off, "unrelated", with what
    to do, and a is merged."""
    base, _ = joined_run(git_repo)
    _made_anew(git_repo, "b")

    state, report = merge_run(git_repo, *load(make_paths(git_repo)), dry_run=dry_run)

    merged = Outcome.WOULD_MERGE if dry_run else Outcome.MERGED
    assert outcomes(report) == {"a": merged, "b": Outcome.UNRELATED}
    assert merge_exit_code(report) == 1
    text = render_report(report)
    assert "  unrelated       b  dag/r1/b shares no commit with main (made anew?)\n" in text
    assert f"`git rebase --root --onto main {branch('b')}`" in text
    assert f"`git branch -m {branch('b')} NAME`); then `dag merge {RUN}`." in text
    if not dry_run:
        assert state.spec("a").merged and not state.spec("b").merged
        assert tip(git_repo) != base
