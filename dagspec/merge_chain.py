"""The merges of a run's completed specs, built as objects on the base branch's tip: one
``--no-ff`` merge commit a spec, in the order they joined the integration branch, its joins
reused (:mod:`dagspec.merge`'s docstring says what a merge guarantees). Nothing here moves
a ref or touches a checkout: :mod:`dagspec.merge_publish` moves the base branch to the
chain's head.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs

from dagspec import (
    git_batch,
    git_commit,
    git_merge,
    git_refs,
    integration,
    lifecycle,
    moved_on,
    replay,
)
from dagspec.dagfile import Dag
from dagspec.errors import DagspecError, GitError
from dagspec.lifecycle import RunState, SpecState, SpecStatus
from dagspec.merge_report import LEFT_OFF, MergeReport, Outcome, SpecMerge
from dagspec.workspace import branch_name


@attrs.frozen
class Chain:
    """Merges built on ``base`` as objects; ``head`` is the last commit (``base`` if none).
    ``branches``: the run's branches as read to build it (``integration.run_branches``),
    None when it was built another way."""

    base: str
    head: str
    specs: tuple[SpecMerge, ...]
    branches: Mapping[str, str] | None = None
    replayed: bool = False  # onto a rewritten base (``replay_chain``): advice says so


def base_tip(repo: Path, state: RunState) -> str:
    """The base branch's commit now. Raises ``DagspecError`` when the branch is gone."""
    tip = git_refs.rev_parse(repo, f"refs/heads/{state.base_branch}")
    if tip is None:
        raise DagspecError(
            f"the base branch {state.base_branch} of run {state.run_id} no longer exists: "
            f"create it again (it started at {state.base_commit[:12]}), then merge"
        )
    return tip


def build(repo: Path, state: RunState, dag: Dag, tip: str) -> Chain:
    """Chain one merge commit per mergeable spec on ``tip``, in dependency order.

    A spec is left off when its merge conflicts, its branch is missing or shares no history
    with ``tip`` (made anew after a deletion), or it is behind a spec left off or not
    completed (the lifecycle's cascade rule, ``blocked_by``).
    """
    head = tip
    results: list[SpecMerge] = []
    known = {s.id for s in state.specs}
    deps = {s.id: [d for d in s.depends_on if d in known] for s in state.specs}
    roots = [s.id for s in state.specs if s.status is not SpecStatus.COMPLETED and not s.merged]
    facts = integration.MergeFacts.read(repo, state)
    facts.replayed = replay.merged_replays(repo, tip, state.base_commit)  # the base has them
    facts.dropped, facts.flattened = _off_base(repo, state, tip)
    facts.moved = moved_on.moved_since_merged(repo, state, tip, facts.tips)  # merged again
    for spec_id in integration.merge_order(deps, facts.joins, facts.tips):
        spec = state.spec(spec_id)
        if spec_id in roots:
            continue
        behind = lifecycle.blocked_by(deps, roots).get(spec_id, ())
        result, head = _merge_one(repo, state, dag, spec, (tip, head), behind, facts)
        if result.outcome in LEFT_OFF and not result.blocked_by:
            roots.append(spec_id)
        results.append(result)
    return Chain(tip, head, tuple(results), facts.branches)


def _off_base(repo: Path, state: RunState, tip: str) -> tuple[frozenset[str], frozenset[str]]:
    """The specs recorded merged by a merge commit the base branch, at ``tip``, no longer
    has: those whose work it lacks too (dropped: a reset, a rebase aborted after the
    merge), and those whose work it has (flattened); one ``git rev-list``, when there are
    any. A merge commit rewritten with the spec's work kept (``git commit --amend`` of it,
    a ``git pull --rebase`` that flattens merges) is not a drop: its spec side is on the
    base, or every change of it is (``git_merge.adds_nothing``); its spec is "already
    merged", no merge commit of it on the base branch."""
    recorded = {s.id: s.merge_commit for s in state.specs if s.merged and s.merge_commit}
    if not recorded:
        return frozenset(), frozenset()
    try:
        on_base = git_merge.commits_since(repo, tip, state.base_commit)
    except GitError:  # the run's base commit pruned (a rewritten base): asked one by one
        if git_refs.rev_parse(repo, state.base_commit) is not None:
            raise
        there = git_batch.present(repo, recorded.values())
        on_base = {c for c in there if git_refs.is_ancestor(repo, c, tip)}
    off = {spec_id: sha for spec_id, sha in recorded.items() if sha not in on_base}
    kept = frozenset(spec_id for spec_id, sha in off.items() if _work_on_base(repo, sha, tip))
    return frozenset(off) - kept, kept


def dropped_merges(repo: Path, state: RunState, tip: str | None = None) -> frozenset[str]:
    """The specs recorded merged whose merge the base branch, at ``tip`` (default: as it is
    now), no longer has (``_off_base``), for a replay."""
    return merges_off_base(repo, state, tip)[0]


def merges_off_base(
    repo: Path, state: RunState, tip: str | None = None
) -> tuple[frozenset[str], frozenset[str]]:
    """``_off_base`` at ``tip`` (default: the base branch as it is now), for ``dag status``
    and a replay; none when there is no base branch to ask, or git cannot answer (its base
    commit pruned: a rewritten base, which ``dag merge`` names)."""
    tip = tip or git_refs.rev_parse(repo, f"refs/heads/{state.base_branch}")
    if tip is None:
        return frozenset(), frozenset()
    try:
        return _off_base(repo, state, tip)
    except GitError:
        return frozenset(), frozenset()


def _work_on_base(repo: Path, merge_commit: str, tip: str) -> bool:
    """Whether the base, at ``tip``, has the spec side (``^2``) of ``merge_commit``, as a
    commit or by content; False when that commit is gone (garbage-collected)."""
    work = git_refs.rev_parse(repo, f"{merge_commit}^2")
    if work is None:
        return False
    return git_refs.is_ancestor(repo, work, tip) or git_merge.adds_nothing(repo, tip, work)


def replay_chain(repo: Path, state: RunState, dag: Dag, tip: str) -> Chain:
    """The chain ``merge --onto-current`` makes on a rewritten base's ``tip``: each spec's
    changes replayed in merge order (``dagspec.replay``), not merged from its branch."""
    known = {s.id for s in state.specs}
    deps = {s.id: [d for d in s.depends_on if d in known] for s in state.specs}
    joined = integration.joins(repo, state.run_id, state.base_commit)
    order = integration.merge_order(deps, joined, integration.spec_tips(repo, state))
    head, specs = replay.build(repo, state, dag, tip, order)
    return Chain(tip, head, specs, replayed=True)


def _merge_one(
    repo: Path,
    state: RunState,
    dag: Dag,
    spec: SpecState,
    base_and_head: tuple[str, str],
    behind: tuple[str, ...],
    known: integration.MergeFacts,
) -> tuple[SpecMerge, str]:
    """Merge one spec onto the chain's ``head`` as objects; return the result and the new
    head. A branch the chain already contains (a spec that added nothing of its own) is
    "already merged" when the base had it, else merged by the commit that brought it. A
    branch whose merge would change nothing is "already merged" only when every path it
    changed is the same on the base (``git_merge.adds_nothing``: the user squash-merged it,
    or ``dag/<run>/_merged``); a merge driver of the user's (``merge=ours``) can make a merge
    change nothing, and then the spec is merged all the same, its work kept in the history.
    ``behind`` names the specs left off that this one depends on. A join on top of ``head``
    is the merge (``known.joins``): it was made only because ``head`` lacked the tip."""
    base, head = base_and_head
    branch = spec.branch or branch_name(state.run_id, spec.id)
    if spec.id in known.dropped:
        lost = known.tips.get(spec.id) is None and not git_batch.present(
            repo, filter(None, [spec.merge_commit])
        )
        outcome = Outcome.LOST if lost else Outcome.DROPPED  # LOST: no way to merge it again
        return SpecMerge(spec.id, branch, outcome, spec.merge_commit), head
    if spec.merged and spec.id not in known.moved:  # its merge flattened: no merge commit
        commit = None if spec.id in known.flattened else spec.merge_commit
        return SpecMerge(spec.id, branch, Outcome.ALREADY_MERGED, commit), head
    if behind:
        return SpecMerge(spec.id, branch, Outcome.BLOCKED, blocked_by=behind), head
    tip = known.tips.get(spec.id)
    if tip is None and spec.dropped_merge is not None:  # that merge gone too (git gc)
        return SpecMerge(spec.id, branch, Outcome.LOST, spec.dropped_merge), head
    if tip is None:
        return SpecMerge(spec.id, branch, Outcome.MISSING), head
    if tip in known.replayed:  # a driver killed before recording it merged it (replayed)
        return SpecMerge(spec.id, branch, Outcome.ALREADY_MERGED, known.replayed[tip]), head
    if (head, tip) in known.joins:
        join = known.joins[head, tip]
        return SpecMerge(spec.id, branch, Outcome.WOULD_MERGE, join), join
    if git_refs.is_ancestor(repo, tip, head):
        commit = _merge_commit_of(repo, tip, head, state.base_commit)
        had = (
            Outcome.ALREADY_MERGED if git_refs.is_ancestor(repo, tip, base) else Outcome.WOULD_MERGE
        )
        return SpecMerge(spec.id, branch, had, commit), head
    try:
        work = replay.own_work(repo, known, tip, head)  # the base moved: its commits replayed
        merged = git_merge.merge_tree(repo, head, work)
    except GitError:  # its branch points at a commit ``git gc`` pruned? (asked only now)
        if not git_batch.present(repo, [tip]):
            return SpecMerge(spec.id, branch, Outcome.MISSING, tip), head  # the lost commit
        if git_merge.merge_base(repo, head, tip) is None:  # made anew, from no commit of ours
            return SpecMerge(spec.id, branch, Outcome.UNRELATED, tip), head
        raise
    if merged.conflicts:
        return SpecMerge(spec.id, branch, Outcome.WOULD_CONFLICT, files=merged.conflicts), head
    if merged.tree == known.tree(head) and git_merge.adds_nothing(repo, base, tip):
        return SpecMerge(spec.id, branch, Outcome.ALREADY_MERGED), head  # squash-merged, say
    message = merge_message(state.run_id, spec.id, branch, _description(dag, spec.id))
    commit = git_commit.commit_tree(repo, merged.tree, (head, work), message, sign=known.sign())
    known.trees[commit] = merged.tree
    return SpecMerge(spec.id, branch, Outcome.WOULD_MERGE, commit), commit


def _merge_commit_of(repo: Path, commit: str, head: str, since: str) -> str | None:
    """The commit that merged ``commit`` into ``head`` since the run began, if one did."""
    if git_refs.rev_parse(repo, since) is None:  # the run's base commit is gone (history rewritten)
        return None
    return git_merge.merge_commit_of(repo, commit, head, since)


def _description(dag: Dag, spec_id: str) -> str | None:
    feature = dag.features.get(spec_id)
    return None if feature is None else feature.description


def merge_message(run_id: str, spec_id: str, branch: str, description: str | None) -> str:
    """``Merge dag/<run>/<spec>: <spec>``, the description, and the run, as paragraphs."""
    paragraphs = [
        f"Merge {branch}: {spec_id}",
        (description or "").strip(),
        f"dagspec run {run_id}",
    ]
    return "\n\n".join(p for p in paragraphs if p) + "\n"


_FACTS = {Outcome.WOULD_MERGE: Outcome.MERGED, Outcome.WOULD_CONFLICT: Outcome.CONFLICT}


def report_of(state: RunState, chain: Chain, *, dry_run: bool = False) -> MergeReport:
    """The chain as a report (its predictions made facts unless ``dry_run``), with the base
    branch not moved; callers that moved it set ``new_tip``."""
    specs = chain.specs
    if not dry_run:
        specs = tuple(attrs.evolve(s, outcome=_FACTS.get(s.outcome, s.outcome)) for s in specs)
    unfinished = tuple(
        (s.id, s.status.value)
        for s in state.specs
        if s.status is not SpecStatus.COMPLETED and not s.merged
    )
    return MergeReport(
        state.run_id,
        state.base_branch,
        dry_run,
        specs,
        chain.base,
        chain.base,
        unfinished,
        order=tuple(s.id for s in state.specs),
        onto_current=chain.replayed,
    )
