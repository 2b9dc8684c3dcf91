"""Whether fast-forwarding the user's checkout of the base branch could lose their work, and
why not, in words that say what to do (README, Merging).

Asking writes nothing, not even the index. A path in the way that an interrupted update
of dagspec's own left behind (``checkout_journal.left_behind``: a piece a killed git cut
short, which could not be told from a user's edit) is named as such.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from dagspec import checkout_journal, git_merge, git_worktree
from dagspec.checkout_journal import Moved
from dagspec.merge_report import names


def unsafe_to_update(
    repo: Path, checkout: Path, old: str, new: str, *, branch: str | None = None
) -> str | None:
    """Why fast-forwarding ``checkout`` from commit ``old`` to ``new`` could lose the user's
    work, or None when it cannot. ``branch``: raise ``Moved`` unless HEAD is that branch at
    ``old``, seen in the same ``git status`` (git's own fast-forward takes any ancestor of
    ``new``: from a tip reset back, it would bring back what the reset dropped)."""
    status = git_merge.checkout_status(checkout)
    if branch is not None and (status.branch, status.head) != (branch, old):
        raise Moved(f"{checkout}: {status.branch or 'HEAD'} at {status.head}")
    changes = [e[3:] for e in status.changes]
    if changes:
        why = f"{checkout} has uncommitted changes ({names(changes)})"
        return why + _left_by_dagspec(repo, checkout, changes)
    in_the_way = untracked_in_the_way(checkout, old, new)
    if in_the_way:
        why = f"{checkout} has untracked files the merge would overwrite ({names(in_the_way)})"
        return why + _left_by_dagspec(repo, checkout, in_the_way)
    return None


class Busy(NamedTuple):
    """An operation of git's that holds a branch in a worktree: why the branch must not
    move (``why``), and what must happen before it can (``until``: "the rebase has ended")."""

    why: str
    until: str


def operation_on(worktree: Path, branch: str) -> Busy | None:
    """Why ``branch`` counts as checked out in ``worktree`` though its HEAD is detached, or
    None: a rebase of it, which writes it back as it ends (moved meanwhile, it loses what
    moved it, at ``git rebase --abort`` too), or a bisect started on it, which returns to it.
    Read from git's own files in the worktree's git directory, as git decides it (``git
    branch -f`` refuses such a branch; ``worktree.c``: ``is_worktree_being_rebased``)."""
    gitdir = git_worktree.dot_git(worktree)
    if gitdir is None:
        return None
    for kind in ("rebase-merge", "rebase-apply"):
        if _first_line(gitdir / kind / "head-name") == f"refs/heads/{branch}":
            return Busy(
                f"{worktree} is in the middle of a rebase of {branch}, which sets {branch} "
                "as it ends (`git rebase --continue` or `--abort`)",
                f"the rebase of {branch} in {worktree} has ended",
            )
    if _first_line(gitdir / "BISECT_START") == branch:
        return Busy(
            f"{worktree} is bisecting from {branch} (`git bisect reset` ends it)",
            f"the bisect in {worktree} has ended",
        )
    return None


_IN_PROGRESS = (
    ("rebase-merge", "a rebase", "`git rebase --continue` or `--abort`"),
    ("rebase-apply", "a rebase or `git am`", "`git rebase --abort` or `git am --abort`"),
    ("MERGE_HEAD", "a merge", "commit it, or `git merge --abort`"),
    ("CHERRY_PICK_HEAD", "a cherry-pick", "`git cherry-pick --continue` or `--abort`"),
    ("REVERT_HEAD", "a revert", "`git revert --continue` or `--abort`"),
    ("BISECT_START", "a bisect", "`git bisect reset`"),
)


def operation_in(worktree: Path, *, merge_ok: bool = False) -> str | None:
    """What operation of git's someone left under way in ``worktree``, and how to end it
    (``a rebase (`git rebase --continue` or `--abort`)``), from git's own files in its git
    directory; None when there is none. ``merge_ok``: a merge does not count (a join
    conflict resolved by hand and staged: the spec's commit concludes it)."""
    gitdir = git_worktree.dot_git(worktree)
    if gitdir is None:
        return None
    for name, what, end in _IN_PROGRESS:
        if merge_ok and name == "MERGE_HEAD":
            continue
        if (gitdir / name).exists():
            return f"{what} ({end} there)"
    return None


def _first_line(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:  # not there, or not a file
        return None
    return text.partition("\n")[0].strip()


def _left_by_dagspec(repo: Path, checkout: Path, paths: Collection[str]) -> str:
    """``; P was left by an interrupted update: delete it if it is not yours`` for the
    ``paths`` an interrupted update left in ``checkout``; empty when none was."""
    left = [p for p in paths if p in checkout_journal.left_behind(repo, checkout)]
    if not left:
        return ""
    verb = "was" if len(left) == 1 else "were"
    return (
        f"; {names(left)} {verb} left by an interrupted update of dagspec's: delete "
        f"{'it' if len(left) == 1 else 'them'} if not yours"
    )


def untracked_in_the_way(checkout: Path, old: str, new: str) -> list[str]:
    """Paths the move from ``old`` to ``new`` adds that exist untracked in ``checkout``, or
    whose parent exists there as an untracked file. Ignored files count: git would
    overwrite them silently."""
    changes = git_merge.tree_changes(checkout, old, new)
    removed = {path for status, path in changes if status == "D"}
    hits: set[str] = set()
    for path in (path for status, path in changes if status == "A"):
        if os.path.lexists(checkout / path):
            hits.add(path)
        for parent in map(str, PurePosixPath(path).parents):
            if parent != "." and parent not in removed and _not_a_dir(checkout / parent):
                hits.add(parent)
    return sorted(hits)


def _not_a_dir(path: Path) -> bool:
    """Something is there, and git could not put files under it."""
    return path.is_symlink() or (path.exists() and not path.is_dir())
