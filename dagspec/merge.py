"""Merging a run's completed specs into the base branch, away from the user's checkout.

How a merge is made, and what it guarantees (README, Merging):

- **Built away from any checkout.** Each completed spec, in dependency order, becomes one
  ``--no-ff`` merge commit made of objects only (``merge-tree --write-tree`` then
  ``commit-tree``), chained from the base branch's tip. No index, working tree or ref is
  touched while merging, so nothing can be left half-merged (no ``MERGE_HEAD``, no
  conflict markers).
- **The integration branch's joins are reused.** Specs are chained in the order they
  joined ``dag/<run>/_integration`` (``dagspec.integration``), and a join commit whose
  first parent is the chain's head is taken as it is: when the base branch has not moved,
  the chain *is* the integration branch, and the base branch moves to its tip.
- **A rewritten base is never merged into** (``integration.refuse_rewritten``).
- **Nothing the repository cannot read is published.** Every object the chain would bring
  to the base branch is read once (``git_merge.check_readable``) before anything moves:
  git takes a tree pruned by ``git gc`` as empty and merges "successfully", deleting files.
- **Conflicts stay out.** A spec whose merge conflicts is left unmerged, with every spec that
  depends on it (they carry its code); the others still merge.
- **The base branch moves once**, to the last commit of the chain, by compare-and-swap from
  the tip the chain was built on. If someone moved the branch meanwhile, the chain is built
  again on the new tip (at most ``ATTEMPTS`` times), so no commit is ever lost.
- **The user's checkout is updated only when that is safe.** When the base branch is
  checked out, the checkout is fast-forwarded (HEAD, index and files together) only if it
  has no changes to tracked files and no untracked file the merge would overwrite.
  Otherwise nothing of the user's is touched: the result waits on ``dag/<run>/_merged``.
- **State says what is on the base branch.** A spec becomes ``merged`` (with its
  ``merge_commit``) only once its merge is on the base branch; while the result waits on
  ``dag/<run>/_merged`` it stays unmerged, and the next ``dag merge`` (or the user's
  fast-forward, which the next ``dag merge`` notices) finishes the job.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import attrs

from dagspec import (
    git_commit,
    git_merge,
    git_worktree,
    integration,
    lifecycle,
    lost_work,
    merge_faults,
    onto_advice,
)
from dagspec.dagfile import Dag
from dagspec.errors import DagspecError, GitError
from dagspec.lifecycle import RunState
from dagspec.merge_chain import Chain, base_tip, build, dropped_merges, replay_chain
from dagspec.merge_publish import predict, publish
from dagspec.merge_report import MergeReport, Outcome
from dagspec.undeleted import with_locks

ATTEMPTS = 3
"""How many times the merges are built again when the base branch moves under them."""


def merge_run(
    repo: Path, state: RunState, dag: Dag, *, dry_run: bool = False, onto_current: bool = False
) -> tuple[RunState, MergeReport]:
    """Merge every completed, not yet merged spec into the base branch (module docstring).

    Returns the new state (unchanged for a dry run, which writes no ref, index or file) and
    a report. Raises ``DagspecError`` when the base branch is gone or keeps moving, and
    ``integration.RewrittenBase`` when it was rewritten, unless ``onto_current``: then the
    specs are replayed onto it (``dagspec.replay``).
    """
    for _ in range(ATTEMPTS):
        tip, seen = base_tip(repo, state), state
        predicting = git_commit.predicting() if dry_run else contextlib.nullcontext()
        with merge_faults.said_in_one_line(state.run_id, onto=onto_current), predicting:
            if onto_current and integration.rewritten(repo, state, tip):
                # a replayed merge a reset dropped since: replayed again (as build does)
                seen = lifecycle.record_dropped(state, dropped_merges(repo, state, tip))
                chain = replay_chain(repo, seen, dag, tip)
            else:
                integration.refuse_rewritten(repo, state, tip)
                chain = build(repo, state, dag, tip)
        if chain.head != chain.base:  # git builds merges of a tree it cannot read (pruned)
            git_merge.check_readable(repo, chain.head, chain.base)
        if dry_run:
            return state, predict(repo, state, chain)
        report = publish(repo, seen, chain)
        if report is not None:
            merged = _record(seen, report)
            if all(s.merged for s in merged.specs):  # the run is over: its joins are done with
                report = _drop_joins(repo, state.run_id, chain, report)
            return merged, report
    raise DagspecError(
        f"the branch {state.base_branch} kept moving while merging run {state.run_id} "
        f"({ATTEMPTS} tries); nothing was changed: run "
        f"`{onto_advice.merge_command(state.run_id, onto=onto_current)}` again"
    )


def _drop_joins(repo: Path, run_id: str, chain: Chain, report: MergeReport) -> MergeReport:
    """``integration.drop``, cleanup once the base branch has moved: what git would not
    delete (a stale lock file) is said by the report, and the merge recorded all the same."""
    try:
        integration.drop(repo, run_id, listed=chain.branches)
    except GitError as exc:
        kept = (integration.integration_branch(run_id),)
        common = git_worktree.common_dir(repo)  # asked only now: every lock is named
        return attrs.evolve(report, undeleted=with_locks(common, kept, exc.stderr or exc.stdout))
    return report


def _record(state: RunState, report: MergeReport) -> RunState:
    """Mark the specs whose merge is on the base branch as merged (not those parked)."""
    on_base = (
        {Outcome.ALREADY_MERGED} if report.parked_on else {Outcome.ALREADY_MERGED, Outcome.MERGED}
    )
    merges = {r.spec_id: r.commit for r in report.specs if r.outcome in on_base}
    dropped = [r.spec_id for r in report.specs if r.outcome is Outcome.DROPPED]
    state = lost_work.record(
        state, {r.spec_id: r.commit for r in report.specs if r.outcome is Outcome.LOST}
    )
    for spec_id, commit in merges.items():  # merged again (its branch had moved on), or
        # its merge rewritten with its work kept (a rebase that flattens merges): no commit
        if state.spec(spec_id).merged and commit != state.spec(spec_id).merge_commit:
            state = state.with_spec(attrs.evolve(state.spec(spec_id), merge_commit=commit))
    return lifecycle.record_merges(lifecycle.record_dropped(state, dropped), merges)
