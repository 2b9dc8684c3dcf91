"""Spec branches that moved on after their merge: a commit made on one while the merge ran
(an agent, the user in its worktree), after the merge had read its tip. The spec is
recorded merged, with the work it had then; the new commit is on its branch only. The
next ``dag merge`` takes it (``dagspec.merge``), and the cleanup keeps the branch saying
so, not that its merge was dropped (``dagspec.removal``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dagspec import git_batch, git_refs, replay
from dagspec.lifecycle import RunState, SpecState
from dagspec.workspace import branch_name


def moved_on(spec: SpecState, tip: str | None, repo: Path) -> bool:
    """Whether ``spec``, recorded merged by its merge commit, has a branch at ``tip`` with
    commits made after the work that commit merged (its second parent, or the tip a replay
    of it replayed: ``replay.merged_work``); a squash (no merge commit) never has."""
    if not spec.merged or spec.merge_commit is None or tip is None:
        return False
    work = replay.merged_work(repo, spec.merge_commit)
    return work is not None and work != tip and git_refs.is_ancestor(repo, work, tip)


def moved_since_merged(
    repo: Path, state: RunState, head: str, tips: Mapping[str, str | None]
) -> frozenset[str]:
    """The specs recorded merged whose branch (at ``tips``) moved on after their merge
    (``moved_on``) and that ``head``, the base branch's tip, lacks. No git process when no
    merged spec has a branch; one (``for-each-ref --merged``) when all are on ``head``."""
    merged = [s for s in state.specs if s.merged and s.merge_commit and tips.get(s.id)]
    if not merged:
        return frozenset()
    contained = git_batch.contained_in(repo, head, f"refs/heads/dag/{state.run_id}/")
    return frozenset(
        s.id
        for s in merged
        if f"refs/heads/{s.branch or branch_name(state.run_id, s.id)}" not in contained
        and moved_on(s, tips[s.id], repo)
    )
