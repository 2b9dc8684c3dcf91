"""git, as small named verbs over one subprocess helper.

Every call runs with a cleaned environment: the variables git sets for hooks (``GIT_DIR``,
``GIT_INDEX_FILE``, ``GIT_WORK_TREE``...) would otherwise point our commands at the
repository and index of the commit being made, so a ``dag`` run from a hook would read or
write the wrong place. Identity and configuration variables are kept.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from dagspec.errors import GitError

_KEPT = ("GIT_AUTHOR_", "GIT_COMMITTER_", "GIT_CONFIG", "GIT_SSH", "GIT_ASKPASS", "GIT_TERMINAL")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment without inherited repository-locating ``GIT_*`` variables."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("GIT_") or name.startswith(_KEPT)
    }
    env.update(extra or {})
    return env


def run(cwd: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None) -> str:
    """Run ``git args`` in ``cwd`` and return stdout; raise ``GitError`` when it fails."""
    cmd = ["git", *args]
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise GitError(cmd, 127, "", "git is not installed or not on PATH") from None
    stdout = done.stdout.decode("utf-8", "surrogateescape")
    if check and done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "surrogateescape")
        raise GitError(cmd, done.returncode, stdout, stderr)
    return stdout


def ok(cwd: Path, *args: str) -> bool:
    """Whether ``git args`` succeeds (for questions such as "does this ref exist")."""
    try:
        run(cwd, *args)
    except GitError:
        return False
    return True


def repo_root(start: Path) -> Path | None:
    """The top of the working tree containing ``start``, or None outside any repository."""
    if not start.is_dir():
        return None
    try:
        top = run(start, "rev-parse", "--show-toplevel").strip()
    except GitError:
        return None
    return Path(top) if top else None


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def nul_split(text: str) -> list[str]:
    """Split ``-z`` output."""
    return [item for item in text.split("\0") if item]


# --- refs and commits -------------------------------------------------------------------


def rev_parse(repo: Path, rev: str) -> str | None:
    """The commit ``rev`` names, or None when it names nothing."""
    try:
        return run(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except GitError:
        return None


def current_branch(worktree: Path) -> str | None:
    """The branch checked out in ``worktree``; None on a detached HEAD."""
    name = run(worktree, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip()
    return name or None


def branch_exists(repo: Path, branch: str) -> bool:
    return ok(repo, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}")


def is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    return ok(repo, "merge-base", "--is-ancestor", ancestor, descendant)


def is_clean(worktree: Path) -> bool:
    """No staged or unstaged changes to tracked files (untracked files do not count)."""
    return run(worktree, "status", "--porcelain", "--untracked-files=no").strip() == ""


# --- worktrees ----------------------------------------------------------------------------


def add_worktree(repo: Path, path: Path, branch: str, start: str) -> None:
    """A new worktree at ``path`` on a new branch ``branch`` starting at ``start``."""
    run(repo, "worktree", "add", "--quiet", "-b", branch, str(path), start)


def add_worktree_existing(repo: Path, path: Path, branch: str) -> None:
    """A worktree at ``path`` on the existing ``branch`` (recreating a deleted worktree)."""
    run(repo, "worktree", "add", "--quiet", str(path), branch)


def remove_worktree(repo: Path, path: Path, *, force: bool = False) -> None:
    run(repo, "worktree", "remove", *(["--force"] if force else []), str(path))


def worktrees(repo: Path) -> dict[Path, str | None]:
    """Every worktree of the repository and its branch (None when detached)."""
    result: dict[Path, str | None] = {}
    path: Path | None = None
    for field in nul_split(run(repo, "worktree", "list", "--porcelain", "-z")):
        if field.startswith("worktree "):
            path = Path(field.removeprefix("worktree "))
            result[path] = None
        elif field.startswith("branch ") and path is not None:
            result[path] = field.removeprefix("branch refs/heads/")
    return result


def delete_branch(repo: Path, branch: str, *, force: bool = False) -> None:
    run(repo, "branch", "-D" if force else "-d", "--quiet", branch)
