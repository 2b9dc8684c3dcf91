"""``dag merge RUN --onto-current``: the run's specs replayed onto a rewritten base branch.

Every spec branch of a run descends from the run's base commit, so when the user rewrote
the base branch during the run (dropped a commit that leaked a secret, say), merging any
spec branch would bring the dropped commits back (``integration.refuse_rewritten``).
Replaying takes each spec's own changes instead of its history: the difference between
the commit it started from and its tip, applied to the chain's head
(``git_merge.replay_tree``). Each spec then lands as two commits made of objects only: its
replayed work (one commit on the chain's head) and a ``--no-ff`` merge of it named as
``merge.merge_message`` names every spec's merge, so the base branch's first-parent history
still gains exactly one merge commit per spec, and none of the dropped commits.

The conflict rules are the merge's: a spec whose changes conflict is left off, with the
specs that depend on it; the others are replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dagspec import git, git_merge, integration, lifecycle
from dagspec.dagfile import Dag
from dagspec.lifecycle import RunState, SpecStatus
from dagspec.merge_report import Outcome, SpecMerge
from dagspec.workspace import branch_name


def build(
    repo: Path, state: RunState, dag: Dag, tip: str, order: Sequence[str]
) -> tuple[str, tuple[SpecMerge, ...]]:
    """Replay each completed, not yet merged spec of ``order`` (a dependency order) onto
    ``tip``; return the chain's head and what happened to each spec. Writes objects only."""
    from dagspec.merge import merge_message

    started_at = {
        theirs: ours for ours, theirs in integration.joins(repo, state.run_id, state.base_commit)
    }
    deps = {s.id: [d for d in s.depends_on if d in order] for s in state.specs}
    roots = [s.id for s in state.specs if s.status is not SpecStatus.COMPLETED and not s.merged]
    head, results = tip, []
    for spec_id in order:
        spec = state.spec(spec_id)
        branch = spec.branch or branch_name(state.run_id, spec_id)
        behind = lifecycle.blocked_by(deps, roots).get(spec_id, ())
        spec_tip = git.rev_parse(repo, f"refs/heads/{branch}")
        if spec_id in roots:
            continue
        if spec.merged:
            results.append(SpecMerge(spec_id, branch, Outcome.ALREADY_MERGED, spec.merge_commit))
            continue
        if behind or spec_tip is None:
            outcome = Outcome.BLOCKED if behind else Outcome.MISSING
            results.append(SpecMerge(spec_id, branch, outcome, blocked_by=behind))
            roots += [] if behind else [spec_id]
            continue
        start = git_merge.merge_base(repo, spec_tip, started_at.get(spec_tip, state.base_commit))
        replayed = git_merge.replay_tree(repo, start or state.base_commit, head, spec_tip)
        if replayed.conflicts:
            results.append(
                SpecMerge(spec_id, branch, Outcome.WOULD_CONFLICT, files=replayed.conflicts)
            )
            roots.append(spec_id)
            continue
        sign = git.signs_commits(repo)  # both land on the base branch
        work = git.commit_tree(
            repo, replayed.tree, (head,), f"dag({state.run_id}): {spec_id}, replayed\n", sign=sign
        )
        description = dag.features[spec_id].description if spec_id in dag.features else None
        message = merge_message(state.run_id, spec_id, branch, description)
        head = git.commit_tree(repo, replayed.tree, (head, work), message, sign=sign)
        results.append(SpecMerge(spec_id, branch, Outcome.WOULD_MERGE, head))
    return head, tuple(results)
