"""Removing the worktrees and branches of merged specs, losing nothing.

The rule for what is safe to remove is ``worktree.unsaved_work``, the same for the end of a
run, ``dag merge --cleanup`` and ``dag cleanup``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from dagspec import (
    adrift,
    checkout_safety,
    git_batch,
    git_merge,
    git_refs,
    git_worktree,
    lifecycle,
    moved_on,
    onto_advice,
    replay,
    unseen_work,
    worktree,
)
from dagspec.errors import GitError
from dagspec.lifecycle import RunState, SpecState
from dagspec.undeleted import Undeleted, with_locks
from dagspec.unseen_work import Unseen
from dagspec.workspace import branch_name, resolved, worktree_root


class Cleaned(NamedTuple):
    """The run once its merged specs' worktrees are removed, and why each kept one stays
    when it holds work git status does not show (``dagspec.unseen_work``)."""

    run: RunState
    unseen: dict[str, Unseen]
    kept_branches: tuple[str, ...] = ()  # removed specs' branches the base branch lacks
    undeleted: Undeleted | None = None  # merged specs' branches git would not delete
    moved: tuple[str, ...] = ()  # of ``kept_branches``, those moved on after the merge
    onto: bool = False  # with ``kept_branches``: the base branch was rewritten since the run


def remove_merged_worktrees(repo: Path, run: RunState) -> Cleaned:
    """Remove the worktree and branch of each merged spec, and forget its worktree.

    Only a worktree git lists for this repository, on the spec's own branch, is removed,
    and only when that loses nothing: nothing uncommitted (``worktree.unsaved_work``), no
    submodule commit found only there, no file git ignores written by a spec whose merge
    changed only its spec directory (``dagspec.unseen_work``). Any other stays, and stays
    in the state (``render_cleanup`` names it, and why). A branch is deleted only once the
    base branch contains it, or all its changes (``_delete_merged_branches``). Failed and
    blocked specs are not merged, so they keep theirs.

    Batched (issue 16): one ``git worktree list``, one ``git log`` of the merge commits
    (``unseen_work.quiet_specs``), then ``git worktree remove`` of the clean worktrees
    several at a time (git's own check that nothing would be lost; only one that git
    refuses is looked at further), one ``for-each-ref --merged`` and one ``git branch -D``
    for all the branches.
    """
    listed = {resolved(path): branch for path, branch in git_worktree.worktrees(repo).items()}
    merged = [s for s in run.specs if s.merged]
    owned = {s.id: _owned(s, run, listed) for s in merged}
    tips = git_batch.branch_tips(repo, "refs/heads/")  # one process: a deleted one is gone
    gone = _branch_gone(repo, run, owned, tips)
    present = {i: path for i, path in owned.items() if path is not None and i not in gone}
    quiet = unseen_work.quiet_specs(repo, run, present)
    looked = {
        i: unseen_work.unseen(present[i], run, i, quiet=quiet, submodules=False) for i in quiet
    }
    held = {i: found for i, found in looked.items() if found} | gone
    held.update(_adrift(repo, listed, [s for s in merged if owned[s.id] is None]))
    paths = {path: i for i, path in present.items() if i not in held}
    done = git_batch.remove_clean_worktrees(repo, list(paths))
    for path in (p for p, gone in done.items() if not gone):
        done[path], found = _remove_refused(repo, run, paths[path], path)
        if found:
            held[paths[path]] = found
    remove_emptied_places(repo, run)
    went = {i for path, i in paths.items() if done[path]}
    unlisted = {
        s.id for s in merged if s.worktree is None or resolved(Path(s.worktree)) not in listed
    }
    removed = [s.id for s in merged if s.id in went | unlisted]
    kept, undeleted = _delete_merged_branches(repo, run, removed, tips)
    moved = _moved_on(repo, run, kept)
    onto = bool(kept) and onto_advice.rewritten_now(repo, run)  # `git merge` would undo it
    forgotten = lifecycle.forget_worktrees(run, removed)
    return Cleaned(forgotten, held, kept, undeleted, moved, onto)


def _moved_on(repo: Path, run: RunState, kept: tuple[str, ...]) -> tuple[str, ...]:
    """Of the ``kept`` branches, those of merged specs that moved on after their merge (a
    commit made during it: ``moved_on``); a few git processes each, for these rare ones."""
    merged = {s.branch or branch_name(run.run_id, s.id): s for s in run.specs if s.merged}
    return tuple(
        b
        for b in kept
        if b in merged
        and moved_on.moved_on(merged[b], git_refs.rev_parse(repo, f"refs/heads/{b}"), repo)
    )


def remove_emptied_places(repo: Path, run: RunState) -> None:
    """The directories dagspec made for the run's worktrees, once the last worktree in them
    is gone: the run's own ``<root>/<run-id>``, then the default root ``<repo dir
    name>.worktrees`` beside the repository, which dagspec made for its runs. Each goes only
    while empty (``rmdir``) and only as a real directory: a link (a run's worktrees moved to
    another disk and linked back, a root of the user's on another disk) stays. A root named
    with ``--worktree-root`` is the user's place, which may have been there before any run,
    so it stays, empty or not."""
    root = worktree_root(repo, run.options.worktree_root)
    places = [root / run.run_id, *([root] if run.options.worktree_root is None else [])]
    for place in places:
        if os.path.islink(place):  # noqa: PTH114 (never raises)
            return
        try:
            place.rmdir()
        except FileNotFoundError:
            continue  # gone already: its worktree's removal took it (``remove_worktree``)
        except OSError:  # not empty (another run's worktrees, or the user's files), say
            return


def _owned(spec: SpecState, run: RunState, listed: dict[Path, str | None]) -> Path | None:
    """The spec's worktree when git lists it on the spec's own branch: the one to remove.
    A directory there that is not that worktree (``git_worktree.is_registered``) is none:
    git run in it would act on whatever repository encloses it; it stays as it is."""
    if spec.worktree is None or resolved(Path(spec.worktree)) not in listed:
        return None
    if Path(spec.worktree).is_dir() and not git_worktree.is_registered(Path(spec.worktree)):
        return None
    branch = spec.branch or branch_name(run.run_id, spec.id)
    return Path(spec.worktree) if listed[resolved(Path(spec.worktree))] == branch else None


def _branch_gone(
    repo: Path, run: RunState, owned: dict[str, Path | None], tips: dict[str, str]
) -> dict[str, Unseen]:
    """The specs whose worktree is on their branch, and the branch deleted under it (``git
    update-ref -d``): its ``HEAD``, and its reflog, may be the last names of the spec's
    commits (``adrift.branch_deleted``), so it stays, as ``dag cleanup`` keeps it, with the
    command that brings the branch back. No git process: ``tips`` are the branches."""
    found = {}
    for spec_id, path in owned.items():
        branch = run.spec(spec_id).branch or branch_name(run.run_id, spec_id)
        if path is not None and f"refs/heads/{branch}" not in tips:
            said = adrift.branch_deleted(path, branch, spec_id, run.run_id, repo)
            found[spec_id] = Unseen(path, gone=said)
    return found


def _adrift(
    repo: Path, listed: dict[Path, str | None], specs: list[SpecState]
) -> dict[str, Unseen]:
    """The specs whose worktree, kept for being on no branch of theirs, has a detached
    ``HEAD`` holding commits on no branch (``dagspec.adrift``): named, never dropped. A git
    process only for a detached one."""
    found = {}
    for spec in specs:
        path = Path(spec.worktree) if spec.worktree else None
        detached = path is not None and resolved(path) in listed and not listed[resolved(path)]
        if path is not None and detached and (commits := adrift.commits(path, repo)):
            found[spec.id] = Unseen(path, adrift=tuple(commits), spec_dir=spec.spec_dir)
    return found


def _remove_refused(repo: Path, run: RunState, spec_id: str, path: Path) -> tuple[bool, Unseen]:
    """A worktree ``git worktree remove`` refused: removed when all it has that git sees
    is the configuration dagspec copied in (``worktree.unsaved_work``) and its submodules
    (git refuses every worktree that has one) hold no commit found only there; whether it
    is gone, and the work git status does not show that keeps it."""
    if worktree.unsaved_work(path):
        return False, Unseen(path)  # work to lose
    found = unseen_work.unseen(path, run, spec_id, quiet=set(), submodules=True)
    if found:
        return False, found
    try:
        git_worktree.remove_worktree(repo, path, force=True)
    except GitError:
        return False, found  # locked, or changed meanwhile: keep it
    return True, found


def _delete_merged_branches(
    repo: Path, run: RunState, removed: list[str], tips: dict[str, str]
) -> tuple[tuple[str, ...], Undeleted | None]:
    """Delete the branches of the ``removed`` specs that the base branch contains now, in
    history or in content (a replay still on it, a squash merge: ``git_merge.adds_nothing``),
    whatever the state says (a merge dropped since by a reset is recorded still); the
    branches kept, those the base lacks, the only refs holding their specs' work, and
    those git would not delete (a stale lock file in its way). ``tips``: the branches, as
    they were before the worktrees went (removing one deletes no branch)."""
    prefix = f"refs/heads/dag/{run.run_id}/"
    branches = {i: run.spec(i).branch or branch_name(run.run_id, i) for i in removed}
    branches = {i: b for i, b in branches.items() if f"refs/heads/{b}" in tips}
    try:
        contained = git_batch.contained_in(repo, f"refs/heads/{run.base_branch}", prefix)
    except GitError:
        return tuple(branches.values()), None  # no base branch: nothing is known merged
    done = [
        b
        for i, b in branches.items()
        if f"refs/heads/{b}" in contained
        or replayed_on_base(repo, run, i, b)
        or git_merge.adds_nothing(repo, f"refs/heads/{run.base_branch}", f"refs/heads/{b}")
    ]
    kept = tuple(b for b in branches.values() if b not in done)
    said = git_batch.delete_branches(repo, done)
    if said is None:
        return kept, None
    tips = git_batch.branch_tips(repo, "refs/heads/")  # which git deleted, which not
    left = tuple(b for b in done if f"refs/heads/{b}" in tips)
    common = git_worktree.common_dir(repo) if left else None  # every lock is named
    return kept, with_locks(common, left, said) if left else None


def replayed_on_base(repo: Path, run: RunState, spec_id: str, branch: str) -> bool:
    """Whether the spec's merge, still on the base branch now (a reset or an aborted rebase
    may have dropped it since it was recorded), replayed this branch's tip (the base had
    moved: ``replay.rebase``), which the base then has in content, not in history."""
    merge_commit = run.spec(spec_id).merge_commit
    if merge_commit is None or not git_refs.is_ancestor(
        repo, merge_commit, f"refs/heads/{run.base_branch}"
    ):
        return False
    tip = git_refs.rev_parse(repo, f"refs/heads/{branch}")
    return tip is not None and replay.replayed_tip(repo, merge_commit) == tip


def render_cleanup(before: RunState, after: Cleaned, *, only_unseen: bool = False) -> str:
    """Which merged specs' worktrees ``remove_merged_worktrees`` removed, and which it kept
    and why; one line each, each ending in a newline (empty when there were none).
    ``only_unseen``: only those kept for work git status does not show (the end of a run
    says no more, but never keeps that work without a word)."""
    lines: list[str] = []
    for old, new in zip(before.specs, after.run.specs, strict=True):
        if not old.merged or old.worktree is None:
            continue
        if only_unseen and old.id not in after.unseen:
            continue
        if new.worktree is None:
            lines.append(f"removed worktree {old.worktree} ({old.id})")
        elif old.id in after.unseen:
            advice = after.unseen[old.id].advice()
            lines.append(f"kept worktree {old.worktree} ({old.id}): {advice}")
        elif (busy := checkout_safety.operation_in(Path(old.worktree))) is not None:
            lines.append(
                f"kept worktree {old.worktree} ({old.id}): it is in the middle of {busy}: "
                f"end it, then `dag cleanup {before.run_id}` removes it"
            )
        else:
            lines.append(
                f"kept worktree {old.worktree} ({old.id}): it has changes of its own or is in "
                f"use; look, then `git worktree remove --force {old.worktree}`"
            )
    command = onto_advice.merge_command(before.run_id, onto=after.onto)
    take = {
        b: f"`{command}` replays it" if after.onto else f"`git merge {b}` takes it"
        for b in after.kept_branches
    }
    lines.extend(
        f"kept branch {b}: it moved during the merge (a commit made on it after its work "
        f"was merged): `{command}` takes the new commit"
        if b in after.moved
        else f"kept branch {b}: {before.base_branch} no longer has its work (its merge was "
        f"dropped?): {take[b]}, `git branch -D {b}` drops it"
        for b in after.kept_branches
    )
    return "".join(line + "\n" for line in lines)
