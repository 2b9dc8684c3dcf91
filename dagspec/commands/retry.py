"""``dag retry``: re-run failed specs of a run, then whatever was blocked behind them."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import attrs

from dagspec import state
from dagspec.commands.run import execute, find_autospec, recorded_dag
from dagspec.errors import DagspecError
from dagspec.state import RunFlags, RunOptions, RunState, RunStatus, SpecStatus
from dagspec.workspace import RunPaths, check_run_id


def retry(
    repo: Path,
    run_id: str,
    spec_ids: Sequence[str],
    *,
    flags: RunFlags,
    color: bool,
    live: bool = False,
) -> int:
    """Reset the failed specs ``spec_ids`` of run ``run_id`` and continue the run."""
    paths = RunPaths(repo, check_run_id(run_id))
    state.load(paths)  # an unknown run is refused before its lock file is made
    with state.run_lock(paths):
        recorded = state.load(paths)
        for spec_id in spec_ids:
            _check_retryable(recorded, spec_id)
        dag = recorded_dag(repo, paths, recorded)
        options = flags.resolve(recorded.options)
        executable = find_autospec(options.autospec)
        initial = reset(recorded, spec_ids, options)
        print(f"retrying {', '.join(spec_ids)} of run {run_id}", flush=True)
        return execute(repo, paths, initial, dag, executable=executable, color=color, live=live)


def _check_retryable(recorded: RunState, spec_id: str) -> None:
    ids = [s.id for s in recorded.specs]
    if spec_id not in ids:
        close = difflib.get_close_matches(spec_id, ids, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f": it has {', '.join(ids)}"
        raise DagspecError(f"run '{recorded.run_id}' has no spec '{spec_id}'{hint}")
    spec = recorded.spec(spec_id)
    if spec.status is SpecStatus.FAILED:
        return
    hint = {
        SpecStatus.BLOCKED: f"it waits for {', '.join(spec.blocked_by)}: retry that instead",
        SpecStatus.INTERRUPTED: f"`dag resume {recorded.run_id}` continues it",
        SpecStatus.PENDING: f"`dag resume {recorded.run_id}` runs it",
        SpecStatus.COMPLETED: "its work is done",
        SpecStatus.RUNNING: "it is running",
    }[spec.status]
    raise DagspecError(
        f"spec '{spec_id}' is {spec.status.value}, not failed; only failed specs are retried: "
        + hint
    )


def reset(recorded: RunState, spec_ids: Sequence[str], options: RunOptions) -> RunState:
    """The named failed specs and every blocked spec pending again; the scheduler blocks
    again whatever still waits for another failed or interrupted spec. The caller holds the
    run's lock, so a spec still marked running lost its driver: it is interrupted."""
    chosen = set(spec_ids)
    specs = []
    for spec in recorded.specs:
        if spec.id in chosen or spec.status is SpecStatus.BLOCKED:
            spec = attrs.evolve(spec, status=SpecStatus.PENDING, blocked_by=(), error=None)
        elif spec.status is SpecStatus.RUNNING:
            spec = attrs.evolve(spec, status=SpecStatus.INTERRUPTED, error="the driver died")
        specs.append(spec)
    return attrs.evolve(
        recorded, specs=tuple(specs), options=options, status=RunStatus.RUNNING, finished_at=None
    )
