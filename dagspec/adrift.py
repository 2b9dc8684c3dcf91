"""Commits on no branch: reachable from a spec's worktree's detached ``HEAD`` alone.

A user who ran ``git checkout --detach`` in a spec's worktree and committed there, or a
rebase stopped half way, leaves commits that no branch or tag holds; removing the worktree
removes its ``HEAD``, the last name of them (but for reflogs, until ``git gc``). Every path
that removes a spec's worktree or takes it up again asks ``commits`` first and keeps the
worktree, naming the commits and how to keep them (``keep_them``). A worktree on a branch
costs no git process: its ``HEAD`` file says so.
"""

from __future__ import annotations

from pathlib import Path

from dagspec import git_refs
from dagspec.errors import DagspecError
from dagspec.merge_report import names
from dagspec.words import counted
from dagspec.worktree import git_dir


def detached(worktree: Path) -> bool:
    """Whether the linked worktree's ``HEAD`` is detached, read from its git directory with
    no git process; False for a worktree on a branch, or with no readable ``HEAD``."""
    own = git_dir(worktree)
    if own is None:
        return False
    try:
        head = (own / "HEAD").read_text(encoding="utf-8", errors="surrogateescape").strip()
    except OSError:
        return False
    return bool(head) and not head.startswith("ref:")


def commits(worktree: Path) -> list[str]:
    """``<short sha> <subject>`` of each commit reachable from the worktree's ``HEAD`` and
    from no branch or tag, newest first; empty, with no git process, when ``HEAD`` is on a
    branch."""
    if not detached(worktree):
        return []
    return git_refs.commits_lacking(worktree, "HEAD", ["--branches", "--tags"])


def held(found: list[str]) -> str:
    """``its detached HEAD holds 2 commits on no branch (abc1234 work, def5678 more)``."""
    return f"its detached HEAD holds {counted(len(found), 'commit')} on no branch ({names(found)})"


def keep_them(found: list[str]) -> str:
    """``git branch NAME abc1234`` keeps them: the newest, ``HEAD``, holds the others."""
    them = "it" if len(found) == 1 else "them"
    return f"`git branch NAME {found[0].split(' ', 1)[0]}` keeps {them}"


def refuse_taking_up(worktree: Path, spec_id: str, run_id: str, branch: str, again: str) -> None:
    """Raise ``DagspecError`` when ``retry`` or ``resume`` would take up a spec whose worktree
    has a detached ``HEAD`` holding commits on no branch: its agent would work there, on no
    branch, beside commits that are not the spec's. No git process for one on a branch."""
    found = commits(worktree)
    if found:
        raise DagspecError(
            f"the worktree {worktree} of spec {spec_id} of run {run_id} is not on its branch "
            f"{branch}: {held(found)}: {keep_them(found)}; then `git -C {worktree} switch "
            f"{branch}` (and `git -C {worktree} merge NAME` if they are the spec's work), "
            f"then `{again}`"
        )


# --- a branch deleted under its worktree --------------------------------------------------


def on_branch(worktree: Path, branch: str) -> bool:
    """Whether the worktree's ``HEAD`` names ``branch`` (its ``HEAD`` file, no git process),
    whether or not the branch exists."""
    own = git_dir(worktree)
    try:
        head = (own / "HEAD").read_text(encoding="utf-8", errors="surrogateescape") if own else ""
    except OSError:
        return False
    return head.strip() == f"ref: refs/heads/{branch}"


def last_commit(worktree: Path) -> str | None:
    """The commit the worktree's ``HEAD`` was at last, from its own reflog (``logs/HEAD`` in
    its git directory, which a deleted branch does not take with it); no git process."""
    own = git_dir(worktree)
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


def branch_deleted(worktree: Path, branch: str, spec_id: str, run_id: str) -> str:
    """``branch ... was deleted while its worktree was on it``, with the commit it was at
    (``last_commit``) and how to bring it back."""
    sha = last_commit(worktree)
    own = git_dir(worktree)
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
