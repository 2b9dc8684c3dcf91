"""Undoing what a killed git left of a fast-forward from one commit to another.

git updates a checkout file by file (each one removed, then written from the start), and
writes the index and the branch only after every file (:mod:`dagspec.checkout`). Killed
midway, it leaves, for each path that differs between the two commits, one of: the old
file untouched; no file (removed, not written yet); or a file holding the start of the new
content, possibly all of it. :func:`undo` takes each back to the old file, and removes
nothing that is not provably git's: a file is git's only when its bytes are a prefix of
what git writes for the new commit (:func:`dagspec.git_checkout.checked_out`) and not the
old content, and only where the index still holds the old commit's entry (an added path:
no entry at all), so a file the user changed or staged since is never touched.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from dagspec import git_checkout
from dagspec.git_checkout import GITLINK, Change


def undo(checkout: Path, old: str, new: str) -> bool:
    """Take ``checkout`` back from a partial fast-forward to ``new`` to commit ``old``;
    True when anything was changed. The index is not touched: git had not written it."""
    index = git_checkout.index_entries(checkout)
    removed: list[str] = []
    restore: list[str] = []
    changed = False
    for change in git_checkout.changes(checkout, old, new):
        if GITLINK in (change.old_mode, change.new_mode):
            continue  # a submodule: git writes no file for it
        if index.get(change.path) != _old_entry(change):
            continue  # the user's since: staged, or added
        path = checkout / change.path
        if not _exists(path):
            restore += [] if change.status == "A" else [change.path]
        elif change.status == "D":
            continue  # still there: git had not reached it
        elif _written_by_git(checkout, change, (old, new)):
            path.unlink()
            removed.append(change.path)
            restore += [] if change.status == "A" else [change.path]
        elif change.old_blob == change.new_blob and _has_mode(path, change.new_mode):
            path.chmod(0o755 if change.old_mode == "100755" else 0o644)
            changed = True  # a mode-only change git had made: made again by the next move
    for name in removed:
        _remove_empty_parents(checkout, name)
    git_checkout.restore_from_index(checkout, restore)
    return bool(changed or removed or restore)


def _old_entry(change: Change) -> tuple[str, str] | None:
    """What the index holds for the path before the move: nothing for an added path."""
    return None if change.status == "A" else (change.old_mode, change.old_blob)


def _written_by_git(checkout: Path, change: Change, commits: tuple[str, str]) -> bool:
    """Whether the file at ``change.path`` holds a start of what git writes for it in the
    new commit, and is not what the old commit has there (a file git had not reached)."""
    old, new = commits
    path = checkout / change.path
    held = _content(path)
    if held is None:
        return False  # a directory, or a file that changed kind: not git's partial write
    wanted = git_checkout.checked_out(checkout, new, change.path)
    is_link = change.new_mode == "120000"  # a symbolic link is made whole or not at all
    if path.is_symlink() != is_link or not wanted.startswith(held) or (is_link and held != wanted):
        return False
    if change.status == "A":
        return True
    return held != git_checkout.checked_out(checkout, old, change.path) or not _same_kind(
        path, change.old_mode
    )


def _content(path: Path) -> bytes | None:
    """The target of a symbolic link, the bytes of a regular file, else None."""
    if path.is_symlink():
        return os.fsencode(path.readlink())
    if path.is_file():
        return path.read_bytes()
    return None


def _exists(path: Path) -> bool:
    return path.is_symlink() or path.exists()


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
