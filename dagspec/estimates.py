"""How long specs are expected to take, and how long a run has left (issues 14 and 16).

The record is the run state files (``state.list_runs``): each completed spec keeps the
``started_at`` and ``finished_at`` of its last attempt. This module only reads those two
fields, in ``recorded_durations``, so that the state module can be reorganised freely.
Expected durations come from ``priority.expected_durations``, the same numbers the
scheduler orders specs by, ``run --dry-run`` plans with and the board's ``eta`` counts down.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from dagspec import graph, lifecycle, priority, render, state
from dagspec.lifecycle import RunState, SpecStatus
from dagspec.words import counted

# State files record times to the second, so a spec recorded as taking 0 s took under a
# second: count it as half of one rather than as no work at all.
SHORTEST = 0.5


def recorded_durations(runs: Iterable[RunState]) -> dict[str, list[float]]:
    """Seconds each spec id took in the completed attempts recorded in ``runs``.

    Returns ``{spec id: [seconds, ...]}`` in the order of ``runs``; specs that did not
    complete, or miss a time, are left out.
    """
    found: dict[str, list[float]] = {}
    for run in runs:
        for spec in run.specs:
            if spec.status is SpecStatus.COMPLETED and spec.started_at and spec.finished_at:
                seconds = (spec.finished_at - spec.started_at).total_seconds()
                found.setdefault(spec.id, []).append(max(seconds, SHORTEST))
    return found


def load_history(repo: Path) -> dict[str, list[float]]:
    """``recorded_durations`` of every readable run of ``repo`` (damaged files are passed over)."""
    runs, _ = state.list_runs(repo)
    return recorded_durations(runs)


def finished_durations(current: RunState) -> list[float]:
    """Seconds each spec the run ``current`` has completed so far took."""
    return [s for samples in recorded_durations([current]).values() for s in samples]


def plan_lines(
    graph: Mapping[str, Sequence[str]], history: Mapping[str, Sequence[float]], slots: int
) -> list[str]:
    """What ``run --dry-run`` says about time: the critical path and the estimated total.

    ``[]`` when no spec of ``graph`` has a recorded duration: an estimate from equal
    weights would be a number with no unit.
    """
    known = [spec_id for spec_id in graph if history.get(spec_id)]
    if not known:
        return []
    durations = priority.expected_durations(graph, history)
    path = priority.critical_path(graph, durations)
    longest = sum(durations[spec_id] for spec_id in path)
    total = priority.estimated_makespan(graph, durations, slots)
    at_once = "one at a time" if slots == 1 else f"{slots} at once"
    source = (
        "every spec"
        if len(known) == len(graph)
        else f"{len(known)} of {counted(len(graph), 'spec')}, the others taken as typical"
    )
    return [
        f"critical path ({render.format_duration(longest)}): {' -> '.join(path)}",
        f"estimated time: {render.format_duration(total)} ({at_once}; "
        f"from earlier runs of {source})",
    ]


def eta(
    run: RunState, now: datetime, history: Mapping[str, Sequence[float]] | None = None
) -> float | None:
    """Seconds until ``run`` should end, or None while nothing is known (no spec of it has
    a recorded duration, in ``history`` or among what it has finished).

    Each spec still to run is expected to take its ``priority.expected_durations``, a
    running one that less what it has run already (at least a second); the run ends no
    sooner than its longest chain of such work, nor than all of it shared among its slots
    (``priority.lower_bound``).
    """
    history = history or {}
    finished = finished_durations(run)
    if not finished and not any(history.get(s.id) for s in run.specs):
        return None
    expected = priority.expected_durations([s.id for s in run.specs], history, finished)
    left: dict[str, float] = {}
    for spec in run.specs:
        if spec.status is SpecStatus.PENDING:
            left[spec.id] = expected[spec.id]
        elif spec.status is SpecStatus.RUNNING and spec.started_at is not None:
            ran = (now - spec.started_at).total_seconds()
            left[spec.id] = max(expected[spec.id] - ran, 1.0)
    if not left:
        return None
    graph = {s.id: [d for d in s.depends_on if d in left] for s in run.specs if s.id in left}
    slots = run.options.max_parallel if run.options.parallel else 1
    return priority.lower_bound(graph, left, max(slots, 1))


def next_to_start(
    run: RunState,
    deps: Mapping[str, Sequence[str]],
    started: set[str],
    collecting: set[str],
    history: Mapping[str, Sequence[float]],
) -> str | None:
    """The ready spec to start now: the longest chain of expected work behind it
    (``priority.next_to_start``), declaration order breaking ties; None when none is ready
    (``started``: specs of this drive not to start now), or when the best will be once the
    specs being ``collecting`` (their work committed and joined) have completed."""
    ready = lifecycle.ready(run, deps, exclude=started)
    if not ready:
        return None
    done = {*run.ids(SpecStatus.COMPLETED), *collecting}
    pending = set(run.ids(SpecStatus.PENDING)) - started
    soon = [s for s in graph.ready(deps, pending, done) if s not in ready]
    return priority.next_to_start(deps, ready, soon, history, finished_durations(run))
