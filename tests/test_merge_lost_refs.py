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
from dagspec.merge_report import Outcome
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
