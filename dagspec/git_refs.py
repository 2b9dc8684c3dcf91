"""Branches, refs and commits, read and deleted: small named verbs over :func:`dagspec.git.run`.

Which commit a name points at, whether one commit has another, what a branch has that
others lack, which refs and branch names there are. Batched reads of many refs at once are
in :mod:`dagspec.git_batch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dagspec.errors import GitError, GitOutputError
from dagspec.git import ok, run
from dagspec.git_output import lines, one_line, ref_names


def rev_parse(repo: Path, rev: str) -> str | None:
    """The commit ``rev`` names, or None when it names nothing."""
    try:
        return run(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except GitError:
        return None


def lost_commit(repo: Path, ref: str) -> str | None:
    """The commit ``ref`` points at when the repository no longer has it (``git gc
    --prune=now`` after a reset, a corrupt clone), else None (it has it, or ``ref`` names
    nothing). git then fails on every use of the ref: ``bad object HEAD``, ``could not
    parse HEAD``, ``missing object``."""
    if rev_parse(repo, ref) is not None:
        return None
    try:  # without ``^{commit}``: the name alone, not the object, is looked up
        sha = run(repo, "rev-parse", "--verify", "--quiet", ref).strip()
    except GitError:
        return None
    return sha or None


def current_branch(worktree: Path) -> str | None:
    """The branch checked out in ``worktree``; None on a detached HEAD. From the full ref
    name: ``--short`` says ``heads/main`` when a tag ``main`` is there too."""
    args = ("symbolic-ref", "--quiet", "HEAD")
    out = run(worktree, *args, check=False)
    ref = one_line(args, out)
    if "\n" in ref:  # a ref name cannot hold one (git-check-ref-format(1))
        raise GitOutputError(["git", *args], out, ref, "one ref name")
    return ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None


def branch_exists(repo: Path, branch: str) -> bool:
    return ok(repo, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}")


def is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    return ok(repo, "merge-base", "--is-ancestor", ancestor, descendant)


def delete_branch(repo: Path, branch: str, *, force: bool = False) -> None:
    run(repo, "branch", "-D" if force else "-d", "--quiet", branch)


def commits_lacking(
    repo: Path, tip: str, others: Sequence[str], *, merges: bool = True
) -> list[str]:
    """``<short sha> <subject>`` of each commit of ``tip`` that none of ``others`` has,
    newest first; merge commits left out unless ``merges``."""
    flags = () if merges else ("--no-merges",)
    return lines(run(repo, "log", "--format=%h %s", *flags, tip, "--not", *others, "--"))


def branch_names(repo: Path) -> list[str]:
    """Every local branch name, and every remote-tracking one without its remote's name."""
    args = ("for-each-ref", "--format=%(refname)", "refs/heads", "refs/remotes")
    return [
        ref.split("/", 3)[3] if ref.startswith("refs/remotes/") else ref.split("/", 2)[2]
        for ref in ref_names(args, run(repo, *args))
        if ref.count("/") >= (3 if ref.startswith("refs/remotes/") else 2)
    ]


def refs(repo: Path, *patterns: str) -> list[str]:
    """The full names of the refs that match ``patterns`` (``refs/heads/dag/``)."""
    args = ("for-each-ref", "--format=%(refname)", *patterns)
    return ref_names(args, run(repo, *args))
