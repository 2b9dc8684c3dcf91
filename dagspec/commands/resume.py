"""``dag resume``: continue an interrupted or failed run where each spec left off (DESIGN §3).

Completed specs are never run again. Running specs whose driver is gone count as
interrupted; interrupted and failed specs start again at the first stage whose artifact is
missing in their worktree (the scheduler judges that); blocked specs become pending. The
run's options are reused, flags given to ``resume`` win.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from dagspec import state
from dagspec.commands.run import execute, find_autospec, recorded_dag
from dagspec.state import RunFlags, RunOptions, RunState, RunStatus, SpecState, SpecStatus
from dagspec.workspace import RunPaths, check_run_id

_RESTARTED = (SpecStatus.RUNNING, SpecStatus.INTERRUPTED, SpecStatus.FAILED, SpecStatus.BLOCKED)


def resume(repo: Path, run_id: str, *, flags: RunFlags, color: bool, live: bool = False) -> int:
    """Continue run ``run_id`` of ``repo``; return the exit code."""
    paths = RunPaths(repo, check_run_id(run_id))
    state.load(paths)  # an unknown run is refused before its lock file is made
    with state.run_lock(paths):
        recorded = state.load(paths)
        dag = recorded_dag(repo, paths, recorded)
        options = flags.resolve(recorded.options)
        executable = find_autospec(options.autospec)
        initial = restarted(recorded, options)
        print(f"resuming run {run_id}: {_counts(initial)}", flush=True)
        return execute(repo, paths, initial, dag, executable=executable, color=color, live=live)


def restarted(recorded: RunState, options: RunOptions) -> RunState:
    """The run as ``resume`` starts it again: every unfinished spec pending.

    The caller holds the run's lock, so a spec still marked running has lost its driver;
    its ``agent_pid`` is kept, so that an agent that outlived the driver is ended first.
    """
    specs = tuple(_pending(s) if s.status in _RESTARTED else s for s in recorded.specs)
    return attrs.evolve(
        recorded, specs=specs, options=options, status=RunStatus.RUNNING, finished_at=None
    )


def _pending(spec: SpecState) -> SpecState:
    return attrs.evolve(spec, status=SpecStatus.PENDING, blocked_by=(), error=None)


def _counts(initial: RunState) -> str:
    counts = initial.counts()
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
