"""Removing the worktrees and branches of merged specs, losing nothing.

The rule for what is safe to remove is ``worktree.unsaved_work``, the same for the end of a
run, ``dag merge --cleanup`` and ``dag cleanup``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from dagspec import git, lifecycle, worktree
from dagspec.errors import GitError
from dagspec.lifecycle import RunState
from dagspec.workspace import branch_name


def remove_merged_worktrees(repo: Path, run: RunState) -> RunState:
    """Remove the worktree and branch of each merged spec, and forget its worktree.

    Only a worktree git lists for this repository, on the spec's own branch, is removed,
    and only when that loses nothing (``worktree.unsaved_work``). Any other stays, and stays
    in the state (``render_cleanup`` names it). A branch is deleted only once the base
    branch contains it. Failed and blocked specs are not merged, so they keep theirs.
    """
    listed = {path.resolve(): branch for path, branch in git.worktrees(repo).items()}
    base = git.rev_parse(repo, f"refs/heads/{run.base_branch}")
    removed = []
    for spec in run.specs:
        branch = spec.branch or branch_name(run.run_id, spec.id)
        if spec.merged and _remove_worktree(repo, spec.worktree, branch, listed):
            _delete_merged_branch(repo, branch, base)
            removed.append(spec.id)
    return lifecycle.forget_worktrees(run, removed)


def _remove_worktree(
    repo: Path, recorded: str | None, branch: str, listed: dict[Path, str | None]
) -> bool:
    """Remove one spec's worktree if that is safe; True when it is gone."""
    if recorded is None or Path(recorded).resolve() not in listed:
        return True
    path = Path(recorded)
    if listed[path.resolve()] != branch or worktree.unsaved_work(path):
        return False  # on another branch since (not the run's any more), or work to lose
    try:
        worktree.remove_worktree(repo, path, force=True)
    except GitError:
        return False  # locked, or changed meanwhile: keep it
    return True


def _delete_merged_branch(repo: Path, branch: str, base: str | None) -> None:
    tip = git.rev_parse(repo, f"refs/heads/{branch}")
    if tip is None or base is None or not git.is_ancestor(repo, tip, base):
        return
    with contextlib.suppress(GitError):  # checked out somewhere else: leave it
        git.delete_branch(repo, branch, force=True)


def render_cleanup(before: RunState, after: RunState) -> str:
    """Which merged specs' worktrees ``remove_merged_worktrees`` removed, and which it kept;
    one line each, each ending in a newline (empty when there were none)."""
    lines: list[str] = []
    for old, new in zip(before.specs, after.specs, strict=True):
        if not old.merged or old.worktree is None:
            continue
        if new.worktree is None:
            lines.append(f"removed worktree {old.worktree} ({old.id})")
        else:
            lines.append(
                f"kept worktree {old.worktree} ({old.id}): it has changes of its own or is in "
                f"use; look, then `git worktree remove --force {old.worktree}`"
            )
    return "".join(line + "\n" for line in lines)
