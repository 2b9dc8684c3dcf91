"""``dag status``: one view of every spec of a run, once, as JSON, or watched until it ends.

It only reads the state file (written atomically, README, Files on disk) and never takes the run's
lock, so it works while another process drives the run. Of a finished run with recorded merge
commits it asks git one thing the state cannot know: whether the base branch still has them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from dagspec import estimates, lifecycle, merge_asked, relocate, render, terminal
from dagspec.console import dag_command
from dagspec.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    as_typed,
    print_error,
    print_warning,
)
from dagspec.lifecycle import RunState, RunStatus, SpecStatus
from dagspec.run_ids import no_run_read
from dagspec.state import driver_alive, list_runs, load, settled, to_data, utcnow
from dagspec.unattended import early_start_hint
from dagspec.workspace import RunPaths, check_run_id

# README, JSON, in order; nothing else of the state file (options, pids) is part of the contract.
RUN_KEYS = (
    "format",
    "run_id",
    "dag_file",
    "status",
    "base_branch",
    "base_commit",
    "started_at",
    "finished_at",
)
SPEC_KEYS = (
    "id",
    "layer",
    "status",
    "stage",
    "tasks_done",
    "tasks_total",
    "depends_on",
    "blocked_by",
    "worktree",
    "branch",
    "spec_dir",
    "attempts",
    "exit_code",
    "started_at",
    "finished_at",
    "error",
    "log",
    "merged",
    "merge_commit",
    "stalled_since",
    "waiting_until",
)
TICK = 1.0  # seconds between two reads of the state file under --watch
RESIZE_CHECKS = 10  # looks at the terminal's size per TICK


def status(repo: Path, run_id: str | None, *, as_json: bool, watch: bool, color: bool) -> int:
    """Show a run (default: the newest); exit 1 when it needs you (``exit_code``), else 0
    (issue 15: ``dag status && deploy``)."""
    if as_json and watch:
        print_error("--json and --watch do not go together: choose one")
        return EXIT_USAGE
    paths = RunPaths(repo, check_run_id(run_id) if run_id else newest_run(repo))
    if watch:
        live = sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
        shown = lambda: render.as_typed_run(_seen(paths))  # noqa: E731
        code = _watch(shown, color=color, live=live, repo=repo)
        return _driver_gone(paths) if code == EXIT_FAILED else code
    state, dropped = _on_base_now(repo, _seen(paths))
    finishing = ending(state)
    state, left_notes, branches_left = (state, [], False) if finishing else _left_now(repo, state)
    code = EXIT_OK if finishing else exit_code(state)  # its driver needs nothing of you yet
    if as_json:
        print(json.dumps(as_json_data(state), indent=2))
        return code
    state = render.as_typed_run(state)  # a reason's `dag ...` as the next: line says it
    width = render.terminal_width()
    print(render.status_table(state, now=utcnow(), width=width, color=color), end="")
    if (hint := early_start_hint(state, dag=dag_command())) is not None:
        print(f"hint: {hint}")
    if dropped:
        from dagspec import onto_advice  # git, only for a run that needs it (startup: bench/)

        print(as_typed(onto_advice.dropped_note(repo, state, dropped)))
    for note in left_notes:
        print(note)
    if finishing:
        print(f"note: {finishing}")
    elif left_off(state):
        from dagspec import merge_publish  # git, only for a run that needs it (startup: bench/)

        if (waiting := merge_publish.waiting_result(repo, state)) is not None:
            print(f"note: {waiting}")
    if state.status is not RunStatus.RUNNING and not finishing:
        lost = _lost_branches(repo, state)
        if lost:
            print(render.lost_note(state, lost, dag=dag_command()))
        line = render.next_line(
            state, dag=dag_command(), after="status", lost=lost, branches_left=branches_left
        )
        print(_merge_as_refused(repo, state, line))
    return code


def _merge_as_refused(repo: Path, state: RunState, line: str) -> str:
    """``line`` (``next: ...``, as ``dag`` is typed) with a plain ``dag merge RUN`` made what
    ``dag merge`` would advise when it refuses (a rewritten base branch: ``--onto-current``;
    ``integration.merge_command``): git is asked only then."""
    if line != f"next: {dag_command()} merge {state.run_id}":
        return line
    from dagspec import integration  # git, only for a run that needs it (startup: bench/)

    return f"next: {integration.merge_command(repo, state, dag=dag_command())}"


def ending(state: RunState) -> str | None:
    """What the driver of a finished run is still doing, while it is alive (it holds the
    run's lock): the merge at the run's end, or removing merged specs' worktrees; None when
    the run is running or its driver is gone. Until it ends, no ``next:`` line: the
    command it would name (``dag merge``) is what the driver is doing."""
    if state.status is RunStatus.RUNNING or state.driver_pid is None or not driver_alive(state):
        return None
    by = f"its driver (pid {state.driver_pid})"
    if left_off(state):
        what = f"is merging its completed specs into {state.base_branch} now"
    else:
        what = "is ending the run (removing merged specs' worktrees, its report)"
    return f"run {state.run_id} {state.status.value}, and {by} {what}: look again once it ends"


def _lost_branches(repo: Path, state: RunState) -> dict[str, str]:
    """``driving.lost_branches``, git asked only for a run with specs to take up."""
    if not state.ids(SpecStatus.FAILED, SpecStatus.INTERRUPTED, SpecStatus.BLOCKED):
        return {}
    from dagspec import driving  # git, only for a run that needs it (startup: bench/)

    return driving.lost_branches(repo, state)


def _on_base_now(repo: Path, state: RunState) -> tuple[RunState, frozenset[str]]:
    """The run with each spec recorded merged whose merge the base branch no longer has (a
    reset, a rebase aborted after the merge) shown not merged, as the next ``dag merge``
    would record it, and those specs. git is asked only for a finished run with a recorded
    merge commit."""
    if state.status is RunStatus.RUNNING or not any(s.merge_commit for s in state.specs):
        return state, frozenset()
    from dagspec import merge_chain  # git, only for a run that needs it (startup: bench/)

    dropped, flattened = merge_chain.merges_off_base(repo, state)
    for spec_id in flattened:  # its merge rewritten, its work kept: "already merged"
        state = state.with_spec(attrs.evolve(state.spec(spec_id), merge_commit=None))
    return lifecycle.record_dropped(state, dropped), dropped


def _left_now(repo: Path, state: RunState) -> tuple[RunState, list[str], bool]:
    """What a finished run left (``left_behind``): the run as it makes it (a spec whose
    branch moved on after its merge not merged), its notes, and whether merged specs'
    branches are still there. git is asked only for a finished run with a spec merged."""
    if state.status is RunStatus.RUNNING or not any(s.merged for s in state.specs):
        return state, [], False
    from dagspec import integration, left_behind  # git, only for a run that needs it

    left = left_behind.read(repo, state)
    merge = integration.merge_command(repo, state, dag=dag_command()) if left.moved else None
    notes = left_behind.notes(state, left, dag=dag_command(), merge=merge)
    return left_behind.shown(state, left), notes, bool(left.branches)


def _seen(paths: RunPaths) -> RunState:
    """The run as it is now, its paths as they are now (a moved repository: ``relocate``)."""
    return merge_asked.seen(paths, settled(relocate.seen_from(paths.repo, load(paths))))


def exit_code(state: RunState) -> int:
    """1 when the run needs you, as ``dag run`` would have ended: it failed or was
    interrupted, or it finished with completed work left off the base branch (a conflict at
    the merge, a spec depending on one, the result waiting on ``dag/<run>/_merged``, a merge
    that never ran); else 0: completed and merged, still running, or completed under
    ``--no-merge``, which leaves the merge to you on purpose (``dag run`` exits 0 there too).
    """
    failed = state.status in (RunStatus.FAILED, RunStatus.INTERRUPTED)
    return EXIT_FAILED if failed or left_off(state) else EXIT_OK


def left_off(state: RunState) -> bool:
    """Whether a finished run that was to merge has completed specs not on the base branch."""
    if state.status is RunStatus.RUNNING or not state.options.merge:
        return False
    return any(s.status is SpecStatus.COMPLETED and not s.merged for s in state.specs)


def newest_run(repo: Path) -> str:
    """The id of the newest readable run; a damaged file is named on stderr and skipped."""
    states, problems = list_runs(repo)
    for problem in problems:
        print_warning(str(problem))
    if not states:
        raise no_run_read(repo, problems)
    return states[0].run_id


def as_json_data(state: RunState) -> dict[str, Any]:
    """The object of README, JSON: exactly its keys, in its order, times in ISO 8601 UTC."""
    data = to_data(state)
    run = {key: data[key] for key in RUN_KEYS}
    run["specs"] = [{key: _plain(spec[key]) for key in SPEC_KEYS} for spec in data["specs"]]
    return run


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def watch(
    read: Callable[[], RunState],
    show: Callable[[RunState], None],
    wait: Callable[[], None],
    *,
    every_tick: bool,
    driven: Callable[[RunState], bool] | None = None,
) -> RunState:
    """Show the run, then again after each ``wait`` (every time, or only when it changed),
    until it is no longer running nor ``driven`` (its driver still ending it: ``ending``);
    return its last state.

    The run is read before it is shown, so the last view is of the finished run. With
    ``driven``, a finished run is read once more after its driver is seen gone: the driver
    may have written it last, and exited, between the read and that look.
    """
    shown: RunState | None = None
    last_read = driven is None
    while True:
        state = read()
        if every_tick or state != shown:
            show(state)
            shown = state
        if state.status is RunStatus.RUNNING or (driven is not None and driven(state)):
            last_read = driven is None
            wait()
        elif last_read:
            return state
        else:
            last_read = True


def _watch(read: Callable[[], RunState], *, color: bool, live: bool, repo: Path) -> int:
    """In a terminal, the live board of ``dag run`` (issue 14); in a pipe, the table each
    time it changes."""
    if not live:
        final = watch(read, _print_table(color), _wait(None), every_tick=False, driven=_ending)
        summary, code = _summary(repo, final, color=color)
        print(summary.partition("\n")[2], end="")  # its first line ends the last table
        return code
    shown = terminal.Board(sys.stdout, color=color, history=estimates.load_history(repo))
    try:
        final = watch(read, shown.show, _wait(shown), every_tick=True, driven=_ending)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        shown.close()
    summary, code = _summary(repo, final, color=color)
    print(summary, end="")
    return code


def _summary(repo: Path, final: RunState, *, color: bool) -> tuple[str, int]:
    """The end of a watch, as ``dag run`` ends (``render.summary``), with what the run left
    (``_left_now``: its notes before the ``next:`` line), and its exit code."""
    lost = _lost_branches(repo, final)
    final, notes, branches_left = _left_now(repo, final)
    summary = render.summary(
        final,
        color=color,
        dag=dag_command(),
        after="status",
        lost=lost,
        branches_left=branches_left,
    )
    body, _, last = summary.rstrip("\n").rpartition("\n")
    return "\n".join([body, *notes, last]) + "\n", exit_code(final)


def _ending(state: RunState) -> bool:
    return ending(state) is not None


def _driver_gone(paths: RunPaths) -> int:
    """What a watch that saw its run end interrupted ends with: when the run's driver is
    gone (killed, a reboot: the file still says running), that said on stderr with how to
    go on, as ``dag status`` and ``dag logs -f`` say it; exit 1 either way."""
    recorded = load(paths)
    if recorded.status is RunStatus.RUNNING and not driver_alive(recorded):
        run_id = recorded.run_id
        print_error(
            f"the driver of run {run_id} is gone (killed, or the machine restarted): "
            f"`dag resume {run_id}` goes on with it"
        )
    return EXIT_FAILED


def _print_table(color: bool) -> Callable[[RunState], None]:
    """Print each table as it comes, a blank line between two (none after the last: the
    rest of the summary follows it)."""
    tables = 0

    def show(state: RunState) -> None:
        nonlocal tables
        table = render.status_table(state, now=utcnow(), width=render.terminal_width(), color=color)
        print("\n" * bool(tables) + table, end="", flush=True)
        tables += 1

    return show


def _wait(shown: terminal.Board | None) -> Callable[[], None]:
    """Wait ``TICK`` seconds, or less when the terminal is resized (then the board is
    redrawn at once)."""

    def wait() -> None:
        size = shutil.get_terminal_size()
        for _ in range(RESIZE_CHECKS):
            time.sleep(TICK / RESIZE_CHECKS)
            if shown is not None and shutil.get_terminal_size() != size:
                return
        if shown is not None:
            shown.ticks += 1

    return wait
