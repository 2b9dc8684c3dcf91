"""How long a run has left (issue 14): the board's estimate, from the run's own durations.

Pure. Until the scheduler keeps its own estimates of each spec's duration, the expected
duration of a spec is the median of the run's completed specs; pass ``expected`` to use
another (the same the scheduler orders specs by, once it has one).
"""

from __future__ import annotations

import statistics
from datetime import datetime

from dagspec.lifecycle import RunState, SpecState, SpecStatus


def eta(state: RunState, now: datetime, expected: float | None = None) -> float | None:
    """Seconds until the run should end, or None before anything is known.

    Each unfinished spec that can still run is expected to take ``expected`` seconds (by
    default the median duration of the run's completed specs); the run ends no sooner than
    its longest chain of such work, nor than all of it shared among the parallel slots.
    """
    typical = expected if expected is not None else _typical(state)
    if typical is None:
        return None
    left = {s.id: _left(s, now, typical) for s in state.specs if _still_to_run(s)}
    if not left:
        return None
    deps_of = {s.id: s.depends_on for s in state.specs}
    chain: dict[str, float] = {}

    def finish(spec_id: str) -> float:
        if spec_id not in chain:
            deps = [finish(d) for d in deps_of[spec_id] if d in left]
            chain[spec_id] = left[spec_id] + max(deps, default=0.0)
        return chain[spec_id]

    slots = state.options.max_parallel if state.options.parallel else 1
    longest = max((finish(spec_id) for spec_id in left), default=0.0)
    return max(longest, sum(left.values()) / max(slots, 1))


def _typical(state: RunState) -> float | None:
    durations = [
        (s.finished_at - s.started_at).total_seconds()
        for s in state.specs
        if s.status is SpecStatus.COMPLETED and s.started_at and s.finished_at
    ]
    return statistics.median(durations) if durations else None


def _still_to_run(spec: SpecState) -> bool:
    return spec.status in (SpecStatus.PENDING, SpecStatus.RUNNING)


def _left(spec: SpecState, now: datetime, typical: float) -> float:
    if spec.status is SpecStatus.RUNNING and spec.started_at is not None:
        return max(typical - (now - spec.started_at).total_seconds(), 1.0)
    return typical
