"""``dag run``: check a DAG, then record a new run of it and drive it (README, How a run
works), or with ``--dry-run`` print the plan and touch nothing."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dagspec import (
    autospec,
    checkout_move,
    driving,
    estimates,
    graph,
    preflight,
    render,
    setup,
)
from dagspec.dagfile import Dag, load_dag
from dagspec.errors import EXIT_OK, DagspecError
from dagspec.executable import autospec_version, find_autospec
from dagspec.lifecycle import RunOptions
from dagspec.words import counted
from dagspec.workspace import worktree_root


def run(
    path: Path,
    *,
    repo: Path,
    overrides: Mapping[str, Any],
    run_id: str | None,
    dry_run: bool,
    color: bool,
    live: bool = False,
) -> int:
    """Start a new run of the DAG file ``path`` in ``repo``; return the exit code.
    ``overrides`` are the run options given on the command line. A parallel limit, given or
    from ``execution.max_parallel``, implies ``--parallel`` unless ``parallel`` is given.
    Preflight comes before anything is written (``dagspec.preflight``)."""
    dag = load_dag(path, repo=repo)  # every problem, specs/ included, in one pass
    limit = dag.execution.max_parallel
    defaults = RunOptions(parallel=limit is not None, max_parallel=limit or 4)
    options = attrs.evolve(defaults, **overrides)
    if not dry_run:
        checkout_move.finish_interrupted(repo)  # before preflight looks at the checkout
    planned = preflight.before_run(repo, dag, options, run_id, dry_run=dry_run, dag_file=str(path))
    if dry_run:
        made = run_id is None  # from the DAG's name and the time: a run gets its own
        run_id, base = planned.run_id or "", planned.base()  # both checked
        print(plan_text(repo, dag, options, run_id, *base, example_id=made), end="")
        return EXIT_OK
    return driving.start(path, planned, color=color, live=live)


# --- dry run --------------------------------------------------------------------------------


def plan_text(
    repo: Path,
    dag: Dag,
    options: RunOptions,
    run_id: str,
    base_branch: str,
    base_commit: str,
    *,
    example_id: bool = False,
) -> str:
    """What ``run`` would do: the waves of specs and the exact command each would get.
    ``example_id``: ``run_id`` was made from the time, and the run will get another."""
    executable = _executable_or_name(options.autospec)
    root = worktree_root(repo, options.worktree_root)
    named = f"{run_id} (an id made now: a run gets its own as it starts)" if example_id else run_id
    lines = [
        f"dry run of {named}: {counted(len(dag.features), 'spec')}, {driving.how(options)}",
        f"base: {base_branch} at {base_commit[:12]}; worktrees in {root / run_id}/<spec>, "
        f"on branches dag/{run_id}/<spec>",
    ]
    lines += setup.plan_lines(dag.execution, notify=options.notify, repo=repo)
    lines += _stall_lines(options.stall_timeout or dag.execution.stall_timeout)
    timeouts = driving.spec_timeouts(dag, options)
    recorded = driving.recorded_specs(repo, dag)
    version = _version_or_none(executable, repo)
    spec_flag = autospec.spec_flag_works(version)
    if version is not None:
        below = "" if spec_flag else " (below 0.10.4: a spec goes on without --spec)"
        lines.append(f"autospec: {version}{below}")
    for number, wave in enumerate(graph.waves(dag.deps), start=1):
        lines.append(f"wave {number}:")
        for spec_id in wave:
            earlier = recorded.get(spec_id)
            spec_dir = earlier.spec_dir if earlier else None
            call = _planned_call(repo, dag, spec_id, executable, spec_dir, spec_flag)
            notes = _plan_notes(dag, spec_id, timeouts[spec_id], recorded.get(spec_id))
            lines.append(f"  {spec_id}{notes}")
            lines.append(f"    {call.shell()}")
    # Issue 16: the critical path and the estimated time, when earlier runs say how long.
    slots = options.max_parallel if options.parallel else 1
    lines += estimates.plan_lines(dag.deps, estimates.load_history(repo), slots)
    return "\n".join(lines) + "\n"


def _stall_lines(stall: float | None) -> list[str]:
    """The stall watchdog, when there is one (``dagspec.unattended``)."""
    if stall is None:
        return []
    once, twice = render.format_duration(stall), render.format_duration(2 * stall)
    return [
        f"stall watchdog: a spec with no progress for {once} is shown stalled; at {twice} "
        "it is restarted once at its stage, then failed"
    ]


def _plan_notes(
    dag: Dag, spec_id: str, timeout: float | None, continued: driving.Recorded | None
) -> str:
    notes = []
    if dag.deps[spec_id]:
        notes.append("after " + ", ".join(dag.deps[spec_id]))
    if timeout is not None:
        notes.append(f"time limit {render.format_duration(timeout)}")
    if continued is not None:
        notes.append(f"goes on with {continued.spec_dir}, which run {continued.run_id} completed")
    return f" ({'; '.join(notes)})" if notes else ""


def _planned_call(
    repo: Path, dag: Dag, spec_id: str, executable: str, recorded: str | None, spec_flag: bool
) -> autospec.Invocation:
    """The command a spec would get, judged from the checkout: the directory an earlier
    run recorded for it, else its own ``specs/<id>/``, else a new spec."""
    for name in (Path(recorded).name if recorded else None, spec_id):
        present = autospec.artifacts_in(repo / "specs" / name) if name else frozenset()
        if "spec.yaml" in present:
            break
    description = dag.features[spec_id].description
    spec_dir = name if "spec.yaml" in present else None
    return autospec.invocation(
        executable, description=description, spec_dir=spec_dir, present=present, spec_flag=spec_flag
    )


def _version_or_none(executable: str, repo: Path) -> str | None:
    """What the autospec says to ``--version``; None when it cannot (preflight says why)."""
    try:
        return autospec_version(executable, cwd=repo)
    except DagspecError:
        return None


def _executable_or_name(given: str | None) -> str:
    try:
        return find_autospec(given)
    except DagspecError:
        return given or os.environ.get("DAGSPEC_AUTOSPEC") or "autospec"
