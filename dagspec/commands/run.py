"""``dag run``: record a new run of a DAG, drive it, merge it (DESIGN §3).

``execute`` is the part ``resume`` and ``retry`` share: drive a recorded run with the
scheduler, then merge its completed specs and print the summary.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import trio

from dagspec import autospec, graph, preflight, progress, render, scheduler, state
from dagspec.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, DagspecError, SpecError
from dagspec.preflight import base_of
from dagspec.preflight import find_autospec as find_autospec  # resume, retry use it
from dagspec.spec import Dag, check_specs, load_dag
from dagspec.state import RunFlags, RunOptions, RunState, RunStatus, SpecState, SpecStatus
from dagspec.workspace import RunPaths, worktree_root


def run(
    path: Path, *, repo: Path, flags: RunFlags, run_id: str | None, dry_run: bool, color: bool
) -> int:
    """Start a new run of the DAG file ``path`` in ``repo``; return the exit code."""
    dag = load_dag(path)
    problems = check_specs(dag, repo, str(path))
    if problems:
        raise SpecError(problems)
    options = flags.resolve(RunOptions(), dag.execution.max_parallel)
    run_id = preflight.before_run(repo, dag, options, run_id, dry_run=dry_run)  # issue 12
    base_branch, base_commit = base_of(repo, dag)
    if dry_run:
        print(plan_text(repo, dag, options, run_id, base_branch, base_commit), end="")
        return EXIT_OK
    executable = find_autospec(options.autospec)
    paths = RunPaths(repo, run_id)
    with state.run_lock(paths):
        if paths.state_file.exists():
            raise DagspecError(f"run '{run_id}' exists already: continue it with `dag resume`")
        paths.dag_copy.write_bytes(path.read_bytes())
        initial = RunState(
            format=state.FORMAT,
            run_id=run_id,
            dag_file=_relative(path, repo),
            dag_name=dag.name,
            repo=str(repo),
            status=RunStatus.RUNNING,
            base_branch=base_branch,
            base_commit=base_commit,
            started_at=state.utcnow(),
            driver_pid=os.getpid(),
            options=options,
            specs=_new_specs(repo, dag),
            autospec_version=preflight.autospec_version(executable),
        )
        state.save(initial, paths.state_file)
        print(f"run {run_id}: {len(initial.specs)} specs, {_how(options)}", flush=True)
        return execute(repo, paths, initial, dag, executable=executable, color=color)


def _new_specs(repo: Path, dag: Dag) -> tuple[SpecState, ...]:
    recorded = _recorded_spec_dirs(repo)
    return tuple(
        SpecState(
            id=feature.id,
            layer=feature.layer,
            depends_on=dag.deps[feature.id],
            spec_dir=recorded.get(feature.id),
        )
        for feature in dag.features.values()
    )


def _recorded_spec_dirs(repo: Path) -> dict[str, str]:
    """The spec directory earlier runs recorded for each feature they completed (newest run
    wins), so a later run of the same DAG continues that directory instead of specifying
    the feature again. Unreadable state files are passed over."""
    found: dict[str, str] = {}
    readable, _ = state.list_runs(repo)
    for run in reversed(readable):  # oldest first, so the newest run's record wins
        for spec in run.specs:
            if spec.status is SpecStatus.COMPLETED and spec.spec_dir:
                found[spec.id] = spec.spec_dir
    return found


def _relative(path: Path, repo: Path) -> str:
    absolute = path.resolve()
    return str(absolute.relative_to(repo)) if absolute.is_relative_to(repo) else str(absolute)


def _how(options: RunOptions) -> str:
    if not options.parallel:
        return "one at a time"
    return f"in parallel, at most {options.max_parallel} at once"


# --- dry run --------------------------------------------------------------------------------


def plan_text(
    repo: Path, dag: Dag, options: RunOptions, run_id: str, base_branch: str, base_commit: str
) -> str:
    """What ``run`` would do: the waves of specs and the exact command each would get."""
    executable = _executable_or_name(options.autospec)
    root = worktree_root(repo, options.worktree_root)
    lines = [
        f"dry run of {run_id}: {len(dag.features)} specs, {_how(options)}",
        f"base: {base_branch} at {base_commit[:12]}; worktrees in {root / run_id}/<spec>, "
        f"on branches dag/{run_id}/<spec>",
    ]
    timeouts = spec_timeouts(dag, options)
    recorded = _recorded_spec_dirs(repo)
    for number, wave in enumerate(graph.waves(dag.deps), start=1):
        lines.append(f"wave {number}:")
        for spec_id in wave:
            call = _planned_call(repo, dag, spec_id, executable, recorded.get(spec_id))
            lines.append(f"  {spec_id}{_plan_notes(dag, spec_id, timeouts[spec_id])}")
            lines.append(f"    {call.shell()}")
    return "\n".join(lines) + "\n"


def _plan_notes(dag: Dag, spec_id: str, timeout: float | None) -> str:
    notes = []
    if dag.deps[spec_id]:
        notes.append("after " + ", ".join(dag.deps[spec_id]))
    if timeout is not None:
        notes.append(f"time limit {render.format_duration(timeout)}")
    return f" ({'; '.join(notes)})" if notes else ""


def _planned_call(
    repo: Path, dag: Dag, spec_id: str, executable: str, recorded: str | None
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
        executable, description=description, spec_dir=spec_dir, present=present
    )


def _executable_or_name(given: str | None) -> str:
    try:
        return find_autospec(given)
    except DagspecError:
        return given or os.environ.get("DAGSPEC_AUTOSPEC") or "autospec"


# --- driving a recorded run (run, resume, retry) -------------------------------------------


def spec_timeouts(dag: Dag, options: RunOptions) -> dict[str, float | None]:
    """Each spec's time limit: its feature's ``timeout``, else ``--timeout``, else
    ``execution.timeout``."""
    return {
        f.id: f.timeout or options.timeout or dag.execution.timeout for f in dag.features.values()
    }


def execute(
    repo: Path, paths: RunPaths, initial: RunState, dag: Dag, *, executable: str, color: bool
) -> int:
    """Drive the run, then merge and clean up as its options say; print the summary."""
    options = initial.options
    settings = scheduler.Settings(
        paths=paths,
        dag=dag,
        autospec=executable,
        worktree_root=worktree_root(repo, options.worktree_root),
        max_parallel=options.max_parallel if options.parallel else 1,
        fail_fast=options.fail_fast,
        timeouts=spec_timeouts(dag, options),
    )
    report = progress.reporter(live=sys.stdout.isatty(), color=color)
    try:
        final = trio.run(scheduler.drive, initial, settings, report)
    finally:
        report.close()
    code = {RunStatus.COMPLETED: EXIT_OK, RunStatus.INTERRUPTED: EXIT_INTERRUPTED}.get(
        final.status, EXIT_FAILED
    )
    if options.merge and final.status is not RunStatus.INTERRUPTED:
        final, merged = _merge(repo, paths, final, dag, keep_worktrees=options.keep_worktrees)
        code = code or merged
    print(render.summary(final, color=color), end="")
    return code


def _merge(
    repo: Path, paths: RunPaths, final: RunState, dag: Dag, *, keep_worktrees: bool
) -> tuple[RunState, int]:
    """Merge the completed specs (``dagspec.merge``); the new state and the exit code."""
    from dagspec import merge

    if not any(s.status is SpecStatus.COMPLETED and not s.merged for s in final.specs):
        return final, EXIT_OK
    final, report = merge.merge_run(repo, final, dag)
    state.save(final, paths.state_file)
    print(merge.render_report(report).rstrip("\n"))
    if not keep_worktrees:
        final = merge.remove_merged_worktrees(repo, final)
        state.save(final, paths.state_file)
    return final, merge.merge_exit_code(report)


# --- continuing a recorded run (resume, retry) ----------------------------------------------


def recorded_dag(repo: Path, paths: RunPaths, recorded: RunState) -> Dag:
    """The DAG as it was when the run started; says so when the file has changed since."""
    dag = load_dag(paths.dag_copy)
    original = repo / recorded.dag_file
    try:
        changed = original.read_bytes() != paths.dag_copy.read_bytes()
    except OSError:
        changed = True
    if changed:
        print(
            f"note: {recorded.dag_file} has changed since run {recorded.run_id} started; "
            "continuing the DAG as it was then (a new `dag run` picks up the changes)",
            file=sys.stderr,
        )
    return dag
