"""Whether each ``execution.copy`` path (issue 17) can be put into a worktree and never be
committed: one rule, asked of git in the main checkout, that preflight applies before a run
(``user_copies.check_copies``) and ``dag validate`` applies to the DAG file
(``dag_file_problems``), so that validate never says OK to what ``dag run`` refuses.

A linked path is a symbolic link in the worktree, and git matches a ``dir/`` pattern only
against a directory: ``node_modules/`` in ``.gitignore`` ignores the checkout's directory
but not the worktree's link (gitignore(5), "If there is a separator at the end of the
pattern then the pattern will only match directories"). So a linked path is judged as a
link (``ignored_as_link``), not as what it is in the checkout.

This module is on ``dag validate``'s path: it imports no more than validate has already.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from dagspec import git, git_worktree
from dagspec.dagfile import Checked, CopyPath
from dagspec.errors import Problem


class CopyProblem(NamedTuple):
    """What is wrong with one ``execution.copy`` entry: a one-line ``message`` that says what
    to do; not ``blocking``, a warning (the path is not there: nothing will be copied)."""

    copy: CopyPath
    message: str
    blocking: bool


def copy_problems(repo: Path, copies: Sequence[CopyPath]) -> list[CopyProblem]:
    """At most one problem per entry of ``copies``, in their order; ``repo`` is the top of
    the main checkout. Blocking: a linked path git would not ignore as a link; a tracked path
    (each worktree has it already); a copied path git does not ignore (a worktree's
    ``git add -A`` would commit the copy, so every spec would fail at its start). A warning:
    a path that is not there (a typo, or one only some checkouts have).

    Raises ``GitError`` when ``repo`` is not a git checkout.
    """
    found = []
    for copy in copies:
        problem = _blocking(repo, copy)
        if problem is not None:
            found.append(CopyProblem(copy, problem, True))
        elif not os.path.lexists(repo / copy.path):
            said = f"execution.copy: {copy.path} not in {repo}: nothing of it will be copied"
            found.append(CopyProblem(copy, f"{said} (a typo?)", False))
    return found


def _blocking(repo: Path, copy: CopyPath) -> str | None:
    parts = Path(copy.path).parts
    links = (Path(*parts[:n]) for n in range(1, len(parts)))
    # os.path.islink never raises (Path.is_symlink raises PermissionError on 3.11 and 3.12)
    through = next((p for p in links if os.path.islink(repo / p)), None)  # noqa: PTH114
    if through is not None:  # a worktree has the link too: nothing can be put under it
        return (
            f"execution.copy: {copy.path} is under {through}, a symbolic link, so it cannot "
            f"be put into a worktree: name the path {through} leads to instead"
        )
    if copy.symlink and not ignored_as_link(repo, copy.path):
        return (
            f"execution.copy: {copy.path} is linked (symlink: true), and git does not "
            f"ignore a link named {copy.path}, so every spec would fail at its start: "
            + what_ignores(repo, copy)
        )
    if git_worktree.tracked_files(repo, copy.path):
        return (
            f"execution.copy: {copy.path} is tracked by git, so each worktree has it "
            "already: remove it from execution.copy"
        )
    if not copy.symlink and git_worktree.untracked_files(repo, copy.path):
        return (
            f"execution.copy: {copy.path} is not ignored by git, so a copy would be "
            f"committed: {what_ignores(repo, copy)}"
        )
    rules = uncommitted_rules(repo, copy.path)
    if rules is not None:
        return (
            f"execution.copy: {copy.path} is ignored by {rules}, which is not committed, and "
            f"each worktree gets the committed one, so a copy would be committed: commit {rules}"
        )
    return None


def uncommitted_rules(repo: Path, path: str) -> str | None:
    """The rule of the checkout's ``.gitignore`` files that ignores ``path``
    (``dir/.gitignore:LINE``) when the committed file (``HEAD``) lacks it: a worktree,
    checked out from a commit, does not have it. None when the rule is committed, or is
    git's own (``info/exclude``, ``core.excludesFile``: every worktree's)."""
    said = git.run(repo, "check-ignore", "-v", "--no-index", "--", path, check=False)
    source, _, rest = said.partition(":")
    line, _, pattern = rest.partition("\t")[0].partition(":")
    if not source.endswith(".gitignore") or Path(source).is_absolute() or not line.isdigit():
        return None
    committed = git.run(repo, "show", f"HEAD:{source}", check=False)
    if pattern in (rule.rstrip() for rule in committed.splitlines()):
        return None
    return f"{source}:{line}"


def dag_file_problems(
    checked: Checked, start: Path, label: str
) -> tuple[list[Problem], list[Problem]]:
    """``dag validate``'s view of ``copy_problems``: ``(errors, warnings)``, each a
    ``Problem`` of ``label`` at its entry's line. ``start`` is the repository validate was
    given or found; the top of its checkout is asked of git (nothing is checked outside one,
    and git is not asked at all for a DAG without ``execution.copy``)."""
    copies = checked.dag.execution.copy if checked.dag is not None else ()
    top = git.repo_root(start) if copies else None
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for problem in copy_problems(top, copies) if top is not None else ():
        found = Problem(label, problem.copy.line or None, problem.message)
        (errors if problem.blocking else warnings).append(found)
    return errors, warnings


def what_ignores(top: Path, copy: CopyPath) -> str:
    """What to do about ``copy`` not ignored by git in ``top`` (the main checkout, or a
    worktree), naming only the rule that applies: a linked path ignored only as the directory
    it is in the checkout names that rule and its trailing '/'; anything else, the line to
    add to ``.gitignore``."""
    rule = _ignoring_rule(top, copy.path, link=False) if copy.symlink else None
    if rule is None:
        return f"add '{copy.path}' to .gitignore, or remove it from execution.copy"
    return (
        f"{rule} matches only a directory, not a link: drop its trailing '/', or remove "
        "symlink: true"
    )


def ignored_as_link(repo: Path, path: str) -> bool:
    """Whether git would ignore ``path`` (relative to ``repo``, the top of its checkout) when
    it is a symbolic link, as ``user_copies.copy_paths`` makes it in a worktree."""
    if git_worktree.common_dir(repo) is None:
        return True  # not a repository: preflight says so on its own
    return _ignoring_rule(repo, path, link=True) is not None


def _ignoring_rule(repo: Path, path: str, *, link: bool) -> str | None:
    """The rule by which git ignores ``path`` when it is a symbolic link (``link``) or a
    directory, as ``'PATTERN' (SOURCE:LINE)``, or None: ``git check-ignore`` in a scratch work
    tree holding only the ``.gitignore`` files on the way to ``path`` and a link or a
    directory at ``path`` (git looks at what a path is in the work tree, not at the pattern
    alone), with the repository's own git directory (``info/exclude``) and configuration
    (``core.excludesFile``)."""
    common = git_worktree.common_dir(repo)
    if common is None:
        return None
    parts = Path(path).parts
    with tempfile.TemporaryDirectory(prefix="dagspec-ignore-") as scratch:
        root = Path(scratch)
        for depth in range(len(parts)):
            rules = repo.joinpath(*parts[:depth], ".gitignore")
            if rules.is_file():
                (root / rules.relative_to(repo)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(rules, root / rules.relative_to(repo))
        place = root / path
        place.parent.mkdir(parents=True, exist_ok=True)
        if link:
            place.symlink_to(scratch)  # what it points to is not git's concern
        else:
            place.mkdir(exist_ok=True)
        where = (f"--git-dir={common}", f"--work-tree={root}")
        said = git.run(root, *where, "check-ignore", "--no-index", "-v", "--", path, check=False)
    source, _, rest = said.partition(":")
    line, _, pattern = rest.partition("\t")[0].partition(":")
    if not said or pattern.startswith("!"):  # a negated rule: not ignored
        return None
    if Path(source).is_absolute() and Path(source).is_relative_to(repo):
        source = str(Path(source).relative_to(repo))  # info/exclude: .git/info/exclude
    return f"'{pattern}' ({source}:{line})"
