"""``dag resume RUN_ID --dag FILE``: continue a run with a fixed DAG file (issue 11).

A run records its DAG when it starts and ``resume`` continues that one, so a spec whose
description can never be given to autospec (a NUL byte, over 128 KiB) would fail again on
every resume. ``adopt`` lets the user fix the file and continue: only what does not change
the run's graph may differ (descriptions, time limits, names), never its features or their
dependencies.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dagspec.dagfile import Dag, check_specs, load_dag
from dagspec.errors import DagspecError, SpecError
from dagspec.lifecycle import RunState
from dagspec.workspace import RunPaths


def adopt(repo: Path, paths: RunPaths, recorded: RunState, path: Path) -> Dag:
    """The DAG of ``path`` as the run's DAG from now on; it replaces the run's copy.

    Raises ``SpecError`` when ``path`` is invalid (as ``validate`` reports it), and
    ``DagspecError`` when it adds, removes or rewires a feature of the run.
    """
    dag = load_dag(path)
    problems = check_specs(dag, repo, str(path))
    if problems:
        raise SpecError(problems)
    before = {s.id: frozenset(s.depends_on) for s in recorded.specs}
    after = {spec_id: frozenset(deps) for spec_id, deps in dag.deps.items()}
    if before != after:
        raise DagspecError(
            f"{path} changes the features or dependencies of run {recorded.run_id}; "
            "--dag takes fixes to descriptions and time limits only: start a new run "
            f"with `dag run {path}`"
        )
    _replace(paths.dag_copy, path.read_bytes())
    return dag


def _replace(target: Path, data: bytes) -> None:
    """Write ``target`` atomically (temporary file in its directory, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        Path(tmp).replace(target)
    finally:
        Path(tmp).unlink(missing_ok=True)
