"""Worktrees and what is in them: small named verbs over :func:`dagspec.git.run`.

Adding, listing, repairing and removing worktrees (git-worktree(1)); what a checkout has
that is not committed (status, untracked and tracked files, unresolved conflicts); where a
checkout's own and shared git directories are. How dagspec lays out and prepares a spec's
worktree is :mod:`dagspec.worktree`'s.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dagspec.errors import GitError, GitOutputError
from dagspec.git import run
from dagspec.git_output import fields, nul_split, one_line, status_entries


def add_worktree(repo: Path, path: Path, branch: str, start: str) -> None:
    """A new worktree at ``path`` on a new branch ``branch`` starting at ``start``."""
    run(repo, "worktree", "add", "--quiet", "-b", branch, str(path), start)


def add_worktree_existing(repo: Path, path: Path, branch: str) -> None:
    """A worktree at ``path`` on the existing ``branch`` (recreating a deleted worktree)."""
    run(repo, "worktree", "add", "--quiet", str(path), branch)


def remove_worktree(repo: Path, path: Path, *, force: bool = False) -> None:
    run(repo, "worktree", "remove", *(["--force"] if force else []), str(path))


def worktrees(repo: Path) -> dict[Path, str | None]:
    """Every checkout of the repository and its branch (None when detached), as ``git
    worktree list`` names them: the main one first; a bare repository, which has no
    checkout, is left out. A main checkout whose git directory lies elsewhere (``git init
    --separate-git-dir``) is listed as that directory (git 2.39): it is named ``repo`` when
    ``repo`` is that checkout, else left out (no git directory is a checkout)."""
    result: dict[Path, str | None] = {}
    path: Path | None = None
    for field in nul_split(run(repo, "worktree", "list", "--porcelain", "-z")):
        if field.startswith("worktree "):
            path = Path(field.removeprefix("worktree "))
            path = _checkout_of(path, repo) if not result else path
            result[path] = None
        elif field.startswith("branch ") and path is not None:
            result[path] = field.removeprefix("branch refs/heads/")
        elif field == "bare" and path is not None:
            del result[path]
    return {path: branch for path, branch in result.items() if path != _NOWHERE}


_NOWHERE = Path("/dev/null/no-checkout")


def _checkout_of(listed: Path, repo: Path) -> Path:
    """The main checkout ``git worktree list`` names ``listed``: itself, or, when it is a
    git directory (``--separate-git-dir``), ``repo`` if ``repo``'s ``.git`` file leads
    there, else ``_NOWHERE``. No git process: the files say it."""
    if (listed / ".git").exists() or not (listed / "HEAD").is_file():
        return listed
    target = gitfile_target(repo)
    if target is None:
        return _NOWHERE
    return repo if os.path.realpath(target) == os.path.realpath(listed) else _NOWHERE


def repair_worktrees(repo: Path, paths: Sequence[Path]) -> None:
    """Mend the links between the repository and its linked worktrees at ``paths`` after
    either moved (``git worktree repair``, git 2.29 or newer)."""
    run(repo, "worktree", "repair", *map(str, paths))


def uncommitted(worktree: Path) -> list[str]:
    """What removing ``worktree`` would lose: ``XY path`` per changed or untracked file
    (ignored files are not listed; a rename is listed once, under its new path)."""
    args = ("status", "--porcelain", "-z", "--untracked-files=all")
    return status_entries(args, run(worktree, *args))


def unmerged_files(worktree: Path) -> list[str]:
    """The files of ``worktree`` with a conflict not resolved yet (a merge in progress)."""
    args = ("diff", "--name-only", "--diff-filter=U", "-z")
    return sorted(set(fields(args, run(worktree, *args))))


def checkout_branch_at(worktree: Path, branch: str, commit: str) -> None:
    """Point ``branch`` at ``commit`` and check it out in ``worktree`` (``checkout -B``)."""
    run(worktree, "checkout", "--quiet", "--no-recurse-submodules", "-B", branch, commit)


def untracked_files(worktree: Path, *paths: str, each: bool = True) -> list[str]:
    """Untracked files that are not ignored, under ``paths`` (file names, not patterns: a
    ``[`` or ``*`` in one is itself), one entry per file (``each`` False: a directory
    wholly untracked is one entry, ``dir/``, as ``git status`` shows it)."""
    shown = "--untracked-files=all" if each else "--untracked-files=normal"
    args = ("--literal-pathspecs", "status", "--porcelain", "-z", shown)
    out = run(worktree, *args, "--", *paths)
    return [entry[3:] for entry in status_entries(args, out) if entry.startswith("?? ")]


def tracked_files(worktree: Path, path: str) -> list[str]:
    """Tracked files at or under ``path`` (a file name, not a pattern)."""
    args = ("--literal-pathspecs", "ls-files", "-z", "--", path)
    return fields(args, run(worktree, *args))


def tree_dirs(repo: Path, commit: str, path: str) -> list[str]:
    """Names of the directories directly under ``path`` in ``commit``."""
    args = ("ls-tree", "-d", "-z", "--name-only", f"{commit}:{path}")
    return fields(args, run(repo, *args, check=False))


def git_dir(worktree: Path) -> Path:
    """The worktree's own git directory (``.git/worktrees/<name>`` for a linked worktree):
    a place for private markers that is never committed and goes with the worktree."""
    args = ("rev-parse", "--absolute-git-dir")
    return Path(one_line(args, run(worktree, *args)))


def own_git_dir(checkout: Path) -> Path:
    """``git_dir``, read from the checkout's ``.git`` (``dot_git``) without a git process;
    git is asked only when that does not say."""
    found = dot_git(checkout)
    return found if found is not None else git_dir(checkout)


def common_dir(repo: Path) -> Path | None:
    """The repository's shared git directory (``--git-common-dir``): the main checkout's
    ``.git`` even from a linked worktree (git-worktree(1)); None when git cannot tell."""
    args = ("rev-parse", "--path-format=absolute", "--git-common-dir")
    try:
        out = one_line(args, run(repo, *args))
    except GitOutputError:
        raise
    except GitError:
        return None
    return Path(out) if out else None


# --- what a checkout's files say, without a git process -------------------------------------


def gitfile_target(checkout: Path) -> Path | None:
    """Where ``checkout``'s ``.git`` file points (a linked worktree's own git directory, or
    a ``--separate-git-dir``), relative to the checkout unless absolute; None when its
    ``.git`` is no such file (a directory, missing, other text). Read as git reads it
    (setup.c, ``read_gitfile_gently``): the text must begin ``gitdir: ``, and only the line
    feeds and carriage returns that end it go, so a path may end in a space."""
    try:
        text = os.fsdecode((checkout / ".git").read_bytes())
    except OSError:  # not there, or a directory
        return None
    if not text.startswith("gitdir: "):
        return None
    return checkout / text.removeprefix("gitdir: ").rstrip("\r\n")


def is_registered(checkout: Path) -> bool:
    """Whether ``checkout`` is the linked worktree git registered there: its ``.git`` file
    leads to a git directory whose ``gitdir`` file names that ``.git`` file back
    (git-worktree(1), DETAILS). A plain directory left where a worktree was is not, and git
    run in it would act on whatever repository encloses it. No git process."""
    target = gitfile_target(checkout)
    if target is None:
        return False
    try:
        named = os.fsdecode((target / "gitdir").read_bytes()).rstrip("\r\n")
    except OSError:
        return False
    back = os.path.realpath(target / named)  # relative to the git directory unless absolute
    return back == os.path.realpath(checkout / ".git")


def dot_git(checkout: Path) -> Path | None:
    """The checkout's own git directory as its files say: its ``.git`` directory, or where
    its ``.git`` file points (``gitfile_target``); None when neither says."""
    dot = checkout / ".git"
    return dot if dot.is_dir() else gitfile_target(checkout)


def commondir_of(gitdir: Path) -> Path | None:
    """The shared git directory that a linked worktree's git directory names in its
    ``commondir`` file, relative to it unless absolute (setup.c, ``get_common_dir_noenv``);
    None without that file (a main checkout's git directory, a submodule's)."""
    try:
        text = os.fsdecode((gitdir / "commondir").read_bytes())
    except OSError:
        return None
    return gitdir / text.rstrip("\r\n")
