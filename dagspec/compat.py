"""What an autospec older than 0.10.4 (upstream v0.7.3) needs around a spec's worktree.

Two of its ways, seen in runs of the real binary (reference/autospec-contract.md §1.5,
issue 13):

- its specify checks out a branch of its own, ``NNN-name``, even in a linked worktree, so
  the worktree of a spec that failed or was interrupted is left on that branch, with
  whatever the agent committed: ``take_back`` brings the spec's branch to it before the spec
  restarts or its worktree is cleaned up, even when the directory was deleted by hand, so
  that work is continued, collected and merged like any other;
- its ``run --spec X`` looks for ``specs/-X/``, so a spec is continued without ``--spec``
  (``autospec.spec_flag_works``), and autospec then takes the spec of its ``NNN-name``
  branch, else the most recently modified ``specs/*-*`` directory: ``make_newest`` makes
  the spec's directory that one.

Synchronous, like ``git``; ``attempt.prepare`` calls both, ``take_back`` under the drive's
``Bookkeeping.worktrees`` lock.

A branch is autospec's only when it did not exist as the worktree was made (``note_branches``
records the repository's branches then, in the worktree's own git directory), is named
``NNN-name``, and descends from the spec's branch: a user who switched the worktree to a
branch of their own (``git switch feature``) gets it back untouched, never merged as the
spec's work (``adoptable``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

from dagspec import git_merge, git_refs, git_worktree
from dagspec.workspace import resolved

_OWN_BRANCH = re.compile(r"\d{3}-.")  # DetectCurrentSpec's ^(\d{3})-(.+)$
_NEWER = 1_000_000_000  # ns: newer by a second, which even a coarse file system can tell


def make_newest(specs: Path, name: str) -> None:
    """Make ``specs/<name>`` the most recently modified ``specs/*-*`` directory (now, or a
    second after the newest other one if that is later)."""
    others = [p.stat().st_mtime_ns for p in specs.glob("*-*") if p.is_dir() and p.name != name]
    stamp = max([time.time_ns(), *(t + _NEWER for t in others)])
    os.utime(specs / name, ns=(stamp, stamp))


_BEFORE = "dagspec-branches-before"  # in the worktree's own git directory: goes with it


def note_branches(worktree: Path, names: Iterable[str]) -> None:
    """Record, as the worktree is made, the branches the repository has then: no branch
    among them is autospec's (``adoptable``)."""
    admin = _admin_dir(worktree)
    if admin is not None:
        (admin / _BEFORE).write_text("".join(f"{n}\n" for n in sorted(names)), "utf-8")


def adoptable(worktree: Path, name: str) -> bool:
    """Whether branch ``name``, checked out in ``worktree``, may be autospec's own: named
    ``NNN-name`` and not among the branches recorded as the worktree was made (none is
    when nothing was recorded: a branch that may be the user's is never taken)."""
    admin = _admin_dir(worktree)
    if not _OWN_BRANCH.match(name) or admin is None:
        return False
    try:
        before = (admin / _BEFORE).read_text("utf-8").splitlines()
    except OSError:
        return False
    return name not in before


def _admin_dir(worktree: Path) -> Path | None:
    """The linked worktree's own git directory, from its ``.git`` file (no git process)."""
    try:
        pointer = (worktree / ".git").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not pointer.startswith("gitdir: "):
        return None
    admin = worktree / pointer.removeprefix("gitdir: ")
    return admin if admin.is_dir() else None


def take_back(repo: Path, path: Path, *, branch: str, base_commit: str) -> str | None:
    """Before the spec restarts (or its worktree is cleaned up): if autospec left the
    worktree at ``path`` on a branch of its own, move the spec's ``branch`` there (creating
    it if it was removed) and delete that branch; return its name, or None when there was
    none.

    autospec's branch is the one git has registered for that worktree, so it is known even
    when the directory was deleted by hand (git keeps the registration, "prunable"); the
    worktree is kept as it is, uncommitted files and all, only its branch renamed back. Only
    an ``NNN-name`` branch that holds every commit of ``branch`` (of the run's
    ``base_commit`` when ``branch`` is gone) is taken, so no commit is ever left behind.
    """
    where, own = _registration(repo, path)
    if where is None or own is None or own == branch or not _OWN_BRANCH.match(own):
        return None
    if where.exists() and not adoptable(where, own):
        return None  # the user's: ``worktree.collect_work`` says so, touching nothing
    tip = git_refs.rev_parse(repo, f"refs/heads/{own}")
    if tip is None or not _descends(repo, tip, branch, base_commit):
        return None
    if where.exists():
        git_worktree.checkout_branch_at(path, branch, tip)
    else:
        git_worktree.remove_worktree(
            repo, where, force=True
        )  # a registration whose directory is gone
        if any(b == branch for b in git_worktree.worktrees(repo).values()):
            return None  # checked out somewhere else: not ours to move
        git_merge.set_branch(repo, branch, tip)
    git_refs.delete_branch(repo, own, force=True)  # its commits are all on `branch` now
    return own


def _registration(repo: Path, path: Path) -> tuple[Path | None, str | None]:
    """The worktree git has registered at ``path`` and its branch: at that very place, or,
    with its directory gone, one at the same ``<run-id>/<spec-id>`` (the repository was
    moved since)."""
    registered = git_worktree.worktrees(repo)
    for where, on in registered.items():
        if resolved(where) == resolved(path) and path.is_dir():
            return where, on
    for where, on in registered.items():
        if not where.exists() and where.parts[-2:] == path.parts[-2:]:
            return where, on
    return None, None


def _descends(repo: Path, tip: str, branch: str, base_commit: str) -> bool:
    """Whether ``tip`` holds every commit of ``branch`` (of the run's base commit when
    ``branch`` is gone): a branch grown from the spec's, whose taking loses nothing."""
    start = f"refs/heads/{branch}" if git_refs.branch_exists(repo, branch) else base_commit
    return git_refs.is_ancestor(repo, start, tip)
