"""A run left alone (issue 17): the lifecycle's transitions for stalls and usage limits.

Pure, like ``dagspec.lifecycle``, whose status diagram shows them; the scheduler applies
them (``dagspec.watchdog`` tells it of stalls, ``agent.Watcher`` of limit messages).

Stalls. A running spec shows progress by its log growing, a file of its spec directory
changing (``tasks.yaml``, an artifact) or a new commit in its worktree. With none for the
stall timeout it is shown ``stalled`` (``stall``: one ``stalled`` event, so one
notification) and still runs; progress clears it (``unstall``). After a second period
without progress its agent is ended like a timeout's, and ``end_stall`` makes it pending
again, to start at its recorded stage: once (``MAX_STALL_RESTARTS``); the next stall
fails it (``no progress for 10 min``).

Usage limits. An attempt that fails after its output reported a usage or rate limit
(``limits.parse_limit``) does not fail its spec: ``limit_hit`` makes it ``waiting`` until
the stated reset, or a back-off that doubles with each hit in a row (``LimitHit.
wait_seconds``), and ``wake`` makes it pending again then, to start at its recorded stage.
A waiting spec holds no slot and no agent, its dependents wait for it, and a drive that
stops (Ctrl-C) leaves it waiting with its ``waiting_until`` for the next (``resume``). The
``MAX_LIMIT_HITS``-th hit in a row fails the spec.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from dagspec.durations import format_duration
from dagspec.lifecycle import (
    Deps,
    Event,
    EventKind,
    RunState,
    SpecState,
    SpecStatus,
    Transition,
    _change,
    fail,
)

if TYPE_CHECKING:  # loaded for a failure only (``spec_attempt._limit_at_end``)
    from dagspec.limits import LimitHit

MAX_STALL_RESTARTS = 1
"""How many times a stalled spec is ended and started again before a stall fails it."""

MAX_LIMIT_HITS = 5
"""The usage limits a spec may hit in a row: the fifth fails it instead of waiting."""


def idle_text(seconds: float) -> str:
    """``10 min`` (whole minutes from one minute on), else ``45s``."""
    return f"{round(seconds / 60)} min" if seconds >= 60 else format_duration(seconds)


def stall(run: RunState, spec_id: str, *, since: datetime, now: datetime) -> Transition:
    """A running spec made no progress since ``since``: shown ``stalled``, one ``stalled``
    event. Already stalled, or no longer running: no change."""
    spec = run.spec(spec_id)
    if spec.status is not SpecStatus.RUNNING or spec.stalled_since is not None:
        return run, ()
    idle = format_duration((now - since).total_seconds())
    event = Event(spec_id, EventKind.STALLED, f"no progress for {idle}")
    return _change(run, spec_id, stalled_since=since), (event,)


def unstall(run: RunState, spec_id: str) -> Transition:
    """A stalled spec made progress again: running, no longer shown stalled."""
    if run.spec(spec_id).stalled_since is None:
        return run, ()
    return _change(run, spec_id, stalled_since=None), ()


def stall_news(run: RunState, spec_id: str, *, idle: float | None, now: datetime) -> Transition:
    """What the watchdog saw: no progress for ``idle`` seconds (``stall``), or, with
    ``idle`` None, progress again (``unstall``)."""
    if idle is None:
        return unstall(run, spec_id)
    return stall(run, spec_id, since=now - timedelta(seconds=round(idle)), now=now)


def end_stall(
    run: RunState,
    deps: Deps,
    spec_id: str,
    *,
    now: datetime,
    idle: float,
    exit_code: int | None = None,
    where: str = "",
) -> Transition:
    """The agent of a spec without progress for ``idle`` seconds (two stall timeouts) was
    ended: pending again, to start at its recorded stage (a ``restarting`` event), unless it
    was restarted for a stall ``MAX_STALL_RESTARTS`` times already; then ``failed``.
    ``where``: said after the reason (`` (in execution.setup)``: the setup was ended)."""
    spec = run.spec(spec_id)
    reason = f"no progress for {idle_text(idle)}{where}"
    if spec.stall_restarts >= MAX_STALL_RESTARTS:
        return fail(run, deps, spec_id, now=now, reason=reason, exit_code=exit_code)
    run = _change(
        run,
        spec_id,
        status=SpecStatus.PENDING,
        stall_restarts=spec.stall_restarts + 1,
        limit_hits=0,
        stalled_since=None,
        agent_pid=None,
        exit_code=exit_code,
        finished_at=now,
    )
    where = f"at {spec.stage}" if spec.stage else "again"
    return run, (Event(spec_id, EventKind.RESTARTING, f"{reason}; starting {where}"),)


def limit_hit(
    run: RunState,
    deps: Deps,
    spec_id: str,
    *,
    now: datetime,
    hit: LimitHit,
    exit_code: int | None = None,
) -> Transition:
    """The attempt failed after its agent hit ``hit``: ``waiting`` until the reset (whole
    seconds from ``now``; a back-off doubled for each earlier hit in a row), a ``waiting``
    event; the ``MAX_LIMIT_HITS``-th hit in a row fails the spec instead."""
    spec = run.spec(spec_id)
    hits = spec.limit_hits + 1
    if hits >= MAX_LIMIT_HITS:
        reason = f"hit a {hit.agent} usage limit {hits} times in a row: {hit.message}"
        run, events = fail(run, deps, spec_id, now=now, reason=reason, exit_code=exit_code)
        return _change(run, spec_id, limit_hits=hits), events
    wait = math.ceil(hit.wait_seconds(now, repeat=spec.limit_hits))
    until = (now + timedelta(seconds=wait)).replace(microsecond=0)
    run = _change(
        run,
        spec_id,
        status=SpecStatus.WAITING,
        waiting_until=until,
        limit_hits=hits,
        stalled_since=None,
        agent_pid=None,
        exit_code=exit_code,
        finished_at=now,
        error=f"{hit.agent} limit: {hit.message}",
    )
    when = until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return run, (Event(spec_id, EventKind.WAITING, f"hit a {hit.agent} limit; until {when}"),)


def wake(run: RunState, spec_id: str, *, early: bool = False) -> Transition:
    """A waiting spec's time is up, or (``early``) ``dag retry`` asked for it now: pending,
    to start at its recorded stage; an early start is a ``restarting`` event."""
    spec = run.spec(spec_id)
    if spec.status is not SpecStatus.WAITING:
        return run, ()
    run = _change(run, spec_id, status=SpecStatus.PENDING, waiting_until=None)
    if not early:
        return run, ()
    where = f"at {spec.stage}" if spec.stage else "again"
    return run, (Event(spec_id, EventKind.RESTARTING, f"asked by dag retry; starting {where}"),)


def early_start_hint(run: RunState, *, dag: str = "dag") -> str | None:
    """The one line telling how to start the waiting specs now, if any wait:
    ``a waits for a usage limit until 2026-12-05 17:00Z: `dag retry r a` starts it now``."""
    waiting = [s for s in run.specs if s.status is SpecStatus.WAITING]
    if not waiting:
        return None
    ids = " ".join(s.id for s in waiting)
    until = max(s.waiting_until or datetime.min.replace(tzinfo=UTC) for s in waiting)
    who = f"{waiting[0].id} waits" if len(waiting) == 1 else f"{len(waiting)} specs wait"
    when = f" until {until.astimezone(UTC):%Y-%m-%d %H:%M}Z" if until.year > 1 else ""
    them = "it" if len(waiting) == 1 else "them"
    return f"{who} for a usage limit{when}: `{dag} retry {run.run_id} {ids}` starts {them} now"


def limit(max_parallel: int, run: RunState) -> int:
    """The run's parallel limit while some of its specs wait for a usage limit's reset: one
    lower for each, never below 1 (fewer agents at once is what a provider's limit asks)."""
    return max(1, max_parallel - len(run.ids(SpecStatus.WAITING)))


def note(spec: SpecState) -> str | None:
    """What the board and ``dag status`` say of a waiting or stalled spec, else None:
    ``until 2026-11-24 15:00Z: claude limit: <message>``, ``no progress since 14:02Z``."""
    if spec.status is SpecStatus.WAITING and spec.waiting_until is not None:
        until = spec.waiting_until.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")
        return f"until {until}" + (f": {spec.error}" if spec.error else "")
    if spec.status is SpecStatus.RUNNING and spec.stalled_since is not None:
        return f"no progress since {spec.stalled_since.astimezone(UTC):%H:%M:%S}Z"
    return None


def bank_killed(run: RunState, last_seen: Mapping[str, datetime]) -> RunState:
    """Specs a killed driver (``kill -9``) left ``running``: each attempt ended when it was
    last seen alive (``last_seen``, by spec id: its log's last write), so its time counts in
    ``agent_seconds`` as a stopped attempt's does; the specs stay ``running`` until the next
    drive settles them (``lifecycle.prepare_resume``, ``prepare_retry``)."""
    specs = tuple(
        attrs.evolve(s, finished_at=last_seen[s.id])
        if s.status is SpecStatus.RUNNING and s.finished_at is None and s.id in last_seen
        else s
        for s in run.specs
    )
    return attrs.evolve(run, specs=specs)
