"""Commits on no branch: reachable from a spec's worktree's detached ``HEAD`` alone.

A user who ran ``git checkout --detach`` in a spec's worktree and committed there, or a
rebase stopped half way, leaves commits that no branch or tag holds; removing the worktree
removes its ``HEAD``, the last name of them (but for reflogs, until ``git gc``). Every path
that removes a spec's worktree or takes it up again asks ``commits`` first and keeps the
worktree, naming the commits and how to keep them (``keep_them``). A worktree on a branch
costs no git process: its ``HEAD`` file says so.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from dagspec import git_refs, git_worktree
from dagspec.errors import DagspecError
from dagspec.ledgers import shared_dir
from dagspec.merge_report import names
from dagspec.words import counted
from dagspec.worktree import git_dir


def admin_dir(worktree: Path, repo: Path | None = None) -> Path | None:
    """The linked worktree's own git directory, from its ``.git`` file; when the directory
    was deleted (git still lists it, "prunable"), the one of ``repo``'s registrations
    whose ``gitdir`` names it. No git process."""
    own = git_dir(worktree)
    if own is not None or repo is None or os.path.lexists(worktree):
        return own
    registered = shared_dir(repo) / "worktrees"
    wanted = os.path.realpath(worktree / ".git")
    with contextlib.suppress(OSError):
        for admin in registered.iterdir():
            with contextlib.suppress(OSError):
                named = (admin / "gitdir").read_text("utf-8", "surrogateescape").strip()
                if os.path.realpath(named) == wanted:
                    return admin
    return None


def detached_at(own: Path | None) -> str | None:
    """The commit a worktree's ``HEAD`` (in its git directory ``own``) is detached at, read
    with no git process; None when it is on a branch, or there is no readable ``HEAD``."""
    try:
        head = (own / "HEAD").read_text("utf-8", "surrogateescape").strip() if own else ""
    except OSError:
        return None
    return head if head and not head.startswith("ref:") else None


def detached(worktree: Path) -> bool:
    """Whether the linked worktree's ``HEAD`` is detached (``detached_at``)."""
    return detached_at(git_dir(worktree)) is not None


def commits(worktree: Path, repo: Path | None = None) -> list[str]:
    """``<short sha> <subject>`` of each commit reachable from the worktree's ``HEAD`` and
    from no branch or tag, newest first; empty, with no git process, when ``HEAD`` is on a
    branch. With ``repo``, a worktree whose directory was deleted is asked of its
    registration (``admin_dir``), which holds its ``HEAD`` still."""
    tip = detached_at(admin_dir(worktree, repo))
    if tip is None:
        return []
    where = worktree if repo is None or worktree.is_dir() else repo
    return git_refs.commits_lacking(where, tip, ["--branches", "--tags"])


def held(found: list[str]) -> str:
    """``its detached HEAD holds 2 commits on no branch (abc1234 work, def5678 more)``."""
    return f"its detached HEAD holds {counted(len(found), 'commit')} on no branch ({names(found)})"


def keep_them(found: list[str]) -> str:
    """``git branch NAME abc1234`` keeps them: the newest, ``HEAD``, holds the others."""
    them = "it" if len(found) == 1 else "them"
    return f"`git branch NAME {found[0].split(' ', 1)[0]}` keeps {them}"


def refuse_taking_up(
    worktree: Path, repo: Path, spec_id: str, run_id: str, branch_and_again: tuple[str, str]
) -> None:
    """Raise ``DagspecError`` when ``retry`` or ``resume`` would take up a spec whose worktree
    has a detached ``HEAD`` holding commits on no branch: its agent would work there, on no
    branch, beside commits that are not the spec's (or, its directory deleted, its
    registration would be removed with them). No git process for one on a branch."""
    branch, again = branch_and_again
    found = commits(worktree, repo)
    if found and not worktree.is_dir():  # deleted: git's registration holds its HEAD
        raise DagspecError(
            f"the worktree {worktree} of spec {spec_id} of run {run_id} was deleted, but "
            f"git's record of it has a detached HEAD with {counted(len(found), 'commit')} on "
            f"no branch ({names(found)}): {keep_them(found)}, "
            f"then `{again}` (it makes the worktree again from its branch {branch})"
        )
    if found:
        raise DagspecError(
            f"the worktree {worktree} of spec {spec_id} of run {run_id} is not on its branch "
            f"{branch}: {held(found)}: {keep_them(found)}; then `git -C {worktree} switch "
            f"{branch}` (and `git -C {worktree} merge NAME` if they are the spec's work), "
            f"then `{again}`"
        )


# --- a branch deleted under its worktree --------------------------------------------------


def on_branch(worktree: Path, branch: str, repo: Path | None = None) -> bool:
    """Whether the worktree's ``HEAD`` names ``branch`` (its ``HEAD`` file, no git process),
    whether or not the branch exists; ``repo``: as ``commits``."""
    own = admin_dir(worktree, repo)
    try:
        head = (own / "HEAD").read_text(encoding="utf-8", errors="surrogateescape") if own else ""
    except OSError:
        return False
    return head.strip() == f"ref: refs/heads/{branch}"


def last_commit(own: Path | None) -> str | None:
    """The commit a worktree's ``HEAD`` was at last, from its own reflog (``logs/HEAD`` in
    its git directory ``own``, which a deleted branch does not take with it); no git
    process."""
    try:
        log = (own / "logs" / "HEAD").read_text(encoding="utf-8", errors="replace") if own else ""
    except OSError:
        return None
    entries = [line.split(" ", 2) for line in log.splitlines() if line.count(" ") >= 2]
    for old, new, _ in reversed(entries):
        for sha in (new, old):
            if sha.strip("0"):
                return sha
    return None


def branch_deleted(
    worktree: Path, branch: str, spec_id: str, run_id: str, repo: Path | None = None
) -> str:
    """``branch ... was deleted while its worktree was on it``, with the commit it was at
    (``last_commit``) and how to bring it back; ``repo``: as ``commits``."""
    own = admin_dir(worktree, repo)
    sha = last_commit(own)
    back = f"`git branch {branch} {sha[:12] if sha else 'SHA'}` brings it back"
    found = (
        f"its worktree's own reflog ({own / 'logs' / 'HEAD' if own else 'logs/HEAD'}) has it "
        f"last at commit {sha[:12]}: {back}"
        if sha
        else f"`git -C {worktree} reflog` may name the commit it was at: {back}"
    )
    return (
        f"branch {branch} of spec {spec_id} of run {run_id} was deleted while its worktree "
        f"{worktree} was on it, so the spec's commits are on no branch; {found}"
    )


def forget_deleted(repo: Path, worktree: Path, branch: str) -> None:
    """Before a spec starts afresh at ``worktree`` (its branch gone): a registration git
    still holds there, its directory deleted, goes first, or ``git worktree add`` refuses
    ("a missing but already registered worktree") on every retry. It goes only when it
    names nothing else: its detached ``HEAD`` holds no commit on no branch, or it is on a
    branch that exists; else ``DagspecError`` says how to keep them (``retry`` refuses such
    a spec first, ``refuse_taking_up``). No git process unless there is one to forget."""
    own = admin_dir(worktree, repo)
    if own is None or os.path.lexists(worktree):
        return
    at, named = detached_at(own), head_branch(own)
    found = commits(worktree, repo)  # a git process only for a detached one
    on_a_branch = at is None and bool(named) and git_refs.branch_exists(repo, named)
    if found or not (at is not None or on_a_branch):
        sha = at or last_commit(own)
        keep = keep_them(found) if found else f"`git branch NAME {sha[:12] if sha else 'SHA'}`"
        raise DagspecError(
            f"git's record of the deleted worktree {worktree} names commits no branch may "
            f"hold (its reflog: {own / 'logs' / 'HEAD'}): {keep}{'' if found else ' keeps them'}"
            f", then `git worktree remove {worktree}` forgets it, and the spec (its branch "
            f"{branch} gone) starts afresh"
        )
    git_worktree.remove_worktree(repo, worktree, force=True)


def head_branch(own: Path) -> str:
    """The branch a worktree's ``HEAD`` file (in its git directory ``own``) names; ``""``."""
    try:
        head = (own / "HEAD").read_text(encoding="utf-8", errors="surrogateescape").strip()
    except OSError:
        return ""
    return head.removeprefix("ref: refs/heads/") if head.startswith("ref: ") else ""
