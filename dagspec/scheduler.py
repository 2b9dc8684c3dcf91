"""The async shell of a run: one nursery of specs, one capacity limiter, the lifecycle applied.

Every change to the run is ``apply(lifecycle.<transition>(...))``, which saves the state
atomically and reports each event; the policy is ``dagspec.lifecycle``'s and the start
order ``dagspec.priority``'s. Git and agents are reached through two ports
(``dagspec.ports``), faked in the policy tests. What this module adds is time and processes:

    nursery
    ├── _watch_signals        SIGINT/SIGTERM/SIGHUP: stop starting specs, cancel the running ones
    └── _schedule             starts each ready spec when a slot is free
        └── _run_spec (each)  limiter → workspace.prepare → setup.user_setup, agent door
                              (both under the timeout and watchdog) → slot freed → collect

A slot is an agent's: it is taken before the spec's worktree is prepared and given back as
soon as the agent exits, so the next ready spec starts while this one's work is committed
and joined (issue 16). The spec stays ``running`` until then, and what depends on it waits
for that. While every slot is busy, the worktrees of the specs to start next are prepared
ahead (``dagspec.ahead``), so a freed slot need not wait for a ``git worktree add``. The
workspace serialises what must be serial itself (``dagspec.bookkeeping``): the drive holds
no lock around it.

The cancellation order, on SIGINT/SIGTERM/SIGHUP, a fault of the run itself (its state
cannot be saved) or a failure under ``fail_fast``: (1) no spec starts any more; (2) the
specs' nursery is cancelled, so each running agent's process group gets SIGTERM, then SIGKILL
after ``grace`` seconds, and is waited for; a worktree still waiting for its turn at git is
not made (``attempt.prepare``'s ``go_on``), the one being made is finished, an
``execution.copy`` ends within a chunk; (3) each spec whose agent was running is marked
``interrupted``, and each whose agent had not started is called off, as it was before with
its worktree recorded (``lifecycle.call_off``); (4) the run is marked and saved. A second
signal SIGKILLs every agent group.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import trio

from dagspec import agent, estimates, faults, lifecycle, ports, procgroup, state
from dagspec.ahead import Ahead
from dagspec.attempt import Prepared
from dagspec.autospec import Invocation, plain
from dagspec.errors import DagspecError
from dagspec.lifecycle import Event, EventKind, RunState, SpecState, SpecStatus, Transition
from dagspec.limits import limit_at_end
from dagspec.ports import Settings as Settings  # the drive's settings live with its ports
from dagspec.setup import SETUP_TIMEOUT, note_ended, user_setup
from dagspec.unattended import end_stall, idle_text, limit, limit_hit, stall_news, wake
from dagspec.waits import Waits
from dagspec.watchdog import for_attempt

Reporter = Callable[[RunState, Event], None]  # called after each saved change


async def drive(
    initial: RunState,
    settings: Settings,
    report: Reporter,
    *,
    workspace: ports.Workspace,
    door: ports.AgentDoor = agent.run_agent,
    on_stopping: ports.OnStopping = ports.ignore_stopping,
) -> RunState:
    """Run every pending spec of ``initial`` that becomes ready; return the final state.
    ``on_stopping`` hears of the first SIGINT/SIGTERM (the run, the grace period in
    seconds, how many agents are being stopped)."""
    engine = _Engine(initial, settings)
    engine.report, engine.workspace, engine.door = report, workspace, door
    engine.on_stopping = on_stopping
    return await engine.drive()


class _Engine:
    """One drive of a run. Only the trio thread changes ``run``; threads return values."""

    report: Reporter
    workspace: ports.Workspace
    door: ports.AgentDoor
    on_stopping: ports.OnStopping

    def __init__(self, initial: RunState, settings: Settings) -> None:
        self.run = initial
        self.deps = settings.dag.deps
        self.settings = settings
        self.limiter = trio.CapacityLimiter(limit(settings.max_parallel, initial))
        self.stopping = self.interrupted = False
        self.specs_scope = trio.CancelScope()
        self.in_flight = 0
        self.started: set[str] = set()  # specs of this drive not to start (again) now
        self.slots: set[str] = set()  # the specs holding a slot: their agents are not done
        self.collecting: set[str] = set()  # agents exited 0, work being committed and joined
        self.wake = trio.Event()
        self.groups: set[int] = set()
        self.last_number = 0  # the highest spec number given out
        self.fault: str | None = None  # why the run itself could not go on (issue 11)
        self.waits = Waits(settings.paths)
        # the next specs' worktrees, made while every slot is busy (``dagspec.ahead``)
        self.ahead = Ahead({s.id for s in initial.specs if not (s.attempts or s.worktree)})
        self.preparing = 0  # specs holding a slot whose worktree is not ready yet

    def apply(self, transition: Transition) -> None:
        """Take the transition's new state: save it, then report each of its events."""
        new, events = transition
        if new is not self.run:
            self.run = new
            self.limiter.total_tokens = limit(self.settings.max_parallel, new)
            if fault := faults.save(new, self.settings.paths.state_file):
                self.stop(fault)  # a fault of the run itself, not of a spec (issue 11)
        for event in events:
            self.report(new, event)

    # the run -----------------------------------------------------------------------------

    async def drive(self) -> RunState:
        self.apply(lifecycle.begin(self.run, self.deps, driver_pid=os.getpid()))
        await self._end_survivors()
        self.last_number = await self.workspace.highest_number(self.run)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_signals)
            nursery.start_soon(self.waits.listen)
            await self._schedule()
            with trio.CancelScope(shield=True):  # never started: nothing of an agent's in it
                for ready in self.ahead.leftovers():
                    with contextlib.suppress(DagspecError):  # else the next drive does it
                        await self.workspace.discard(self.run, ready)
            nursery.cancel_scope.cancel()
        if not self.stopping:
            self.apply(lifecycle.cascade(self.run, self.deps))
        stopped = self.interrupted or self.fault is not None
        self.apply(lifecycle.finish(self.run, now=state.utcnow(), interrupted=stopped))
        faults.raise_for_run(self.fault)
        return self.run

    async def _schedule(self) -> None:
        """Start ready specs one by one, critical path first, each when a slot is free: the
        spec is chosen once a slot is free (one just ended may have readied a longer chain),
        and the limiter taken on its behalf before it starts (trio starts tasks in no order).
        """
        with self.specs_scope:
            async with trio.open_nursery() as specs:
                for waiting in self.run.ids(SpecStatus.WAITING):  # a wait of an earlier drive
                    self.in_flight += 1
                    specs.start_soon(partial(self._run_spec, waiting, attempt=False))
                while True:
                    spec_id = None
                    if self.limiter.available_tokens > 0 and not self.stopping:
                        spec_id = self._next(self.started)
                    if spec_id is not None:
                        self.limiter.acquire_on_behalf_of_nowait(spec_id)
                        self.slots.add(spec_id)
                        self.started.add(spec_id)
                        self.in_flight += 1
                        self.preparing += 1  # until its worktree is ready (``_attempt``)
                        specs.start_soon(self._run_spec, spec_id)
                    elif self.in_flight == 0:
                        return
                    else:
                        self._prepare_ahead(specs)
                        self.wake = trio.Event()
                        await self.wake.wait()  # a spec ended, or a slot came free

    def _prepare_ahead(self, nursery: trio.Nursery) -> None:
        """While every slot is busy, make the next spec's worktree (``dagspec.ahead``): one
        at a time, after those of the specs holding a slot, at most one per slot."""
        busy = self.stopping or self.limiter.available_tokens or self.preparing
        if busy or self.ahead.making or len(self.ahead) >= self.limiter.total_tokens:
            return
        spec_id = self._next(self.started | self.ahead.ids)
        self.ahead.consider(nursery, spec_id, self._prepare, made=self.wake_up)

    def wake_up(self) -> None:
        self.wake.set()

    def _next(self, started: set[str]) -> str | None:
        """The ready spec to start now (``estimates.next_to_start``), or None."""
        history = self.settings.history
        return estimates.next_to_start(self.run, self.deps, started, self.collecting, history)

    async def _prepare(self, spec_id: str) -> Prepared:
        return await self.workspace.prepare(self.run, spec_id, self.last_number)

    def stop(self, fault: str | None = None) -> None:
        """No more starts; cancel every spec (the module docstring's cancellation order)."""
        self.fault, self.stopping = self.fault or fault, True
        self.waits.stop()  # a `dag retry` asking from now on is told the run is stopping
        self.specs_scope.cancel()

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
            async for _ in signals:
                if self.interrupted:
                    for pgid in self.groups:
                        procgroup.signal_group(pgid, signal.SIGKILL)
                else:
                    self.on_stopping(self.run, self.settings.grace, len(self.groups))
                self.interrupted = True
                self.stop()

    async def _end_survivors(self) -> None:
        """End the agents a killed driver left (``agent.end_survivors``) before anything."""
        if any(spec.attempts for spec in self.run.specs):  # else a new run: none can be alive
            await agent.end_survivors(self.run, self.settings.paths, self.settings.grace)
            self.apply(lifecycle.agents_gone(self.run))

    # one spec ----------------------------------------------------------------------------

    async def _run_spec(self, spec_id: str, *, attempt: bool = True) -> None:
        """One spec: an attempt holding its slot until its agent exits; then any wait."""
        try:
            if attempt:
                await self._attempt(spec_id)  # a wait comes after the agent: its slot is free
            await self._wait_out(spec_id)
        finally:
            self._free_slot(spec_id)
            self.in_flight -= 1
            self.wake.set()

    async def _wait_out(self, spec_id: str) -> None:
        """Wait out a spec's reset, or until ``dag retry`` asks (``dagspec.waits``)."""
        until = self.run.spec(spec_id).waiting_until
        if self.run.spec(spec_id).status is SpecStatus.WAITING and until is not None:
            early = await self.waits.sleep(spec_id, until, state.utcnow())
            self.apply(wake(self.run, spec_id, early=early))
        if self.run.spec(spec_id).status is SpecStatus.PENDING:
            self.started.discard(spec_id)

    def _free_slot(self, spec_id: str) -> None:
        """Give the spec's slot back (once), and wake ``_schedule`` to fill it."""
        if spec_id in self.slots:
            self.slots.discard(spec_id)
            self.limiter.release_on_behalf_of(spec_id)
            self.wake.set()

    async def _attempt(self, spec_id: str) -> None:
        """One attempt: worktree, agent, work collected; ``running`` once its worktree is.
        A stop before its agent starts calls it off (``lifecycle.call_off``)."""
        log, before = str(self.settings.paths.log_file(spec_id)), self.run.spec(spec_id)
        try:
            ready = await self.ahead.take(spec_id) or await self._prepare(spec_id)
        except Exception as exc:  # the fault boundary is the spec (issue 11)
            now, why = state.utcnow(), faults.spec_reason(exc)
            self._failed(
                lifecycle.fail_to_start(self.run, self.deps, spec_id, now=now, reason=why, log=log)
            )
            return
        finally:
            self.preparing -= 1
            self.wake.set()  # worktrees may be made ahead now
        self.last_number = max(self.last_number, ready.number)
        if self.stopping:  # made while the drive stopped: recorded, and never started
            self._call_off(spec_id, before, ready, log)
            return
        self.apply(
            lifecycle.start(
                self.run,
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
                self._free_slot(spec_id)
                await self._complete(spec_id, ready.path, ready.spec_dir)
            else:
                await self._run(spec_id, ready, ready.call, agents)
        except Exception as exc:  # anything of this spec's, however a nursery wrapped it
            self._fail(spec_id, faults.spec_reason(exc))
        finally:
            # Still running after the attempt: cancelled, however the Cancelled came wrapped.
            if self.run.spec(spec_id).status is SpecStatus.RUNNING and agents:
                self.apply(lifecycle.interrupt(self.run, spec_id, now=state.utcnow()))
            elif self.run.spec(spec_id).status is SpecStatus.RUNNING:  # stopped in its setup
                self._call_off(spec_id, before, ready, log)

    def _call_off(self, spec_id: str, before: SpecState, ready: Prepared, log: str) -> None:
        """The drive stopped before the spec's agent started (``lifecycle.call_off``)."""
        self.workspace.release(ready.path)  # its spec number's reservation: no agent used it
        made = {"worktree": str(ready.path), "branch": ready.branch, "log": log}
        self.apply(
            lifecycle.call_off(self.run, spec_id, before=before, spec_dir=_spec_dir(ready), **made)
        )

    async def _run(
        self, spec_id: str, ready: Prepared, call: Invocation, started: list[ports.Running]
    ) -> None:
        keep, observe = self.settings.paths.kept_tasks(spec_id), partial(self._observe, spec_id)
        watcher = agent.Watcher(ready.path, ready.spec_dir, observe, keep)
        log = self.settings.paths.log_file(spec_id)
        timeout, grace = self.settings.timeouts.get(spec_id), self.settings.grace

        def news(idle: float | None) -> None:  # the watchdog's (unattended.stall_news)
            self.apply(stall_news(self.run, spec_id, idle=idle, now=state.utcnow()))

        dog = for_attempt(self.settings.stall_timeout, log, ready.path, watcher, news)
        with trio.move_on_after(timeout or float("inf")) as timer:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watcher.poll_tasks, self.settings.poll_interval)
                if dog is not None:
                    nursery.start_soon(dog.watch, nursery.cancel_scope)
                # the spec's timeout and the watchdog cover execution.setup too (issue 17)
                own = None if timeout or dog else SETUP_TIMEOUT
                dag = self.settings.dag
                await user_setup(self.run, dag, spec_id, ready, grace, limit=own)
                agent.write_header(log, self.run.spec(spec_id).attempts, call, state.utcnow())
                try:
                    await self.door(
                        call.argv,
                        cwd=ready.path,
                        env=ready.env,
                        log=log,
                        on_start=partial(self._started, spec_id, started),
                        on_line=watcher.line,
                        grace=grace,
                    )
                except OSError as exc:
                    raise DagspecError(agent.start_failure(call.argv[0], exc)) from None
                nursery.cancel_scope.cancel()
        code = started[0].returncode if started else None
        self.groups.difference_update(p.pid for p in started)
        self.workspace.release(ready.path)  # an empty directory or two: no git, no thread
        self._free_slot(spec_id)  # the agent is gone: the next spec need not wait for its commit
        now, where = state.utcnow(), "" if started else " (in execution.setup)"
        if timer.cancelled_caught:
            self._fail(spec_id, note_ended(log, agent.timeout_reason(timeout or 0.0), where), code)
        elif dog is not None and dog.ended:
            note_ended(log, f"no progress for {idle_text(dog.idle)}", where)
            stalled = end_stall(self.run, self.deps, spec_id, now=now, idle=dog.idle, where=where)
            self._failed(stalled)
        elif code != 0 and (hit := limit_at_end(log, plain)) is not None:
            self._failed(limit_hit(self.run, self.deps, spec_id, now=now, hit=hit))
        elif code != 0:
            stage = self.run.spec(spec_id).stage
            why = agent.exit_reason(code or 0, stage, watcher.last_error, worktree=ready.path)
            self._fail(spec_id, why, code)
        else:
            self.apply(lifecycle.agent_exited(self.run, spec_id))  # a failed join resumes here
            await self._complete(spec_id, ready.path, watcher.spec_dir)

    def _started(self, spec_id: str, started: list[ports.Running], process: ports.Running) -> None:
        started.append(process)
        self.groups.add(process.pid)
        # Saved with the next change (one fsync less a spec, issue 16): a successor finds
        # an agent its killed driver left by its environment anyway.
        self.run, _ = lifecycle.agent_started(self.run, spec_id, pid=process.pid)

    async def _complete(self, spec_id: str, path: Path, seen: str | None) -> None:
        """Commit and join the work of the spec's agent (exited 0); ``seen``: the spec
        directory its output named."""
        self.collecting.add(spec_id)
        try:
            with trio.CancelScope(shield=True):  # half-collected work would be worse than late
                spec_dir = await self.workspace.collect(self.run, spec_id, path, seen)
                stats = await trio.to_thread.run_sync(agent.final_tasks, path, spec_dir)
        finally:
            self.collecting.discard(spec_id)
        self.apply(
            lifecycle.complete(
                self.run,
                spec_id,
                now=state.utcnow(),
                spec_dir=f"specs/{spec_dir}" if spec_dir else None,
                tasks=(stats.done, stats.total) if stats else None,
            )
        )

    def _observe(self, spec_id: str, **facts: Any) -> None:  # the Watcher's facts
        self.apply(lifecycle.observe(self.run, spec_id, **facts))

    def _fail(self, spec_id: str, reason: str, code: int | None = None) -> None:
        now = state.utcnow()
        self._failed(
            lifecycle.fail(self.run, self.deps, spec_id, now=now, reason=reason, exit_code=code)
        )

    def _failed(self, transition: Transition) -> None:
        """Apply an attempt's end; under ``fail_fast`` a failure (not a restart) stops."""
        self.apply(transition)
        if self.settings.fail_fast and any(e.kind is EventKind.FAILED for e in transition[1]):
            self.stop()


def _spec_dir(ready: Prepared) -> str | None:
    """The spec directory to record for ``ready`` (``specs/<name>``)."""
    return f"specs/{ready.spec_dir}" if ready.spec_dir else None
