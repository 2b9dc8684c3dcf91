"""git verbs that answer for many refs or worktrees in one process (issue 16).

A run asks these once (when a drive begins, at the end of a run) instead of one question
per spec: every branch and its tip in one ``for-each-ref``, the branches a commit contains
in another, the merged specs' branches deleted in one ``git branch -D``. ``head_branch``
answers from the worktree's own ``HEAD`` file, with no process at all, when it can. Each
runs through :func:`dagspec.git.run`, cleaned and insulated like every git call of
dagspec's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from dagspec.errors import GitError, GitOutputError
from dagspec.git import run
from dagspec.git_output import OBJECT_ID, fields, lines, ref_names

REMOVERS = 4
"""How many ``git worktree remove`` run at once (each one deletes its own worktree's files)."""


def branch_tips(repo: Path, *patterns: str) -> dict[str, str]:
    """``{full ref name: commit}`` of every ref matching ``patterns`` (``refs/heads``,
    ``refs/heads/dag/<run>/``...), in one ``git for-each-ref``."""
    args = ("for-each-ref", "--format=%(objectname) %(refname)", *patterns)
    out = run(repo, *args)
    tips: dict[str, str] = {}
    for line in lines(out):
        sha, _, ref = line.partition(" ")
        if not OBJECT_ID.fullmatch(sha) or not ref.startswith("refs/") or " " in ref:
            raise GitOutputError(["git", *args], out, line, "'<object> refs/...' lines")
        tips[ref] = sha
    return tips


def present(repo: Path, commits: Iterable[str]) -> set[str]:
    """Those of ``commits`` the repository has, in one ``git rev-list --no-walk``: a ref can
    point at a commit ``git gc --prune=now`` took (a branch reset, then pruned)."""
    wanted = sorted(set(commits))
    if not wanted:
        return set()
    args = ("rev-list", "--no-walk", "--ignore-missing", *wanted)
    return set(lines(run(repo, *args)))


def short_names(refs: Iterable[str]) -> list[str]:
    """Branch names as autospec sees them: ``refs/heads/x`` is ``x``, and a remote-tracking
    ``refs/remotes/origin/x`` is ``x`` too (``git_refs.branch_names``' rule)."""
    names = []
    for ref in refs:
        if ref.startswith("refs/heads/") and ref.count("/") >= 2:
            names.append(ref.split("/", 2)[2])
        elif ref.startswith("refs/remotes/") and ref.count("/") >= 3:
            names.append(ref.split("/", 3)[3])
    return names


def contained_in(repo: Path, commit: str, prefix: str) -> set[str]:
    """The full names of the refs under ``prefix`` (``refs/heads/dag/<run>/``) whose tip
    ``commit`` contains (``for-each-ref --merged``), in one process."""
    args = ("for-each-ref", f"--merged={commit}", "--format=%(refname)", prefix)
    return set(ref_names(args, run(repo, *args)))


def delete_branches(repo: Path, branches: Sequence[str]) -> str | None:
    """``git branch -D`` of all ``branches`` at once; git deletes each one it can (not one
    checked out in a worktree) and says which it could not. None when none is left, else
    what git said."""
    if not branches:
        return None
    try:
        run(repo, "branch", "-D", "--quiet", *branches)
    except GitError as exc:
        return exc.stderr or exc.stdout or str(exc)
    return None


def remove_clean_worktrees(repo: Path, paths: Sequence[Path]) -> dict[Path, bool]:
    """``git worktree remove`` (without ``--force``) of each path, ``REMOVERS`` at a time;
    ``{path: removed}``. git removes a worktree only when it is clean: no change to a tracked
    file and no untracked file that is not ignored (``git worktree remove``'s own check, the
    same as ``git status --porcelain``), and not locked; the others stay, untouched."""

    def remove(path: Path) -> bool:
        try:
            run(repo, "worktree", "remove", str(path))
        except GitError:
            return False
        return True

    if len(paths) <= 1:
        return {path: remove(path) for path in paths}
    from concurrent.futures import ThreadPoolExecutor  # only the end of a run needs threads

    with ThreadPoolExecutor(max_workers=REMOVERS) as pool:
        return dict(zip(paths, pool.map(remove, paths), strict=True))


def head_branch(worktree: Path) -> str | None:
    """The branch checked out in ``worktree`` as its ``HEAD`` file says (``ref:
    refs/heads/<branch>``), read without starting git; None when the file does not say
    (a detached HEAD, or a repository whose refs are in a reftable, where the file is a
    stub naming ``.invalid``): then ask ``git_refs.current_branch``. Only the newline that ends
    each file is removed: a path may end in a space, a branch name in U+2028."""
    dot_git = worktree / ".git"
    try:
        if dot_git.is_dir():
            gitdir = dot_git
        else:
            pointer = dot_git.read_text(encoding="utf-8", errors="surrogateescape")
            gitdir = worktree / pointer.removesuffix("\n").removeprefix("gitdir: ")
        head = (gitdir / "HEAD").read_text(encoding="utf-8").removesuffix("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if not head.startswith("ref: refs/heads/"):
        return None
    name = head.removeprefix("ref: refs/heads/")
    return None if name == ".invalid" else name


def tree_modes(repo: Path, commit: str, paths: Sequence[str]) -> dict[str, str]:
    """``{path: mode}`` (``100644``, ``100755``, ``120000``...) of the ``paths`` (relative
    to ``repo``, normalised) that ``commit``'s tree holds, in one ``git ls-tree``; empty
    when ``commit`` is not there (a repository with no commit yet)."""
    args = ("--literal-pathspecs", "ls-tree", "-z", commit, "--", *paths)  # `:x` is a name
    out = run(repo, *args, check=False)
    modes: dict[str, str] = {}
    for item in fields(args, out):
        entry = _LS_TREE.fullmatch(item)
        if entry is None:
            raise GitOutputError(["git", *args], out, item, "'<mode> <type> <object>\\t<path>'")
        modes[entry["path"]] = entry["mode"]
    return modes


_LS_TREE = re.compile(rf"(?P<mode>[0-7]{{6}}) [a-z]+ {OBJECT_ID.pattern}\t(?P<path>.+)", re.DOTALL)
