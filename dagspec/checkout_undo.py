"""Undoing what a killed git left of a fast-forward from one commit to another.

git updates a checkout file by file (each one removed, then written from the start), and
writes the index and the branch only after every file (:mod:`dagspec.checkout_move`). Killed
midway, it leaves, for each path that differs between the two commits, one of: the old
file untouched; no file (removed, not written yet); or a file holding the start of the new
content, possibly all of it. :func:`undo` takes each back to the old file, and removes
nothing that may be the user's. A file is git's when the index still holds the old
commit's entry for its path (an added path: no entry at all) and either

- it is byte for byte, kind and mode, what git writes for the new commit
  (:func:`dagspec.git_checkout.checked_out`): removing it loses nothing, the bytes are the
  new commit's and the next move writes them again; or
- it holds a shorter start of that content (git cut short while writing it), and it was
  last modified inside the *window* in which git was writing: after the move's journal and
  no later than the moment git and its ``dag`` were both gone (:mod:`dagspec.checkout_move`
  records it). A user's edit made after that moment, even one that leaves a start of the
  new content (an emptied file, a cut tail), is outside the window.

Everything else that differs from the old commit is the user's: it is left as it is and
named in :attr:`Undone.left`.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import attrs

from dagspec import git_checkout
from dagspec.git_checkout import GITLINK, Change


@attrs.frozen
class Undone:
    """What :func:`undo` did: ``changed``, whether any file was removed or written back;
    ``left``, the paths (repository-relative, in git's order) that differ
    from the old commit and were left alone as possibly the user's."""

    changed: bool
    left: tuple[str, ...]


def undo(
    checkout: Path,
    old: str,
    new: str,
    window: tuple[int, int] | None,
    *,
    undoing: Sequence[tuple[int, int]] = (),
    keep_fds: Sequence[int] = (),
) -> Undone:
    """Take ``checkout`` back from a partial fast-forward to ``new`` to commit ``old``.

    ``window``: ``(start, end)`` modification times in ns (``st_mtime_ns``) between which
    git was writing files; None when the end is not known, and then no file cut short is
    taken as git's. ``undoing``: the windows of earlier undos of the same move that were
    killed; a start of the *old* content last modified inside one is the piece their
    ``git checkout-index`` cut short, and is written again. ``keep_fds``: the move lock,
    held by ``git checkout-index`` too (``dagspec.git.run``). The index is not touched:
    git had not written it."""
    index = git_checkout.index_entries(checkout)
    removed: list[str] = []
    restore: list[str] = []
    left: list[str] = []
    for change in git_checkout.changes(checkout, old, new):
        if GITLINK in (change.old_mode, change.new_mode):
            continue  # a submodule: git writes no file for it
        path = checkout / change.path
        if index.get(change.path) != _old_entry(change):
            left.append(change.path)  # the user's since: staged, or added
        elif not os.path.lexists(path):
            restore += [] if change.status == "A" else [change.path]
        elif _is_old(checkout, change, old):
            continue  # git had not reached it
        elif (change.status != "D" and _written_by_git(checkout, change, new, window)) or (
            _cut_short_by_undo(checkout, change, old, undoing)
        ):
            path.unlink()
            removed.append(change.path)
            restore += [] if change.status == "A" else [change.path]
        else:
            left.append(change.path)
    for name in removed:
        _remove_empty_parents(checkout, name)
    git_checkout.restore_from_index(checkout, restore, keep_fds=keep_fds)
    return Undone(bool(removed or restore), tuple(left))


def _old_entry(change: Change) -> tuple[str, str] | None:
    """What the index holds for the path before the move: nothing for an added path."""
    return None if change.status == "A" else (change.old_mode, change.old_blob)


def _is_old(checkout: Path, change: Change, old: str) -> bool:
    """Whether the file at ``change.path`` is what the old commit has there."""
    if change.status == "A":
        return False
    path = checkout / change.path
    if not _same_kind(path, change.old_mode) or _content(path) is None:
        return False
    if change.old_mode != "120000" and not _has_mode(path, change.old_mode):
        return False
    return _content(path) == git_checkout.checked_out(checkout, old, change.path)


def _written_by_git(
    checkout: Path, change: Change, new: str, window: tuple[int, int] | None
) -> bool:
    """Whether the file at ``change.path`` is git's (module docstring): all of what git
    writes for it in the new commit, or a start of it last modified inside ``window``."""
    path = checkout / change.path
    held = _content(path)
    if held is None or not _same_kind(path, change.new_mode):
        return False  # a directory, or a file that changed kind: not git's write
    wanted = git_checkout.checked_out(checkout, new, change.path)
    if held == wanted:
        return change.new_mode == "120000" or _has_mode(path, change.new_mode)
    if change.new_mode == "120000" or not wanted.startswith(held) or window is None:
        return False  # a symbolic link is made whole or not at all
    start, end = window
    return start <= path.lstat().st_mtime_ns <= end


def _cut_short_by_undo(
    checkout: Path, change: Change, old: str, undoing: Sequence[tuple[int, int]]
) -> bool:
    """Whether the file at ``change.path`` is a start of the old commit's content that an
    earlier, killed undo was writing (last modified inside one of ``undoing``)."""
    path = checkout / change.path
    if change.status == "A" or not undoing or change.old_mode == "120000":
        return False
    held = _content(path)
    if held is None or path.is_symlink():
        return False
    if not git_checkout.checked_out(checkout, old, change.path).startswith(held):
        return False
    modified = path.lstat().st_mtime_ns
    return any(start <= modified <= end for start, end in undoing)


def _content(path: Path) -> bytes | None:
    """The target of a symbolic link, the bytes of a regular file, else None."""
    if path.is_symlink():
        return os.fsencode(path.readlink())
    if path.is_file():
        return path.read_bytes()
    return None


def _same_kind(path: Path, mode: str) -> bool:
    return path.is_symlink() == (mode == "120000")


def _has_mode(path: Path, mode: str) -> bool:
    """Whether the file's executable bit is the one ``mode`` (``100755``/``100644``) says."""
    executable = bool(path.lstat().st_mode & stat.S_IXUSR)
    return not path.is_symlink() and executable == (mode == "100755")


def _remove_empty_parents(checkout: Path, name: str) -> None:
    """Remove the directories git made for ``name`` that are now empty, deepest first."""
    parent = (checkout / name).parent
    while parent != checkout:
        with contextlib.suppress(OSError):  # not empty (or gone): it stays, and so do its parents
            parent.rmdir()
            parent = parent.parent
            continue
        return
