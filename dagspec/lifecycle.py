"""The run's lifecycle: what can happen to a spec, and when. Pure: no trio, git, files or clock.

The records (``RunState`` with one ``SpecState`` per spec) are frozen; every change is a
transition, a function from a run to ``(new run, events)`` with the time and the facts
passed in. The scheduler applies them (saving and reporting each); ``resume``, ``retry``,
``merge`` and ``cleanup`` use the ones that concern them (those between drives are in
``dagspec.between_drives``, re-exported here). Nothing else changes a record.

A spec's statuses::

                    start                 complete
      pending ─────────────▶ running ───────────────▶ completed ──▶ (merged: True)
       ▲ │ ▲ ▲                │ │ │ │ stall, unstall: shown stalled, still running;
       │ │ │ │                │ │ │ │ agent_exited: its agent done, its work being joined
       │ │ │ └────────────────┘ │ │ │ end_stall, the first: it starts again at its stage;
       │ │ │       wake         │ │ │ call_off: stopped before its agent started
       │ │ └──── waiting ◀──────┘ │ │ limit_hit: until the reset (or a back-off)
       │ │ cascade     fail, end_stall (the second), limit_hit (the cap)
       │ ▼                        ▼ ▼ interrupt (a signal, --fail-fast, a driver gone)
       │ blocked             failed  interrupted
       │  │                     │       │
       └──┴─────────────────────┴───────┘
          prepare_resume (blocked, failed, interrupted), prepare_retry (the named failed
          specs and everything blocked); stalls and limits: ``dagspec.unattended`` (#17)

The ready rule: a spec is *ready* when it is pending and every spec it depends on has
completed (``ready``). The cascade rule: a pending spec downstream of a failed or
interrupted spec can never become ready in this drive; it is ``blocked``, its
``blocked_by`` naming those root causes (``cascade``, through ``graph.downstream``; the
merge uses the same rule for specs left off behind a conflict, ``blocked_by``).

A run's statuses: ``running`` while a driver drives it; at the end ``interrupted`` after a
signal (or when its driver died: ``settle_stale``), else ``completed`` when every spec
completed, ``failed`` when a spec failed, else ``interrupted``: a run is failed only when a
spec is.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from dagspec import graph
from dagspec.between_drives import forget_worktrees as forget_worktrees
from dagspec.between_drives import prepare_resume as prepare_resume
from dagspec.between_drives import prepare_retry as prepare_retry
from dagspec.between_drives import record_dropped as record_dropped
from dagspec.between_drives import record_merges as record_merges
from dagspec.between_drives import settle_stale as settle_stale
from dagspec.records import Event as Event
from dagspec.records import EventKind as EventKind
from dagspec.records import RunOptions as RunOptions
from dagspec.records import RunState as RunState
from dagspec.records import RunStatus as RunStatus
from dagspec.records import SpecState as SpecState
from dagspec.records import SpecStatus as SpecStatus

Deps = Mapping[str, Sequence[str]]
"""Each spec id mapped to the spec ids it depends on (effective ``depends_on``), in
declaration order."""


DEAD = frozenset({SpecStatus.FAILED, SpecStatus.INTERRUPTED})
"""Statuses whose dependents cannot start in this drive (the cascade's roots)."""


Transition = tuple[RunState, tuple[Event, ...]]
"""What every transition returns: the new run and what happened, for the reporter."""


def _change(run: RunState, spec_id: str, **fields: Any) -> RunState:
    return run.with_spec(attrs.evolve(run.spec(spec_id), **fields))


# --- a drive --------------------------------------------------------------------------------


def begin(run: RunState, deps: Deps, *, driver_pid: int) -> Transition:
    """A driver takes the run: it is ``running`` again, and specs behind dead ones blocked."""
    run = attrs.evolve(run, status=RunStatus.RUNNING, driver_pid=driver_pid, finished_at=None)
    return cascade(run, deps)


def ready(run: RunState, deps: Deps, *, exclude: Collection[str] = ()) -> list[str]:
    """The ready rule (module docstring), in declaration order, ``exclude`` left out."""
    pending = set(run.ids(SpecStatus.PENDING)) - set(exclude)
    return graph.ready(deps, pending, set(run.ids(SpecStatus.COMPLETED)))


def start(
    run: RunState,
    spec_id: str,
    *,
    now: datetime,
    worktree: str,
    branch: str,
    spec_dir: str | None,
    stage: str | None,
    log: str,
    agent_done: bool = False,
) -> Transition:
    """The spec's worktree is ready and its agent about to run: a new attempt, ``running``.
    ``agent_done``: its agent finished in an earlier attempt (``agent_exited``), and this
    one only commits and joins its work."""
    spec, attempt = run.spec(spec_id), run.spec(spec_id).attempts + 1
    run = _change(
        run,
        spec_id,
        status=SpecStatus.RUNNING,
        attempts=attempt,
        earlier_seconds=spec.agent_seconds(now),
        started_at=now,
        finished_at=None,
        exit_code=0 if agent_done else None,
        agent_done=agent_done,
        error=None,
        blocked_by=(),
        stalled_since=None,
        waiting_until=None,
        worktree=worktree,
        branch=branch,
        spec_dir=spec_dir,
        stage=stage,
        log=log,
    )
    detail = f"attempt {attempt}" + (", its agent done: joining its work" if agent_done else "")
    return run, (Event(spec_id, EventKind.STARTED, detail),)


def agent_started(run: RunState, spec_id: str, *, pid: int | None) -> Transition:
    """Record the agent's process group (``None``: it is gone), for a later driver."""
    if run.spec(spec_id).agent_pid == pid:
        return run, ()
    return _change(run, spec_id, agent_pid=pid), ()


def agents_gone(run: RunState) -> Transition:
    """Every agent of the run has been ended: no process group is recorded any more."""
    if all(s.agent_pid is None for s in run.specs):
        return run, ()
    return attrs.evolve(run, specs=tuple(attrs.evolve(s, agent_pid=None) for s in run.specs)), ()


def agent_exited(run: RunState, spec_id: str) -> Transition:
    """The agent exited 0; its work is about to be committed and joined. Recorded (exit
    code 0, ``agent_done``), so that an attempt ended before the join (its work conflicts
    with what the run joined before it, a git fault, a driver killed meanwhile) goes on
    from there: the next attempt only commits and joins the work, as the user left it."""
    return _change(run, spec_id, exit_code=0, agent_pid=None, agent_done=True), ()


def observe(
    run: RunState,
    spec_id: str,
    *,
    stage: str | None = None,
    spec_dir: str | None = None,
    tasks: tuple[int, int] | None = None,
) -> Transition:
    """What the agent's output or files showed: a stage banner, its spec directory
    (``specs/<name>``), task counts ``(done, total)``. Facts not given stay as they are. A
    stage banner is always an event (the stage began); another fact equal to the record is
    no change and no event."""
    spec = run.spec(spec_id)
    fields: dict[str, Any] = {}
    events: list[Event] = []
    if stage is not None:
        events.append(Event(spec_id, EventKind.STAGE, stage))
        if stage != spec.stage:
            fields["stage"] = stage
    if spec_dir is not None and spec_dir != spec.spec_dir:
        fields["spec_dir"] = spec_dir
    if tasks is not None and tasks != (spec.tasks_done, spec.tasks_total):
        fields["tasks_done"], fields["tasks_total"] = tasks
        events.append(Event(spec_id, EventKind.TASKS, f"{tasks[0]}/{tasks[1]}"))
    return (_change(run, spec_id, **fields) if fields else run), tuple(events)


def complete(
    run: RunState,
    spec_id: str,
    *,
    now: datetime,
    spec_dir: str | None,
    tasks: tuple[int, int] | None,
) -> Transition:
    """The agent exited 0 and its work is committed on the spec's branch and joined."""
    spec = run.spec(spec_id)
    done, total = tasks if tasks is not None else (spec.tasks_done, spec.tasks_total)
    run = _change(
        run,
        spec_id,
        status=SpecStatus.COMPLETED,
        stage=None,
        exit_code=0,
        agent_pid=None,
        agent_done=False,
        stalled_since=None,
        limit_hits=0,
        finished_at=now,
        spec_dir=spec_dir,
        tasks_done=done,
        tasks_total=total,
    )
    return run, (Event(spec_id, EventKind.COMPLETED),)


def fail(
    run: RunState,
    deps: Deps,
    spec_id: str,
    *,
    now: datetime,
    reason: str,
    exit_code: int | None = None,
) -> Transition:
    """The attempt failed (a non-zero exit, a timeout, its worktree could not be made, its
    work could not be joined): ``failed`` with ``reason``, and the cascade. After its agent
    exited 0 (``agent_done``), the exit code stays 0."""
    run = _change(
        run,
        spec_id,
        status=SpecStatus.FAILED,
        error=reason,
        exit_code=0 if run.spec(spec_id).agent_done else exit_code,
        agent_pid=None,
        stalled_since=None,
        finished_at=now,
    )
    run, blocked = cascade(run, deps)
    return run, (Event(spec_id, EventKind.FAILED, reason), *blocked)


def fail_to_start(
    run: RunState, deps: Deps, spec_id: str, *, now: datetime, reason: str, log: str
) -> Transition:
    """An attempt that ended before its agent ran (its worktree could not be prepared); the
    last attempt's time is kept, as ``start`` keeps it."""
    spec = run.spec(spec_id)
    run = _change(
        run,
        spec_id,
        attempts=spec.attempts + 1,
        earlier_seconds=spec.agent_seconds(now),
        started_at=now,
        log=log,
        blocked_by=(),
    )
    return fail(run, deps, spec_id, now=now, reason=reason)


def call_off(
    run: RunState,
    spec_id: str,
    *,
    before: SpecState,
    worktree: str,
    branch: str,
    spec_dir: str | None,
    log: str,
) -> Transition:
    """The drive stopped before the spec's agent started (while its worktree was made, or in
    its ``execution.copy`` or ``setup``): the attempt never happened. The spec is as
    ``before`` (its record when the attempt began), with the worktree, branch and spec
    directory made for it recorded, so that nothing on disk is left unrecorded; an event
    when it had been reported started."""
    called_off = run.spec(spec_id).status is SpecStatus.RUNNING
    kept = attrs.evolve(before, worktree=worktree, branch=branch, spec_dir=spec_dir, log=log)
    events = (Event(spec_id, EventKind.CALLED_OFF, "stopped before its agent started"),)
    return run.with_spec(kept), events if called_off else ()


def interrupt(
    run: RunState, spec_id: str, *, now: datetime, reason: str = "interrupted"
) -> Transition:
    """A running spec whose agent had started stopped before its end (a signal,
    ``--fail-fast``, a cancelled drive)."""
    run = _change(
        run,
        spec_id,
        status=SpecStatus.INTERRUPTED,
        error=reason,
        finished_at=now,
        agent_pid=None,
        stalled_since=None,
    )
    return run, (Event(spec_id, EventKind.INTERRUPTED),)


def blocked_by(deps: Deps, roots: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The cascade rule: each spec downstream of ``roots`` and the roots it is behind, in
    the order of ``roots``. Roots themselves are not included."""
    result: dict[str, list[str]] = {}
    for root in roots:
        for spec_id in graph.downstream(deps, [root]):
            result.setdefault(spec_id, []).append(root)
    return {spec_id: tuple(causes) for spec_id, causes in result.items()}


def cascade(run: RunState, deps: Deps) -> Transition:
    """Block each pending spec downstream of a failed or interrupted one; a spec blocked
    already gets the roots that failed since added to its ``blocked_by``."""
    behind = blocked_by(deps, run.ids(*DEAD))
    events = []
    for spec_id in run.ids(SpecStatus.PENDING, SpecStatus.BLOCKED):
        causes = behind.get(spec_id)
        if causes is None or causes == run.spec(spec_id).blocked_by:
            continue
        if run.spec(spec_id).status is SpecStatus.PENDING:
            events.append(Event(spec_id, EventKind.BLOCKED, ", ".join(causes)))
        run = _change(run, spec_id, status=SpecStatus.BLOCKED, blocked_by=causes)
    return run, tuple(events)


def finish(run: RunState, *, now: datetime, interrupted: bool) -> Transition:
    """The drive is over: ``interrupted`` after a signal (pending specs stay pending for
    ``resume``), else ``completed`` when every spec is, ``failed`` when one failed, else
    ``interrupted`` (a spec a ``retry`` of others left interrupted, and none failed)."""
    if interrupted:
        status = RunStatus.INTERRUPTED
    elif run.ids(SpecStatus.FAILED):
        status = RunStatus.FAILED
    elif all(s.status is SpecStatus.COMPLETED for s in run.specs):
        status = RunStatus.COMPLETED
    else:
        status = RunStatus.INTERRUPTED
    return attrs.evolve(run, status=status, finished_at=now), ()
