"""``execution.copy`` (issue 17): gitignored paths of the main checkout put into each new
worktree, copied, or linked (``symlink: true``) for large directories. Checked before a run
(``check_copies``, in preflight) by the rule the worktree will apply, and placed in each
worktree before its setup (``copy_paths``); a copy is never committed.

A linked path is a symbolic link in the worktree, and git matches a ``dir/`` pattern only
against a directory: ``node_modules/`` in ``.gitignore`` ignores the checkout's directory
but not the worktree's link (gitignore(5), "If there is a separator at the end of the
pattern then the pattern will only match directories"). So a linked path is judged as a
link (``ignored_as_link``), not as what it is in the checkout.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from dagspec import git
from dagspec.checks import Planned, Problem
from dagspec.copies import copy_file, copy_tree, note_skipped
from dagspec.dagfile import CopyPath
from dagspec.errors import SetupError


def check_copies(planned: Planned) -> Problem | None:
    """Each ``execution.copy`` path can be copied: not tracked by git (each worktree has it
    already), and ignored by git in your checkout (or a worktree's ``git add -A`` would
    commit the copy, and every spec would fail at its start). A symlinked path is judged in
    a link, as the worktree will (``ignored_as_link``). A path that is not there is a
    warning (a typo, or one that only some checkouts have)."""
    copies = planned.dag.execution.copy if planned.dag is not None else ()
    missing = [c.path for c in copies if not os.path.lexists(planned.repo / c.path)]
    for copy in copies:
        if copy.symlink and not ignored_as_link(planned.repo, copy.path):
            return Problem(
                f"execution.copy: {copy.path} is linked (symlink: true), and git does not "
                f"ignore a link named {copy.path} (a pattern ending in '/' matches only a "
                f"directory), so every spec would fail at its start: write '{copy.path}' "
                "without a trailing '/' in .gitignore, or remove symlink: true"
            )
        if git.tracked_files(planned.repo, copy.path):
            return Problem(
                f"execution.copy: {copy.path} is tracked by git, so each worktree has it "
                "already: remove it from execution.copy"
            )
        if not copy.symlink and git.untracked_files(planned.repo, copy.path):
            return Problem(
                f"execution.copy: {copy.path} is not ignored by git, so a copy would be "
                f"committed: add '{copy.path}' to .gitignore, or remove it from execution.copy"
            )
    if missing:
        return Problem(
            f"execution.copy: {', '.join(missing)} not in {planned.repo}: nothing of "
            "it will be copied (a typo?)",
            blocking=False,
        )
    return None


def ignored_as_link(repo: Path, path: str) -> bool:
    """Whether git would ignore ``path`` (relative to ``repo``, the top of its checkout) when
    it is a symbolic link, as ``copy_paths`` makes it in a worktree: ``git check-ignore``
    in a scratch work tree holding only the ``.gitignore`` files on the way to ``path``
    and a link at ``path`` (git looks at what a path is in the work tree, not at the
    pattern alone), with the repository's own git directory (``info/exclude``) and
    configuration (``core.excludesFile``)."""
    common = git.common_dir(repo)
    if common is None:
        return True  # not a repository: preflight says so on its own
    parts = Path(path).parts
    with tempfile.TemporaryDirectory(prefix="dagspec-ignore-") as scratch:
        root = Path(scratch)
        for depth in range(len(parts)):
            rules = repo.joinpath(*parts[:depth], ".gitignore")
            if rules.is_file():
                (root / rules.relative_to(repo)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(rules, root / rules.relative_to(repo))
        link = root / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(scratch)  # what it points to is not git's concern
        where = (f"--git-dir={common}", f"--work-tree={root}")
        return git.ok(root, *where, "check-ignore", "--no-index", "-q", "--", path)


def copy_paths(repo: Path, worktree: Path, copies: Sequence[CopyPath], *, log: Path) -> None:
    """Copy (or symlink) each path of ``copies`` from ``repo`` into ``worktree``.

    What the worktree has already is never overwritten. A path missing in ``repo`` is passed
    over with a line in ``log``. A path git would not ignore in the worktree (so an agent's
    ``git add -A`` would commit it; a symlink is not matched by a ``dir/`` pattern) is
    removed again and raises ``SetupError``: copies are never committed.
    """
    for copy in copies:
        source, target = repo / copy.path, worktree / copy.path
        if not os.path.lexists(source):
            _note(log, f"execution.copy: {copy.path} is not in {repo}; nothing copied")
            continue
        skipped: list[str] = []
        placed = _place(source, target, symlink=copy.symlink, skipped=skipped)
        note_skipped(log, skipped, "execution.copy")
        visible = git.untracked_files(worktree, copy.path)
        if visible:
            _remove(placed)
            raise SetupError(
                f"execution.copy: {copy.path} is not ignored by git in the worktree "
                f"({visible[0]} would be committed): add '{copy.path}' to .gitignore "
                "(without a trailing '/' for a symlink), or remove it from execution.copy"
            )
        how = "linked" if copy.symlink else "copied"
        _note(log, f"execution.copy: {how} {copy.path} ({len(placed)} new)")


def _place(source: Path, target: Path, *, symlink: bool, skipped: list[str]) -> list[Path]:
    """Copy or link ``source`` to ``target``; return every file and directory made (special
    files are added to ``skipped``: ``dagspec.copies``)."""
    made: list[Path] = []
    merging_dirs = not symlink and source.is_dir() and target.is_dir()
    if (target.exists() or target.is_symlink()) and not merging_dirs:
        return made
    target.parent.mkdir(parents=True, exist_ok=True)
    if symlink:
        target.symlink_to(source.resolve(), target_is_directory=source.is_dir())
        return [target]
    if not source.is_dir():
        return [target] if copy_file(source, target, skipped=skipped) else []
    if not target.exists():
        made.append(target)
    return made + copy_tree(source, target, skipped=skipped)


def _remove(placed: list[Path]) -> None:
    for path in placed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            path.unlink()


def _note(log: Path, text: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as file:
        file.write(f"=== dagspec: {text}\n")
