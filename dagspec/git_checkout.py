"""git's verbs for looking at a checkout's index and files, and putting files back.

:mod:`dagspec.checkout_move` uses them to finish or undo a fast-forward of the user's checkout
that a killed git left half done. Each runs through :func:`dagspec.git.run`, cleaned and
insulated like every git call of dagspec's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from dagspec.errors import GitError, GitOutputError
from dagspec.git import run
from dagspec.git_output import OBJECT_ID, fields

GITLINK = "160000"
"""The mode of a submodule's entry: a commit, never a file git writes."""


class Change(NamedTuple):
    """One path that differs between two commits, as ``git diff-tree --raw`` gives it:
    modes are octal strings (``"000000"`` on the side where the path does not exist), blobs
    are object names (all zeros on that side)."""

    status: str  # A added, D deleted, M modified, T type changed
    path: str
    old_mode: str
    new_mode: str
    old_blob: str
    new_blob: str


def changes(repo: Path, old: str, new: str) -> list[Change]:
    """Every file that differs from commit ``old`` to ``new``, renames as delete and add."""
    args = ("diff-tree", "-r", "-z", "--no-renames", "--raw", old, new)
    out = run(repo, *args)
    items = fields(args, out)
    found = []
    for header, path in zip(items[::2], items[1::2], strict=False):
        raw = _RAW.fullmatch(header)
        if raw is None:
            expected = "':<mode> <mode> <object> <object> <A, D, M or T>' before each path"
            raise GitOutputError(["git", *args], out, header, expected)
        old_mode, new_mode, old_blob, new_blob, status = raw.groups()
        found.append(Change(status, path, old_mode, new_mode, old_blob, new_blob))
    if len(items) % 2:
        raise GitOutputError(["git", *args], out, items[-1], "a path after it")
    return found


# What ``diff-tree --raw --no-renames`` prints before each path (git-diff-tree(1), "Raw
# output format"): no rename or copy (R, C) without renames, no U or X between two trees.
_RAW = re.compile(
    rf":([0-7]{{6}}) ([0-7]{{6}}) ({OBJECT_ID.pattern}) ({OBJECT_ID.pattern}) ([ADMT])"
)


def index_entries(worktree: Path) -> dict[str, tuple[str, str]]:
    """``path -> (mode, blob)`` of every entry of the worktree's index (stage 0 only:
    ``git ls-files --stage`` prints ``mode blob stage<TAB>path``)."""
    args = ("ls-files", "--stage", "-z")
    out = run(worktree, *args)
    entries: dict[str, tuple[str, str]] = {}
    for item in fields(args, out):
        entry = _STAGED.fullmatch(item)
        if entry is None:
            raise GitOutputError(["git", *args], out, item, "'<mode> <object> <stage>\\t<path>'")
        mode, blob, stage, path = entry.groups()
        if stage == "0":
            entries[path] = (mode, blob)
    return entries


_STAGED = re.compile(rf"([0-7]{{6}}) ({OBJECT_ID.pattern}) ([0-3])\t(.+)", re.DOTALL)


def index_matches(worktree: Path, commit: str) -> bool:
    """Whether the worktree's index holds exactly the tree of ``commit``
    (``git diff-index --cached --quiet``: exit 0 when equal, 1 when not)."""
    try:
        run(worktree, "diff-index", "--cached", "--quiet", commit, "--")
    except GitError as exc:
        if exc.returncode == 1:
            return False
        raise
    return True


def checked_out(worktree: Path, commit: str, path: str) -> bytes:
    """The bytes git writes for ``path`` of ``commit`` in this worktree: the blob after its
    smudge filter and end-of-line conversion (``git cat-file --filters``, git 2.11). ``run``
    decodes with ``surrogateescape``, which encodes back to the very same bytes."""
    text = run(worktree, "cat-file", "--filters", f"{commit}:{path}")
    return text.encode("utf-8", "surrogateescape")


def restore_from_index(
    worktree: Path, paths: Sequence[str], *, keep_fds: Sequence[int] = ()
) -> None:
    """Write ``paths`` from the index to the worktree, recording their new stat data: git
    checkout-index "will copy all files listed from the index to the working directory (not
    overwriting existing files)", and ``-u`` updates "stat information for the checked out
    entries in the index file" (git-checkout-index(1)). ``keep_fds``: ``dagspec.git.run``."""
    for start in range(0, len(paths), 500):  # keep each command line short
        batch = paths[start : start + 500]
        run(worktree, "checkout-index", "-q", "-u", "--", *batch, keep_fds=keep_fds)


def two_tree_update(
    worktree: Path, current: str, target: str, *, keep_fds: Sequence[int] = ()
) -> None:
    """Take the worktree's index and files from commit ``current`` to ``target``, leaving
    HEAD alone: ``git read-tree -m -u`` does "a fast-forward (i.e. 2-way) merge" and "-u
    ... update[s] the files in the work tree with the result" (git-read-tree(1)); it
    refuses, changing nothing, when that would lose a local change or an untracked file.
    ``keep_fds``: ``dagspec.git.run``."""
    run(worktree, "read-tree", "-m", "-u", current, target, keep_fds=keep_fds)
