"""``dag resume``: continue an interrupted or failed run where each spec left off (README,
How a run works).

Completed specs are never run again; the rest is ``lifecycle.prepare_resume``. The run's
options are reused, flags given to ``resume`` win.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dagspec import (
    amend,
    checkout_move,
    driving,
    faults,
    left_behind,
    lifecycle,
    relocate,
    render,
    state,
)
from dagspec.console import dag_command
from dagspec.errors import EXIT_OK
from dagspec.executable import autospec_version, find_run_autospec
from dagspec.lifecycle import SpecStatus
from dagspec.programs import check_notify_flag
from dagspec.workspace import RunPaths, check_run_id


def resume(
    repo: Path,
    run_id: str,
    *,
    overrides: Mapping[str, Any],
    color: bool,
    live: bool = False,
    dag_file: Path | None = None,
    guessed: bool = False,
) -> int:
    """Continue run ``run_id`` of ``repo``; return the exit code. ``overrides`` are the run
    options given on the command line; ``live`` shows the board; ``dag_file`` (``--dag``)
    replaces the run's DAG (``amend.adopt``); ``guessed``: no run was named, ``run_id`` is
    the newest (when it has nothing left, the older runs that do are named, not resumed)."""
    paths = RunPaths(repo, check_run_id(run_id))
    state.load(paths)  # an unknown run is refused before its lock file is made
    check_notify_flag(overrides.get("notify"), repo=repo)
    checkout_move.finish_interrupted(repo)
    with state.run_lock(paths):
        recorded = state.ended_at_last_write(relocate.arrive(paths, state.load(paths)), paths)
        if _nothing_left(recorded):
            left = left_behind.read(repo, recorded)  # a branch moved on, branches left
            shown, branches_left = left_behind.shown(recorded, left), bool(left.branches)
            next_line = render.next_line(shown, dag=dag_command(), branches_left=branches_left)
            faults.say(f"run {run_id} has completed every spec: nothing to resume\n{next_line}\n")
            if guessed:
                faults.say(_older_to_resume(repo, run_id))
            return EXIT_OK
        if dag_file is None:
            dag = driving.recorded_dag(repo, paths, recorded)
        else:
            dag = amend.adopt(repo, paths, recorded, dag_file)
        taken_up = [
            s.id for s in recorded.specs if s.attempts and s.status is not SpecStatus.COMPLETED
        ]
        driving.check_branches(repo, recorded, taken_up, f"dag resume {run_id}")
        options = attrs.evolve(recorded.options, **overrides)
        executable = find_run_autospec(
            overrides.get("autospec"),
            recorded.options.autospec,
            run_id=run_id,
            again=f"dag resume {run_id}",
            used=recorded.autospec,
        )
        initial = lifecycle.prepare_resume(recorded, options)
        # the autospec that runs now decides how it is called (`autospec.spec_flag_works`)
        version = autospec_version(executable, cwd=repo)
        initial = attrs.evolve(initial, autospec_version=version, autospec=executable)
        faults.say(f"resuming run {run_id}: {_counts(recorded)}\n")
        return driving.execute(
            repo, paths, initial, dag, executable=executable, color=color, live=live
        )


def _older_to_resume(repo: Path, newest: str) -> str:
    """The runs other than ``newest`` that ``dag resume`` would continue (interrupted or
    failed), one command each: a resume that guessed the newest never takes one on its own."""
    states, _ = state.list_runs(repo)  # a damaged file was named when the newest was chosen
    dag = dag_command()
    lines = [
        f"  {dag} resume {seen.run_id}    # {seen.status.value}"
        for seen in map(state.settled, states)
        if seen.run_id != newest
        and seen.status in (lifecycle.RunStatus.INTERRUPTED, lifecycle.RunStatus.FAILED)
    ]
    if not lines:
        return ""
    return "older runs that can be resumed (name one):\n" + "\n".join(lines) + "\n"


def _counts(recorded: lifecycle.RunState) -> str:
    """``3 to run (2 interrupted, 1 pending), 1 completed``: the statuses the run's report
    and ``dag status`` showed (a dead driver's running specs ``interrupted``), not the
    ``pending`` that ``prepare_resume`` makes of them."""
    seen = lifecycle.settle_stale(recorded, driver_alive=False)
    left = [s for s in seen.specs if s.status is not SpecStatus.COMPLETED]
    done = f"{len(seen.specs) - len(left)} completed" if len(left) < len(seen.specs) else ""
    if not left:
        return f"nothing to run, {done}"  # what is left is the merge at its end
    text = f"{len(left)} to run ({render.count_text(attrs.evolve(seen, specs=tuple(left)))})"
    return f"{text}, {done}" if done else text


def _nothing_left(run: lifecycle.RunState) -> bool:
    """Every spec completed and merged, and no merged spec's worktree left to remove: a
    resume would only rewrite the run's times."""
    done = all(s.status is SpecStatus.COMPLETED and s.merged for s in run.specs)
    return done and (run.options.keep_worktrees or all(s.worktree is None for s in run.specs))
