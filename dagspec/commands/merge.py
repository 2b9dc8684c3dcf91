"""``dag merge RUN_ID``: merge a run's completed specs into the base branch (DESIGN §5)."""

from __future__ import annotations

from pathlib import Path

from dagspec.merge import (
    merge_exit_code,
    merge_run,
    remove_merged_worktrees,
    render_cleanup,
    render_report,
)
from dagspec.spec import load_dag
from dagspec.state import RunState, load, run_lock, save, settle_stale
from dagspec.workspace import RunPaths, check_run_id


def merge(repo: Path, run_id: str, *, dry_run: bool, cleanup: bool) -> int:
    """Merge (or with ``dry_run`` predict, writing nothing) and print the report; with
    ``cleanup``, then remove the merged specs' worktrees. Exit 1 when a completed spec is
    left off the base branch.

    A dry run takes no lock: it writes nothing, so it cannot disturb a process driving the
    run, and it may be asked while one does (as ``dag status`` may).
    """
    paths = RunPaths(repo, check_run_id(run_id))
    state = load(paths)  # a missing run is refused before the lock creates its directory
    if dry_run:
        _, code = merge_and_report(paths, state, dry_run=True, cleanup=False)
        return code
    with run_lock(paths):
        state = settle_stale(load(paths))
        _, code = merge_and_report(paths, state, dry_run=False, cleanup=cleanup)
    return code


def merge_and_report(
    paths: RunPaths, state: RunState, *, dry_run: bool, cleanup: bool
) -> tuple[RunState, int]:
    """Merge, save, print the report, clean up if asked; the new state and the exit code.

    The caller holds the run's lock (unless ``dry_run``): ``dag run`` and ``resume`` call
    this at their end the way ``dag merge`` does.
    """
    dag = load_dag(paths.dag_copy)
    new_state, report = merge_run(paths.repo, state, dag, dry_run=dry_run)
    if not dry_run:
        save(new_state, paths.state_file)
    print(render_report(report), end="")
    if cleanup and not dry_run:
        cleaned = remove_merged_worktrees(paths.repo, new_state)
        save(cleaned, paths.state_file)
        print(render_cleanup(new_state, cleaned), end="")
        new_state = cleaned
    return new_state, merge_exit_code(report)
