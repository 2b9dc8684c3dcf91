"""``dag doctor [FILE]``: the checks ``dag run`` makes before it starts, for a user setting up."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dagspec import checks, git, preflight
from dagspec.dagfile import load_dag
from dagspec.errors import EXIT_FAILED, EXIT_OK, DagspecError, as_typed
from dagspec.lifecycle import RunOptions
from dagspec.state import utcnow
from dagspec.workspace import new_run_id


def doctor(path: Path | None, *, repo: Path, overrides: Mapping[str, Any]) -> int:
    """Print each preflight check and its result; exit 1 when one would stop ``dag run``.

    Without ``path`` only what needs no DAG file is checked (git, identity, signer,
    autospec, base branch, worktree root); with it, also its ids, paths and branch names
    for a run started now.
    """
    dag = load_dag(path, repo=repo) if path is not None else None
    options = attrs.evolve(RunOptions(), **overrides)
    run_id = new_run_id(dag.name, utcnow()) if dag else None
    label = str(path) if path is not None else None
    planned = checks.Planned(repo, options, dag, run_id, label)
    found = [(_named(planned, title), said) for title, said in preflight.results(planned)]
    if found and found[0][1] is None:  # git is there: README asks .autospec/ ignored
        found.append((".autospec/ ignored by git", _autospec_ignored(planned)))
    print(as_typed(preflight.render(found)), end="")
    return EXIT_FAILED if any(p is not None and p.blocking for _, p in found) else EXIT_OK


def _named(planned: checks.Planned, title: str) -> str:
    """A check's title, the autospec one naming what was found and its version (as ``run
    --dry-run`` does): which of several autospecs a run would take is what a user setting
    up needs to see. Asked once: the check asked already (``Planned.autospec``)."""
    if title != preflight.AUTOSPEC_CHECK:
        return title
    try:
        executable, version = planned.autospec()
    except DagspecError:
        return title  # its line is the error
    return f"{title}: {executable} ({version})"


def _autospec_ignored(planned: checks.Planned) -> checks.Problem | None:
    """``checks.check_autospec_ignored``; before ``.autospec/`` exists (no ``autospec
    init``, no constitution copied yet), whether git will ignore it once it does: an "ok"
    then turned into a warning as soon as the constitution was copied in. One git process."""
    if (planned.repo / ".autospec").is_dir():
        return checks.check_autospec_ignored(planned)
    if git.run(planned.repo, "check-ignore", "--no-index", "--", ".autospec/", check=False):
        return None
    return checks.Problem(
        ".autospec/ is not there yet, and git will not ignore it once autospec (or a copied "
        "constitution) makes it: `git status` would show it untracked (run records and all) "
        "and `git add -A` would commit it: `echo .autospec/ >> .gitignore`",
        blocking=False,
    )
