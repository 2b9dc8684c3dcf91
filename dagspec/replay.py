"""``dag merge RUN --onto-current``: the run's specs replayed onto a rewritten base branch.

Every spec branch of a run descends from the run's base commit, so when the user rewrote
the base branch during the run (dropped a commit that leaked a secret, say), merging any
spec branch would bring the dropped commits back (``integration.refuse_rewritten``).
Replaying takes each spec's own changes instead of its history: the difference between
the commit it started from and its tip, applied to the chain's head
(``git_merge.replay_tree``). Each spec then lands as two commits made of objects only: its
replayed work (one commit on the chain's head) and a ``--no-ff`` merge of it named as
``merge_chain.merge_message`` names every spec's merge, so the base branch's first-parent history
still gains exactly one merge commit per spec, and none of the dropped commits.

The conflict rules are the merge's: a spec whose changes conflict is left off, with the
specs that depend on it; the others are replayed. A spec whose own changes are all on the
base branch already (the user squash-merged or cherry-picked its branch there:
``git_merge.adds_nothing`` from where it started) is "already merged", with no commit.

:func:`rebase` serves the ordinary merge when the base branch moved during the run: a
dependent spec started from the integration branch, so its history holds its dependencies'
join commits; merged as it is onto the new tip, where each dependency got a merge of its
own, the second-parent history would hold each dependency's merge twice. Its own commits
are replayed one by one onto the chain's head instead (what ``git rebase`` does, made of
objects only), each keeping its message and author.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dagspec import git, git_commit, git_merge, git_refs, integration, lifecycle
from dagspec.dagfile import Dag
from dagspec.git_merge import MergeTree
from dagspec.lifecycle import RunState, SpecState, SpecStatus
from dagspec.merge_report import Outcome, SpecMerge
from dagspec.workspace import branch_name


def build(
    repo: Path, state: RunState, dag: Dag, tip: str, order: Sequence[str]
) -> tuple[str, tuple[SpecMerge, ...]]:
    """Replay each completed, not yet merged spec of ``order`` (a dependency order) onto
    ``tip``; return the chain's head and what happened to each spec. Writes objects only."""
    from dagspec.merge_chain import merge_message

    started_at = {
        theirs: ours for ours, theirs in integration.joins(repo, state.run_id, state.base_commit)
    }
    deps = {s.id: [d for d in s.depends_on if d in order] for s in state.specs}
    roots = [s.id for s in state.specs if s.status is not SpecStatus.COMPLETED and not s.merged]
    head, results = tip, []
    merged = merged_replays(repo, tip, state.base_commit)  # a killed driver published them
    for spec_id in order:
        spec = state.spec(spec_id)
        branch = spec.branch or branch_name(state.run_id, spec_id)
        behind = lifecycle.blocked_by(deps, roots).get(spec_id, ())
        if spec_id in roots:
            continue
        if spec.merged:
            spec_tip, since = _moved_on(repo, spec, branch)
            if spec_tip is None:
                merge = spec.merge_commit
                results.append(SpecMerge(spec_id, branch, Outcome.ALREADY_MERGED, merge))
                continue
        else:
            spec_tip, since = _source(repo, state, spec, branch, started_at, tip)
        if spec_tip in merged:
            results.append(SpecMerge(spec_id, branch, Outcome.ALREADY_MERGED, merged[spec_tip]))
            continue
        if behind or spec_tip is None:
            outcome = Outcome.BLOCKED if behind else Outcome.MISSING
            if not behind and spec.dropped_merge is not None:  # that merge gone too (git gc)
                outcome = Outcome.LOST
            results.append(
                SpecMerge(spec_id, branch, outcome, spec.dropped_merge, blocked_by=behind)
            )
            roots += [] if behind else [spec_id]
            continue
        replayed = git_merge.replay_tree(repo, since, head, spec_tip)
        if replayed.conflicts:
            results.append(
                SpecMerge(
                    spec_id, branch, Outcome.WOULD_CONFLICT, files=replayed.conflicts, since=since
                )
            )
            roots.append(spec_id)
            continue
        if replayed.tree == git_merge.tree_of(repo, head) and git_merge.adds_nothing(
            repo, tip, spec_tip, since=since
        ):  # the user squash-merged or cherry-picked it onto the rewritten base
            results.append(SpecMerge(spec_id, branch, Outcome.ALREADY_MERGED))
            continue
        sign = git_commit.signs_commits(repo)  # both land on the base branch
        noted = f"dag({state.run_id}): {spec_id}, replayed\n\n{REPLAYED_FROM.format(spec_tip)}\n"
        work = git_commit.commit_tree(repo, replayed.tree, (head,), noted, sign=sign)
        description = dag.features[spec_id].description if spec_id in dag.features else None
        message = merge_message(state.run_id, spec_id, branch, description)
        head = git_commit.commit_tree(repo, replayed.tree, (head, work), message, sign=sign)
        results.append(SpecMerge(spec_id, branch, Outcome.WOULD_MERGE, head))
    return head, tuple(results)


def _moved_on(repo: Path, spec: SpecState, branch: str) -> tuple[str | None, str]:
    """A merged spec's branch tip and the tip its merge took, when the branch moved on
    since (a commit made on it during the merge: ``moved_on.moved_on``): its new commits, to replay
    as a merge of their own; else None and ""."""
    tip = git_refs.rev_parse(repo, f"refs/heads/{branch}")
    if tip is None or spec.merge_commit is None:
        return None, ""
    work = merged_work(repo, spec.merge_commit)
    if work is None or work == tip or not git_refs.is_ancestor(repo, work, tip):
        return None, ""
    return tip, work


def _source(
    repo: Path,
    state: RunState,
    spec: SpecState,
    branch: str,
    started_at: dict[str, str],
    base: str,
) -> tuple[str | None, str]:
    """The commit holding ``spec``'s work and the commit its own changes start from: its
        branch's tip, from where it started (a join of the integration branch, else the run's
        base commit); when the branch is gone and a reset dropped the spec's merge, that lost
        merge commit, from its first parent (its changes are the spec's, as a replay or a merge
        made them); a branch the user rebased onto ``base``, the rewritten base branch's tip
    (``onto_advice.rebase_hint``), from where it forks from it. None when neither is in the
    repository (the merge pruned: work lost)."""
    tip = git_refs.rev_parse(repo, f"refs/heads/{branch}")
    if tip is None and spec.dropped_merge is not None and not spec.merged:
        parent = git_refs.rev_parse(repo, f"{spec.dropped_merge}^1")
        return (spec.dropped_merge, parent) if parent is not None else (None, "")
    if tip is None:
        return None, ""
    if tip in started_at or git_refs.is_ancestor(repo, state.base_commit, tip):
        start = git_merge.merge_base(repo, tip, started_at.get(tip, state.base_commit))
        return tip, start or state.base_commit
    # rebased by the user onto the rewritten base (a conflict resolved so): from there
    return tip, git_merge.merge_base(repo, tip, base) or state.base_commit


REPLAYED_FROM = "(replayed from commit {})"
"""The last line of a commit :func:`rebase` made: the commit it replays."""


def merged_replays(repo: Path, tip: str, since: str) -> dict[str, str]:
    """Each spec tip that a merge commit on ``tip``'s first-parent line after ``since``
    merged as a replay (its second parent ends with :data:`REPLAYED_FROM`), mapped to that
    merge commit: the specs a driver killed after publishing them merged already, which the
    base branch has in content, not in history. Two git processes (none when ``tip`` is
    ``since``); empty when ``since`` is gone."""
    if tip == since or git_refs.rev_parse(repo, since) is None:
        return {}
    merges = {theirs: sha for sha, _, theirs in git_merge.first_parent_merges(repo, tip, since)}
    if not merges:
        return {}
    log = git.run(repo, "log", "--no-walk=unsorted", "--format=%H%x00%B%x01", *merges)
    found: dict[str, str] = {}
    for record in filter(None, (r.strip("\n") for r in log.split("\x01"))):
        commit, message = record.split("\x00", 1)
        replayed = _replayed_from(message)
        if replayed is not None:
            found.setdefault(replayed, merges[commit])
    return found


def _replayed_from(message: str) -> str | None:
    last = (message.strip().splitlines() or [""])[-1]
    prefix, suffix = REPLAYED_FROM.split("{}")
    if last.startswith(prefix) and last.endswith(suffix):
        return last[len(prefix) : -len(suffix)]
    return None


def replayed_tip(repo: Path, merge_commit: str) -> str | None:
    """The spec tip whose commits were replayed into ``merge_commit`` (its second parent's
    last line, :data:`REPLAYED_FROM`); None when it merged the spec's branch as it was."""
    message = git.run(repo, "log", "-1", "--format=%B", f"{merge_commit}^2", check=False)
    return _replayed_from(message)


def merged_work(repo: Path, merge_commit: str) -> str | None:
    """The spec tip ``merge_commit`` took: the one it replayed (``replayed_tip``), else its
    second parent (the branch merged as it was); None when it has none (gone, pruned). One
    git process."""
    out = git.run(repo, "log", "-1", "--format=%H%x00%B", f"{merge_commit}^2", check=False)
    second, _, message = out.partition("\x00")
    if not second.strip():
        return None
    return _replayed_from(message) or second.strip()


def rebase(
    repo: Path, start: str, onto: str, tip: str, *, sign: bool
) -> tuple[str | None, tuple[str, ...]]:
    """Replay the commits ``start..tip`` (a spec's own, oldest first) onto ``onto``; the new
    tip, or None and the conflicting files. None and no files when the range holds a merge
    commit (the agent merged something): then nothing is replayed. Writes objects only.
    Each commit keeps its message and author (``GIT_AUTHOR_*``, git-commit-tree(1)), and
    names the commit it replays (:data:`REPLAYED_FROM`, as ``git cherry-pick -x`` does), so
    that the spec's branch is known to be merged and can be deleted (``dagspec.removal``)."""
    fields = "%H%x00%P%x00%an%x00%ae%x00%ad%x00%B%x01"
    log = git.run(repo, "log", "--reverse", "--date=raw", f"--format={fields}", f"{start}..{tip}")
    head = onto
    for record in filter(None, (r.lstrip("\n") for r in log.split("\x01"))):
        commit, parents, name, email, date, message = record.split("\x00", 5)
        if len(parents.split()) != 1:
            return None, ()
        replayed: MergeTree = git_merge.replay_tree(repo, parents, head, commit)
        if replayed.conflicts:
            return None, replayed.conflicts
        author = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date}
        noted = f"{message.rstrip()}\n\n{REPLAYED_FROM.format(commit)}\n"
        head = git_commit.commit_tree(repo, replayed.tree, (head,), noted, sign=sign, env=author)
    return head, ()


def own_work(repo: Path, known: integration.MergeFacts, tip: str, head: str) -> str:
    """The commit to merge onto the chain's ``head`` for a spec whose branch is at ``tip``:
    ``tip`` itself, unless the spec started from an integration commit that ``head`` lacks
    (the base branch moved during the run); then its own commits replayed onto ``head``
    (:func:`rebase`). When they cannot all be replayed (one conflicts on the way, or one is
    a merge), ``tip``: a duplicated merge in the history is better than a spec left off."""
    before = {theirs: ours for ours, theirs in known.joins}.get(tip)
    start = git_merge.merge_base(repo, tip, before) if before else None
    if start is None or git_refs.is_ancestor(repo, start, head):
        return tip
    rebased, _ = rebase(repo, start, head, tip, sign=known.sign())
    return rebased or tip
