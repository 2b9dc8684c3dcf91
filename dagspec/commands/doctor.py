"""``dag doctor [FILE]``: the checks ``dag run`` makes before it starts, for a user setting up."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dagspec import checks, preflight
from dagspec.dagfile import load_dag
from dagspec.errors import EXIT_FAILED, EXIT_OK, as_typed
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
    found = preflight.results(planned)
    if found and found[0][1] is None:  # git is there: README asks .autospec/ ignored
        found.append((".autospec/ ignored by git", checks.check_autospec_ignored(planned)))
    print(as_typed(preflight.render(found)), end="")
    return EXIT_FAILED if any(p is not None and p.blocking for _, p in found) else EXIT_OK
