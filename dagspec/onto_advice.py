"""Advice that stays true of a run whose base branch was rewritten since it began (a commit
dropped by ``git reset --hard``: ``integration.rewritten``). Every spec branch of such a run
holds the dropped commits, so ``git merge`` of one (or of ``dag/<run>/_integration``) brings
them back, and plain ``dag merge RUN`` refuses: what dagspec tells the user to type for such
a run is ``dag merge RUN --onto-current`` (``dagspec.replay``), or a rebase of a spec's own
commits (``rebase_hint``), never a ``git merge`` of the run's branches."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dagspec import git_batch, git_refs, integration
from dagspec.errors import GitError
from dagspec.lifecycle import RunState
from dagspec.workspace import branch_name

FLAG = " --onto-current"


def merge_command(run_id: str, *, onto: bool) -> str:
    """``dag merge RUN``, with ``--onto-current`` for a run replayed onto a rewritten base."""
    return f"dag merge {run_id}{FLAG if onto else ''}"


def rewritten_now(repo: Path, state: RunState) -> bool:
    """Whether the base branch, as it is now, was rewritten since the run began (False when
    it is gone: then nothing is merged into it, and ``integration.merge_command`` says so)."""
    tip = git_refs.rev_parse(repo, f"refs/heads/{state.base_branch}")
    return tip is not None and integration.rewritten(repo, state, tip)


def dropped_base(repo: Path, state: RunState) -> tuple[bool, tuple[str, ...]]:
    """Whether the base branch was rewritten since the run began, and then the run's base
    commit when the repository has it: it and the commits before it that the base branch
    lacks are what the user dropped, not the work of any branch of the run."""
    if not rewritten_now(repo, state):
        return False, ()
    there = git_refs.rev_parse(repo, state.base_commit) is not None
    return True, (state.base_commit,) if there else ()


def rebase_hint(run_id: str, spec_id: str, branch: str, base: str, since: str | None) -> str:
    """How to merge by hand a spec whose replay conflicts: its own commits rebased onto the
    base branch (``git merge`` of its branch would bring the dropped commits back), after
    which ``dag merge --onto-current`` replays it without a conflict (``replay._source``)."""
    start = since[:12] if since else f"the commit {spec_id} started from"
    return (
        f"To merge {spec_id} by hand: `git rebase --onto {base} {start} {branch}` (in "
        f"{spec_id}'s worktree if it has one, else in a clean checkout, then `git switch "
        f"{base}` once done), resolve, `git rebase --continue`; then `dag merge {run_id}{FLAG}` "
        f"replays it and merges what depends on it (`git merge {branch}` would bring back the "
        f"commits dropped from {base})."
    )


def lost(repo: Path, state: RunState, dropped: Iterable[str]) -> list[str]:
    """Of the ``dropped`` specs (their merge no longer on the base branch), those whose work
    is no longer in the repository: no branch, not on the integration branch, and their lost
    merge commit pruned (``git gc --prune=now``); as the next ``dag merge`` finds them."""
    gone = [
        state.spec(i)
        for i in dropped
        if git_refs.rev_parse(
            repo, f"refs/heads/{state.spec(i).branch or branch_name(state.run_id, i)}"
        )
        is None
    ]
    if not gone:
        return []
    there = git_batch.present(repo, [s.dropped_merge for s in gone if s.dropped_merge])
    try:
        joined = integration.joined_tips(repo, state, gone)
    except GitError:  # no integration branch, or the run's base commit pruned
        joined = {}
    return [s.id for s in gone if s.dropped_merge not in there and s.id not in joined]


def dropped_note(repo: Path, state: RunState, dropped: Iterable[str]) -> str:
    """``dag status``'s note on specs whose merge the base branch lost: what the next merge
    does, with the command that does it (``--onto-current`` for a rewritten base)."""
    ids = sorted(dropped)
    gone = lost(repo, state, ids)
    kept = [i for i in ids if i not in gone]
    command = integration.merge_command(repo, state)
    notes = []
    if kept:
        them = "it" if len(kept) == 1 else "them"
        notes.append(
            f"note: {state.base_branch} no longer has the merge of {', '.join(kept)} (reset, "
            f"or a rebase aborted after the merge?): `{command}` merges {them} again"
        )
    if gone:
        them = "it" if len(gone) == 1 else "them"
        notes.append(
            f"note: {state.base_branch} no longer has the merge of {', '.join(gone)}, and the "
            "work is no longer in this repository (that merge pruned by git gc, no branch "
            f"holds it): `{command}` records {them} failed; then `dag retry {state.run_id} "
            f"{' '.join(gone)}` does {them} again"
        )
    return "\n".join(notes)
