"""``dag retry``: re-run failed specs of a run, then whatever was blocked behind them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from dagspec import checkout_move, driving, faults, lifecycle, relocate, state
from dagspec.errors import DagspecError
from dagspec.executable import autospec_version, find_autospec
from dagspec.lifecycle import RunState, SpecStatus
from dagspec.words import no_such_spec
from dagspec.workspace import RunPaths, check_run_id


def retry(
    repo: Path,
    run_id: str,
    spec_ids: Sequence[str],
    *,
    overrides: Mapping[str, Any],
    color: bool,
    live: bool = False,
) -> int:
    """Reset the failed specs ``spec_ids`` of run ``run_id`` and continue the run."""
    paths = RunPaths(repo, check_run_id(run_id))
    state.load(paths)  # an unknown run is refused before its lock file is made
    checkout_move.finish_interrupted(repo)
    with state.run_lock(paths):
        recorded = relocate.arrive(paths, state.load(paths))
        check_retryable(recorded, spec_ids)
        dag = driving.recorded_dag(repo, paths, recorded)
        options = attrs.evolve(recorded.options, **overrides)
        executable = find_autospec(options.autospec)
        initial = lifecycle.prepare_retry(recorded, spec_ids, options)
        # the autospec that runs now decides how it is called (`autospec.spec_flag_works`)
        version = autospec_version(executable, cwd=repo)
        initial = attrs.evolve(initial, autospec_version=version)
        faults.say(f"retrying {', '.join(spec_ids)} of run {run_id}\n")
        return driving.execute(
            repo, paths, initial, dag, executable=executable, color=color, live=live
        )


def check_retryable(run: RunState, spec_ids: Sequence[str]) -> None:
    """Raise ``DagspecError`` for a named spec that the run lacks or that has not failed,
    saying what to do instead."""
    ids = [s.id for s in run.specs]
    for spec_id in spec_ids:
        if spec_id not in ids:
            raise DagspecError(no_such_spec(run.run_id, spec_id, ids))
        spec = run.spec(spec_id)
        if spec.status is SpecStatus.FAILED:
            continue
        hint = {
            SpecStatus.BLOCKED: f"it waits for {', '.join(spec.blocked_by)}: retry that instead",
            SpecStatus.INTERRUPTED: f"`dag resume {run.run_id}` continues it",
            SpecStatus.PENDING: f"`dag resume {run.run_id}` runs it",
            SpecStatus.COMPLETED: "its work is done",
            SpecStatus.RUNNING: "it is running",
            SpecStatus.WAITING: f"it waits for a usage limit; `dag resume {run.run_id}` goes on",
        }[spec.status]
        raise DagspecError(
            f"spec '{spec_id}' is {spec.status.value}, not failed; only failed specs are "
            f"retried: {hint}"
        )
