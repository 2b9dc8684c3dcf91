"""``execution.copy`` (issue 17): gitignored paths of the main checkout put into each new
worktree, copied, or linked (``symlink: true``) for large directories. Checked before a run
(``check_copies``, in preflight) by the rule the worktree will apply
(:mod:`dagspec.copy_checks`, which ``dag validate`` applies too), and placed in each
worktree before its setup (``copy_paths``); a copy is never committed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from dagspec import git_worktree
from dagspec.checks import Planned, Problem
from dagspec.copies import copy_file, copy_tree, note_skipped
from dagspec.copy_checks import copy_problems, what_ignores
from dagspec.dagfile import CopyPath
from dagspec.errors import Problem as FileProblem
from dagspec.errors import SetupError
from dagspec.workspace import real_path


def check_copies(planned: Planned) -> list[Problem]:
    """Each ``execution.copy`` path can be copied (``copy_checks.copy_problems``, the rule
    ``dag validate`` applies too): every problem, one per path in the DAG file's order, each
    named as validate names it (``FILE:LINE: ...``, when ``planned`` knows its DAG file): a
    path that cannot be copied blocks the run, a path that is not there is a warning."""
    copies = planned.dag.execution.copy if planned.dag is not None else ()
    return [
        Problem(_at(planned.dag_file, found.copy.line, found.message), blocking=found.blocking)
        for found in copy_problems(planned.repo, copies)
    ]


def _at(dag_file: str | None, line: int, message: str) -> str:
    """``message`` at its line of ``dag_file``, as ``dag validate`` says it."""
    return message if dag_file is None else str(FileProblem(dag_file, line or None, message))


def copy_paths(
    repo: Path,
    worktree: Path,
    copies: Sequence[CopyPath],
    *,
    log: Path,
    check: Callable[[], None] = lambda: None,
) -> None:
    """Copy (or symlink) each path of ``copies`` from ``repo`` into ``worktree``.

    What the worktree has already is never overwritten. ``check`` is called between chunks
    of the files copied: what it raises ends the copy, leaving no file half copied
    (``copies.copy_file``). A path missing in ``repo`` is passed over with a line in
    ``log``. A path git would not ignore in the worktree (so an agent's ``git add -A``
    would commit it; a symlink is not matched by a ``dir/`` pattern) is removed again and
    raises ``SetupError``: copies are never committed.
    """
    for copy in copies:
        source, target = repo / copy.path, worktree / copy.path
        if not os.path.lexists(source):
            _note(log, f"execution.copy: {copy.path} is not in {repo}; nothing copied")
            continue
        skipped: list[str] = []
        placed = _place(source, target, symlink=copy.symlink, skipped=skipped, check=check)
        note_skipped(log, skipped, "execution.copy")
        visible = git_worktree.untracked_files(worktree, copy.path)
        if visible:
            _remove(placed)
            raise SetupError(
                f"execution.copy: {copy.path} is not ignored by git in the worktree "
                f"({visible[0]} would be committed): {what_ignores(worktree, copy)}"
            )
        how = "linked" if copy.symlink else "copied"
        _note(log, f"execution.copy: {how} {copy.path} ({len(placed)} new)")


def _place(
    source: Path, target: Path, *, symlink: bool, skipped: list[str], check: Callable[[], None]
) -> list[Path]:
    """Copy or link ``source`` to ``target``; return every file and directory made (special
    files are added to ``skipped``: ``dagspec.copies``)."""
    made: list[Path] = []
    merging_dirs = not symlink and source.is_dir() and target.is_dir()
    if (target.exists() or target.is_symlink()) and not merging_dirs:
        return made
    target.parent.mkdir(parents=True, exist_ok=True)
    if symlink:
        target.symlink_to(real_path(source), target_is_directory=source.is_dir())
        return [target]
    if not source.is_dir():
        return [target] if copy_file(source, target, skipped=skipped, check=check) else []
    if not target.exists():
        made.append(target)
    return made + copy_tree(source, target, skipped=skipped, check=check)


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
