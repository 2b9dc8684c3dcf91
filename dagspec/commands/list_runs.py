"""``dag list``: every run of the repository, newest first, with its counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dagspec import render
from dagspec.errors import EXIT_FAILED, EXIT_OK, as_typed, print_error
from dagspec.lifecycle import RunState
from dagspec.state import format_time, settled, utcnow
from dagspec.state import list_runs as load_runs


def list_runs(repo: Path, *, as_json: bool, color: bool) -> int:
    """Print the runs (a table, or the JSON list of README, JSON); exit 1 if a state file
    is damaged, after naming it and listing every other run."""
    states, problems = load_runs(repo)
    states = [settled(s) for s in states]
    if as_json:
        print(json.dumps([_as_json(s) for s in states], indent=2))
    elif states:
        print(
            render.runs_table(states, now=utcnow(), width=render.terminal_width(), color=color),
            end="",
        )
    elif not problems:
        print(as_typed(f"no runs yet in {repo}: `dag run FILE` starts one"))
    for problem in problems:
        print_error(str(problem))
    return EXIT_FAILED if problems else EXIT_OK


def _as_json(state: RunState) -> dict[str, Any]:
    return {
        "run_id": state.run_id,
        "dag_file": state.dag_file,
        "status": state.status.value,
        "started_at": format_time(state.started_at),
        "finished_at": None if state.finished_at is None else format_time(state.finished_at),
        "counts": state.counts(),
    }
