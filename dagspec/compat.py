"""What an autospec older than 0.10.4 (upstream v0.7.3) needs around a spec's worktree.

Two of its ways, seen in runs of the real binary (reference/autospec-contract.md §1.5,
issue 13):

- its specify checks out a branch of its own, ``NNN-name``, even in a linked worktree, so
  the worktree of a spec that failed or was interrupted is left on that branch, with
  whatever the agent committed: ``take_back`` brings the spec's branch to it before the spec
  restarts, whether the worktree is still there or was deleted (``dag cleanup``, by hand),
  so that work is continued, collected and merged like any other;
- its ``run --spec X`` looks for ``specs/-X/``, so a spec is continued without ``--spec``
  (``autospec.spec_flag_works``), and autospec then takes the spec of its ``NNN-name``
  branch, else the most recently modified ``specs/*-*`` directory: ``make_newest`` makes
  the spec's directory that one.

Synchronous, like ``git``; ``attempt.prepare`` calls both under the scheduler's git lock.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path, PurePosixPath

from dagspec import git, git_merge

_OWN_BRANCH = re.compile(r"\d{3}-.")  # DetectCurrentSpec's ^(\d{3})-(.+)$
_NEWER = 1_000_000_000  # ns: newer by a second, which even a coarse file system can tell


def make_newest(specs: Path, name: str) -> None:
    """Make ``specs/<name>`` the most recently modified ``specs/*-*`` directory (now, or a
    second after the newest other one if that is later)."""
    others = [p.stat().st_mtime_ns for p in specs.glob("*-*") if p.is_dir() and p.name != name]
    stamp = max([time.time_ns(), *(t + _NEWER for t in others)])
    os.utime(specs / name, ns=(stamp, stamp))


def take_back(
    repo: Path, path: Path, *, branch: str, spec_dir: str | None, base_commit: str
) -> str | None:
    """Before the spec restarts: if autospec left its work on a branch of its own, move the
    spec's ``branch`` there (creating it if ``dag cleanup`` removed it) and delete that
    branch; return its name, or None when there was none.

    With the worktree at ``path`` still there, autospec's branch is the one it has checked
    out (kept as it is, uncommitted files and all, only renamed back). With the worktree
    gone, it is the branch named after the spec's directory ``spec_dir`` (``specs/NNN-x``:
    specify names both alike). Either way only a branch that descends from ``branch`` (or,
    without it, from the run's ``base_commit``) is taken, so no commit is ever left behind.
    """
    registered = {p.resolve(): b for p, b in git.worktrees(repo).items()}
    if path.resolve() in registered and path.is_dir():
        own = registered[path.resolve()]
        tip = git.rev_parse(path, "HEAD")
        if not _own(own) or not _descends(repo, tip, branch, base_commit):
            return None
        git.checkout_branch_at(path, branch, str(tip))
    else:
        own = PurePosixPath(spec_dir).name if spec_dir else None
        tip = git.rev_parse(repo, f"refs/heads/{own}") if own else None
        if not _own(own) or not _descends(repo, tip, branch, base_commit):
            return None
        for gone in (p for p, b in registered.items() if b in (own, branch) and not p.exists()):
            git.remove_worktree(repo, gone, force=True)  # a registration whose directory is gone
        if any(b in (own, branch) for p, b in git.worktrees(repo).items()):
            return None  # checked out somewhere else: not ours to move
        git_merge.set_branch(repo, branch, str(tip))
    assert own is not None
    git.delete_branch(repo, own, force=True)  # its commits are all on `branch` now
    return own


def _own(name: str | None) -> bool:
    """Whether ``name`` is a branch autospec's specify makes (``NNN-name``)."""
    return name is not None and _OWN_BRANCH.match(name) is not None


def _descends(repo: Path, tip: str | None, branch: str, base_commit: str) -> bool:
    """Whether ``tip`` holds every commit of ``branch`` (of the run's base commit when
    ``branch`` is gone): a branch grown from the spec's, whose taking loses nothing."""
    if tip is None:
        return False
    start = f"refs/heads/{branch}" if git.branch_exists(repo, branch) else base_commit
    return git.is_ancestor(repo, start, tip)
