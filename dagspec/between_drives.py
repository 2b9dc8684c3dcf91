"""The lifecycle's transitions between drives, pure (a sibling of ``dagspec.lifecycle``,
which re-exports them, and stays under 350 lines): a run whose driver is gone settled, the
specs ``resume`` and ``retry`` open again, and what ``merge`` and ``cleanup`` record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from dagspec.records import RunOptions, RunState, RunStatus, SpecStatus


def settle_stale(run: RunState, *, driver_alive: bool) -> RunState:
    """A run marked running whose driver is gone was interrupted (killed, machine slept):
    it and its running specs are ``interrupted``. Their ``agent_pid`` is kept, so that the
    next driver can end an agent that outlived its driver."""
    if run.status is not RunStatus.RUNNING or driver_alive:
        return run
    return attrs.evolve(_orphaned(run), status=RunStatus.INTERRUPTED)


def _orphaned(run: RunState) -> RunState:
    """Specs recorded as running by a driver that is gone are ``interrupted``."""
    specs = tuple(
        attrs.evolve(
            s, status=SpecStatus.INTERRUPTED, error=s.error or "the driver died", stalled_since=None
        )
        if s.status is SpecStatus.RUNNING
        else s
        for s in run.specs
    )
    return attrs.evolve(run, specs=specs)


_FRESH: dict[str, Any] = {"stall_restarts": 0, "limit_hits": 0, "waiting_until": None}


def _reopen(run: RunState, reset: Iterable[str], options: RunOptions) -> RunState:
    chosen = set(reset)
    specs = tuple(
        attrs.evolve(s, status=SpecStatus.PENDING, blocked_by=(), error=None, **_FRESH)
        if s.id in chosen
        else s
        for s in run.specs
    )
    return attrs.evolve(
        run, specs=specs, options=options, status=RunStatus.RUNNING, finished_at=None
    )


def prepare_resume(run: RunState, options: RunOptions) -> RunState:
    """The run as ``resume`` starts it again (the caller holds the run's lock, so no spec
    of it is running any more): every interrupted, failed and blocked spec pending, with a
    fresh budget of stall restarts and limit hits; a waiting spec keeps waiting."""
    run = _orphaned(run)
    unfinished = (SpecStatus.INTERRUPTED, SpecStatus.FAILED, SpecStatus.BLOCKED)
    return _reopen(run, run.ids(*unfinished), options)


def prepare_retry(run: RunState, spec_ids: Sequence[str], options: RunOptions) -> RunState:
    """The run as ``retry`` continues it (the caller holds the lock and has checked that
    the named specs failed): those specs and every blocked spec pending; the next drive's
    cascade blocks again whatever still waits for another failed spec."""
    run = _orphaned(run)
    return _reopen(run, [*spec_ids, *run.ids(SpecStatus.BLOCKED)], options)


# --- merge and cleanup ------------------------------------------------------------------------


def record_merges(run: RunState, merges: Mapping[str, str | None]) -> RunState:
    """Specs whose work is now on the base branch: ``merged``, with the merge commit (None
    when the base branch had the work already)."""
    for spec_id, commit in merges.items():
        spec = run.spec(spec_id)
        if not spec.merged:
            run = run.with_spec(
                attrs.evolve(spec, merged=True, merge_commit=commit, dropped_merge=None)
            )
    return run


def record_dropped(run: RunState, spec_ids: Iterable[str]) -> RunState:
    """Specs recorded merged whose merge commit the base branch no longer has (a reset, a
    rebase aborted after the merge): not merged any more, the lost commit kept as
    ``dropped_merge`` (the next merge takes the spec's work from it if its branch is gone)."""
    for spec_id in spec_ids:
        spec = run.spec(spec_id)
        dropped = spec.merge_commit or spec.dropped_merge
        run = run.with_spec(
            attrs.evolve(spec, merged=False, merge_commit=None, dropped_merge=dropped)
        )
    return run


def forget_worktrees(run: RunState, spec_ids: Iterable[str]) -> RunState:
    """Worktrees removed (or found gone): the specs no longer have one."""
    for spec_id in spec_ids:
        run = run.with_spec(attrs.evolve(run.spec(spec_id), worktree=None))
    return run
