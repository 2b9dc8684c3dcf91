"""What a finished run still leaves to do that its specs' statuses cannot say: a merged
spec's branch that moved on after its merge (a commit made on it during the merge: the
base branch lacks it, and ``dag merge`` takes it), and merged specs' branches still there
once their worktrees went (git would not delete them: a stale lock file; ``dag cleanup``
deletes them). The end of a run knows them from its cleanup; ``dag status`` asks git
(``read``), so that both say the same ``next:`` and exit code (README, Merging)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import attrs

from dagspec import git_said, git_worktree, integration, moved_on
from dagspec.errors import GitError
from dagspec.lifecycle import RunState, RunStatus
from dagspec.undeleted import Undeleted, locks_in_the_way
from dagspec.workspace import branch_name


@attrs.frozen
class Left:
    """Specs whose branch ``moved`` on after their merge, and the run's ``branches`` left
    (merged specs', the integration branch) with the lock files in their way now."""

    moved: tuple[str, ...] = ()
    branches: tuple[str, ...] = ()
    locks: tuple[str, ...] = ()


class Merged(NamedTuple):
    """What ``driving.merge_and_report`` did: the run as saved, the exit code, what it left."""

    run: RunState
    code: int
    left: Left


def of_cleanup(state: RunState, moved: Sequence[str] | None, undeleted: Undeleted | None) -> Left:
    """What a merge's cleanup left: the specs of the branches it kept for having ``moved``
    on after their merge (``removal.Cleaned.moved``), the branches git did not delete."""
    spec_of = {s.branch or branch_name(state.run_id, s.id): s.id for s in state.specs}
    ids = tuple(spec_of[b] for b in moved or () if b in spec_of)
    if undeleted is None:
        return Left(ids)
    return Left(ids, undeleted.branches, undeleted.locks)


def read(repo: Path, state: RunState) -> Left:
    """What a finished run with merged specs left, as git says now: one ``for-each-ref`` of
    the run's branches, and ``moved_on.moved_since_merged`` when a merged spec's is there;
    nothing asked of a running run or one with no spec merged."""
    if state.status is RunStatus.RUNNING or not any(s.merged for s in state.specs):
        return Left()
    listed = integration.run_branches(repo, state.run_id)
    if not listed:
        return Left()
    tips = integration.spec_tips(repo, state, listed=listed)
    try:
        moved = moved_on.moved_since_merged(repo, state, f"refs/heads/{state.base_branch}", tips)
    except GitError:  # no base branch: ``dag status`` says so through ``next:``
        return Left()
    branch = {s.id: s.branch or branch_name(state.run_id, s.id) for s in state.specs}
    left = [
        branch[s.id]
        for s in state.specs
        if s.merged and s.worktree is None and s.id not in moved and tips.get(s.id)
    ]
    joined = integration.integration_branch(state.run_id)
    if all(s.merged for s in state.specs) and f"refs/heads/{joined}" in listed:
        left.append(joined)
    common = git_worktree.common_dir(repo) if left else None
    locks = locks_in_the_way(common, left, "") if left else ()
    return Left(tuple(s.id for s in state.specs if s.id in moved), tuple(left), locks)


def shown(state: RunState, left: Left) -> RunState:
    """The run as what is left makes it: each spec whose branch moved on after its merge
    not merged (its new commit is not on the base branch; ``dag merge`` takes it), so that
    the table, the ``next:`` line and the exit code say so. Its merge commit is kept."""
    for spec_id in left.moved:
        state = state.with_spec(attrs.evolve(state.spec(spec_id), merged=False))
    return state


def notes(state: RunState, left: Left, *, dag: str = "dag", merge: str | None = None) -> list[str]:
    """``note:`` lines for what is left: a line per moved branch, one for the branches.
    ``merge``: what takes a moved branch's commit (``integration.merge_command``: with
    ``--onto-current`` for a rewritten base branch); ``dag merge RUN`` when not given."""
    merge = merge or f"{dag} merge {state.run_id}"
    lines = [
        f"note: {state.spec(i).branch or branch_name(state.run_id, i)} has a commit made after "
        f"the merge of {i}, which {state.base_branch} lacks: `{merge}` takes it"
        for i in left.moved
    ]
    if left.branches:
        one = len(left.branches) == 1
        them = "it" if one else "them"
        why = f"{git_said.locks_advice(left.locks)}; then " if left.locks else ""
        lines.append(
            f"note: the run's {'branch' if one else 'branches'} {', '.join(left.branches)} "
            f"{'is' if one else 'are'} still there, {'its' if one else 'their'} work merged: "
            f"{why}`{dag} cleanup {state.run_id}` deletes {them}"
        )
    return lines
