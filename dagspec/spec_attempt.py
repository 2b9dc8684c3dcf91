"""One attempt at a spec, as a drive runs it: its worktree taken, ``execution.setup`` and its
agent under the spec's timeout and the stall watchdog, how the agent ended applied.

The drive (``dagspec.scheduler``) starts ``attempt`` for each spec given a slot, and owns
what the specs share: the run's state, the slots, the worktrees made ahead, the stop. An
attempt reaches it only through ``Drive``, and changes the run only by
``drive.apply(lifecycle.<transition>(...))``. What git does before the agent starts and
after it exits (the worktree made ready; the work committed and joined) is the workspace's
(``dagspec.ports``; for real ``dagspec.attempt``, in threads):

    attempt          drive.worktree (made ahead, else now) → lifecycle.start (``running``)
    ├── its agent done in an earlier attempt: slot freed → _complete (commit and join only)
    └── _run_agent   setup.user_setup, agent door (both under the timeout and watchdog;
                     the slot freed as the agent exits 0) → failed, stalled, usage limit
                     hit, or _complete

When the drive stops (the scheduler's cancellation order), a spec whose agent was running is
``interrupted``; one whose agent had not started is called off, as it was before with its
worktree recorded (``lifecycle.call_off``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import trio

from dagspec import agent, faults, lifecycle, ports, state
from dagspec.attempt import Prepared
from dagspec.autospec import Invocation, plain
from dagspec.errors import DagspecError, SigningStopped
from dagspec.lifecycle import Deps, RunState, SpecState, SpecStatus, Transition
from dagspec.ports import Settings
from dagspec.setup import SETUP_TIMEOUT, note_ended, user_setup
from dagspec.unattended import end_stall, idle_text, limit_hit, stall_news
from dagspec.watchdog import for_attempt

if TYPE_CHECKING:
    from dagspec.limits import LimitHit


class Drive(Protocol):
    """What an attempt uses of the drive running it (``scheduler``'s engine). Only the trio
    thread changes ``run``, and an attempt sets it directly only for its agent's pid."""

    run: RunState

    @property
    def deps(self) -> Deps: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def workspace(self) -> ports.Workspace: ...
    @property
    def door(self) -> ports.AgentDoor: ...
    @property
    def stopping(self) -> bool: ...  # no agent starts any more
    @property
    def groups(self) -> set[int]: ...  # the running agents' process groups
    @property
    def collecting(self) -> set[str]: ...  # agents exited 0, work being committed and joined

    def apply(self, transition: Transition) -> None: ...  # saved, then each event reported
    def failed(self, transition: Transition) -> None: ...  # ``apply``, then ``fail_fast``
    def free_slot(self, spec_id: str) -> None: ...  # the slot given back, once
    async def worktree(self, spec_id: str) -> Prepared: ...  # made ahead, else made now


async def attempt(drive: Drive, spec_id: str) -> None:
    """One attempt: worktree, agent, work collected; ``running`` once its worktree is.
    A stop before its agent starts calls it off (``lifecycle.call_off``)."""
    log, before = str(drive.settings.paths.log_file(spec_id)), drive.run.spec(spec_id)
    try:
        ready = await drive.worktree(spec_id)
    except Exception as exc:  # the fault boundary is the spec (issue 11)
        now, why = state.utcnow(), faults.spec_reason(exc, where=_where(drive, spec_id))
        drive.failed(
            lifecycle.fail_to_start(drive.run, drive.deps, spec_id, now=now, reason=why, log=log)
        )
        return
    if drive.stopping:  # made while the drive stopped: recorded, and never started
        _call_off(drive, spec_id, before, ready, log)
        return
    drive.apply(
        lifecycle.start(
            drive.run,
            spec_id,
            now=state.utcnow(),
            worktree=str(ready.path),
            branch=ready.branch,
            spec_dir=_spec_dir(ready),
            stage=ready.call.stage if ready.call else before.stage,
            log=log,
            agent_done=ready.call is None,
        )
    )
    agents: list[ports.Running] = []  # its agent, once started
    try:
        if ready.call is None:  # its agent finished in an earlier attempt: join its work
            drive.free_slot(spec_id)
            await _complete(drive, spec_id, ready.path, ready.spec_dir)
        else:
            await _run_agent(drive, spec_id, ready, ready.call, agents)
    except* SigningStopped:  # a second Ctrl-C while its work was being committed
        now, why = state.utcnow(), _signing_stopped(drive.run.run_id)
        drive.apply(lifecycle.interrupt(drive.run, spec_id, now=now, reason=why))
    except* Exception as group:  # anything of this spec's, however a nursery wrapped it,
        where = _where(drive, spec_id)  # and beside a stop's Cancelled
        _fail(drive, spec_id, faults.spec_reason(group, where=where))
    finally:
        # Still running after the attempt: cancelled, however the Cancelled came wrapped.
        if drive.run.spec(spec_id).status is SpecStatus.RUNNING and agents:
            drive.apply(lifecycle.interrupt(drive.run, spec_id, now=state.utcnow()))
        elif drive.run.spec(spec_id).status is SpecStatus.RUNNING:  # stopped in its setup
            _call_off(drive, spec_id, before, ready, log)


def _call_off(drive: Drive, spec_id: str, before: SpecState, ready: Prepared, log: str) -> None:
    """The drive stopped before the spec's agent started (``lifecycle.call_off``)."""
    drive.workspace.release(ready.path)  # its spec number's reservation: no agent used it
    made = {"worktree": str(ready.path), "branch": ready.branch, "log": log}
    drive.apply(
        lifecycle.call_off(drive.run, spec_id, before=before, spec_dir=_spec_dir(ready), **made)
    )


async def _run_agent(
    drive: Drive, spec_id: str, ready: Prepared, call: Invocation, started: list[ports.Running]
) -> None:
    """The spec's setup and agent, under its timeout and the watchdog; then how it ended."""
    settings = drive.settings
    keep, observe = settings.paths.kept_tasks(spec_id), partial(_observe, drive, spec_id)
    watcher = agent.Watcher(ready.path, ready.spec_dir, observe, keep)
    log = settings.paths.log_file(spec_id)
    timeout, grace = settings.timeouts.get(spec_id), settings.grace

    def news(idle: float | None) -> None:  # the watchdog's (unattended.stall_news)
        drive.apply(stall_news(drive.run, spec_id, idle=idle, now=state.utcnow()))

    dog = for_attempt(settings.stall_timeout, log, ready.path, watcher, news)
    try:
        with trio.move_on_after(timeout or float("inf")) as timer:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watcher.poll_tasks, settings.poll_interval)
                if dog is not None:
                    nursery.start_soon(dog.watch, nursery.cancel_scope)
                # the spec's timeout and the watchdog cover execution.setup too (issue 17)
                own = None if timeout or dog else SETUP_TIMEOUT
                await user_setup(drive.run, settings.dag, spec_id, ready, grace, limit=own)
                agent.write_header(log, drive.run.spec(spec_id).attempts, call, state.utcnow())
                try:
                    await drive.door(
                        call.argv,
                        cwd=ready.path,
                        env=ready.env,
                        log=log,
                        on_start=partial(_started, drive, spec_id, started),
                        on_line=watcher.line,
                        grace=grace,
                        on_exit=partial(_exited, drive, spec_id, started),
                    )
                except OSError as exc:  # after it started (the door says why one cannot start)
                    raise DagspecError(f"autospec was stopped: {faults.spec_reason(exc)}") from None
                nursery.cancel_scope.cancel()
    finally:  # however it ended: failed, timed out, stalled, interrupted (a stop's Cancelled)
        if not started or started[0].returncode != 0:  # (exit 0: ``_complete`` reads them)
            # The tasks it did since the last poll: read while it holds its slot (no spec
            # starts before its failure is applied, ``fail_fast``), before its end is.
            with trio.CancelScope(shield=True):
                await watcher.look()
        if started:  # its header was written: how it ended, under its output
            quiet = idle_text(dog.idle) if dog is not None and dog.ended else None
            how = _ending(drive, spec_id, ready, started[0].returncode, watcher, quiet)
            timed_out = agent.timeout_reason(timeout or 0.0) if timer.cancelled_caught else None
            agent.write_ending(log, drive.run.spec(spec_id).attempts, timed_out or how)
    code = started[0].returncode if started else None
    drive.groups.difference_update(p.pid for p in started)
    drive.workspace.release(ready.path)  # an empty directory or two: no git, no thread
    drive.collecting.discard(spec_id)  # until _complete: it may yet fail (a timeout)
    drive.free_slot(spec_id)  # if its agent failed, never started, or never said it ended
    now, where = state.utcnow(), "" if started else " (in execution.setup)"
    if timer.cancelled_caught:
        _fail(drive, spec_id, note_ended(log, agent.timeout_reason(timeout or 0.0), where), code)
    elif dog is not None and dog.ended:
        note_ended(log, f"no progress for {idle_text(dog.idle)}", where)
        stalled = end_stall(drive.run, drive.deps, spec_id, now=now, idle=dog.idle, where=where)
        drive.failed(stalled)
    elif code != 0 and (hit := _limit_at_end(log)) is not None:
        drive.failed(limit_hit(drive.run, drive.deps, spec_id, now=now, hit=hit))
    elif code != 0:
        stage = drive.run.spec(spec_id).stage
        why = agent.exit_reason(code or 0, stage, watcher.last_error, worktree=ready.path)
        _fail(drive, spec_id, why, code)
    else:
        drive.apply(lifecycle.agent_exited(drive.run, spec_id))  # a failed join resumes here
        await _complete(drive, spec_id, ready.path, watcher.spec_dir)


def _ending(
    drive: Drive,
    spec_id: str,
    ready: Prepared,
    code: int | None,
    watcher: agent.Watcher,
    stalled: str | None,
) -> str:
    """How an attempt whose agent started ended, for its log's last line (a timeout aside):
    ``no progress for 2 min``, ``autospec exited with 0``, ``interrupted (the run stopped):
    autospec was killed by SIGTERM``, or why it failed (``agent.exit_reason``)."""
    if stalled is not None:
        return f"no progress for {stalled}"
    if code == 0:
        return "autospec exited with 0"
    if drive.stopping or code is None:
        said = f": {agent.exit_reason(code, None, None)}" if code is not None else ""
        return ("interrupted (the run stopped)" if drive.stopping else "ended") + said
    stage = drive.run.spec(spec_id).stage
    return agent.exit_reason(code, stage, watcher.last_error, worktree=ready.path)


def _limit_at_end(log: Path) -> LimitHit | None:
    """The usage limit a failed agent's log ends with (``limits.limit_at_end``). Its table
    of messages (16 regular expressions, time zones) is loaded for a failure only: no run
    waits for it at its start (issue 16)."""
    from dagspec.limits import limit_at_end

    return limit_at_end(log, plain)


def _exited(drive: Drive, spec_id: str, started: list[ports.Running]) -> None:
    """The agent exited (the door's ``on_exit``): after exit 0 its slot is free at once, so
    the next spec need not wait for its group's end, its output's last bytes nor its
    commit, and it counts as collecting, so a slot held for its dependents stays held. A
    failure frees the slot once it is applied, so ``fail_fast`` stops before any start."""
    if started and started[0].returncode == 0:
        drive.collecting.add(spec_id)
        drive.free_slot(spec_id)


def _started(
    drive: Drive, spec_id: str, started: list[ports.Running], process: ports.Running
) -> None:
    started.append(process)
    drive.groups.add(process.pid)
    # Saved with the next change (one fsync less a spec, issue 16): a successor finds
    # an agent its killed driver left by its environment anyway.
    drive.run, _ = lifecycle.agent_started(drive.run, spec_id, pid=process.pid)


async def _complete(drive: Drive, spec_id: str, path: Path, seen: str | None) -> None:
    """Commit and join the work of the spec's agent (exited 0); ``seen``: the spec
    directory its output named."""
    drive.collecting.add(spec_id)
    try:
        with trio.CancelScope(shield=True):  # half-collected work would be worse than late
            try:
                spec_dir = await drive.workspace.collect(drive.run, spec_id, path, seen)
            except Exception:
                await _tasks_done(drive, spec_id, path, seen)  # a join that conflicted
                raise
            stats = await trio.to_thread.run_sync(agent.final_tasks, path, spec_dir)
    finally:
        drive.collecting.discard(spec_id)
    drive.apply(
        lifecycle.complete(
            drive.run,
            spec_id,
            now=state.utcnow(),
            spec_dir=f"specs/{spec_dir}" if spec_dir else None,
            tasks=(stats.done, stats.total) if stats else None,
        )
    )


async def _tasks_done(drive: Drive, spec_id: str, path: Path, seen: str | None) -> None:
    """The tasks of an agent that finished but whose work could not be committed or joined,
    recorded as ``_complete`` would have (the report and ``dag status`` show them): read in
    the spec directory its output named, else the one recorded."""
    recorded = drive.run.spec(spec_id).spec_dir
    name = seen or (recorded.removeprefix("specs/") if recorded else None)
    stats = await trio.to_thread.run_sync(agent.final_tasks, path, name)
    if stats is not None:
        _observe(drive, spec_id, tasks=(stats.done, stats.total))


def _observe(drive: Drive, spec_id: str, **facts: Any) -> None:  # the Watcher's facts
    drive.apply(lifecycle.observe(drive.run, spec_id, **facts))


def _fail(drive: Drive, spec_id: str, reason: str, code: int | None = None) -> None:
    now = state.utcnow()
    drive.failed(
        lifecycle.fail(drive.run, drive.deps, spec_id, now=now, reason=reason, exit_code=code)
    )


def _signing_stopped(run_id: str) -> str:
    """Why a spec whose commit a second Ctrl-C stopped is ``interrupted``, and what next."""
    return (
        "interrupted while its work was being committed: a second Ctrl-C stopped the signer; "
        f"the work is in its worktree, uncommitted: `dag resume {run_id}` commits it"
    )


def _where(drive: Drive, spec_id: str) -> str:
    """The spec, as a crash log names where a bug was met."""
    return f"spec '{spec_id}' of run {drive.run.run_id}"


def _spec_dir(ready: Prepared) -> str | None:
    """The spec directory to record for ``ready`` (``specs/<name>``)."""
    return f"specs/{ready.spec_dir}" if ready.spec_dir else None
