"""``dag list``: every run of the repository, newest first, with its counts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dagspec import render
from dagspec.errors import EXIT_FAILED, EXIT_OK, as_typed, print_error
from dagspec.lifecycle import RunState, RunStatus
from dagspec.state import format_time, settled, utcnow
from dagspec.state import list_runs as load_runs

MANY = 20  # runs listed, from which the list says how to forget one
OLD = timedelta(days=30)  # a run that ended this long ago makes the list say it too
FORGET_HINT = (
    "hint: `dag cleanup RUN_ID --forget` takes a run off this list, with its worktrees "
    "(branches with unmerged work stay)"
)


def list_runs(repo: Path, *, as_json: bool, color: bool) -> int:
    """Print the runs (a table, or the JSON list of README, JSON); exit 1 if a state file
    is damaged, after naming it and listing every other run."""
    states, problems = load_runs(repo)
    states = [settled(s) for s in states]
    if as_json:
        print(json.dumps([_as_json(s) for s in states], indent=2))
    elif states:
        now = utcnow()
        print(
            render.runs_table(states, now=now, width=render.terminal_width(), color=color), end=""
        )
        if len(states) >= MANY or any(_old(s, now) for s in states):
            print(as_typed(FORGET_HINT))
    elif not problems:
        print(as_typed(f"no runs yet in {repo}: `dag run FILE` starts one"))
    for problem in problems:
        print_error(str(problem))
    return EXIT_FAILED if problems else EXIT_OK


def _old(state: RunState, now: datetime) -> bool:
    """A run that is not running and ended (or, never ended, started) ``OLD`` ago or more."""
    ended = state.finished_at or state.started_at
    return state.status is not RunStatus.RUNNING and now - ended >= OLD


def _as_json(state: RunState) -> dict[str, Any]:
    return {
        "run_id": state.run_id,
        "dag_file": state.dag_file,
        "status": state.status.value,
        "started_at": format_time(state.started_at),
        "finished_at": None if state.finished_at is None else format_time(state.finished_at),
        "counts": state.counts(),
    }
