"""The async shell of a run: one nursery of specs, one capacity limiter, the lifecycle applied.

Every change to the run is ``apply(lifecycle.<transition>(...))``, which saves the state
atomically and reports each event; the policy is ``dagspec.lifecycle``'s and the start
order ``dagspec.priority``'s. Git and agents are reached through two ports
(``dagspec.ports``), faked in the policy tests. What this module adds is time and processes;
one spec's attempt is ``dagspec.spec_attempt``'s, which sees this drive as its ``Drive``:

    nursery
    ├── _watch_signals        SIGINT/SIGTERM/SIGHUP: stop starting specs, cancel the running ones
    └── _schedule             starts each ready spec when a slot is free
        └── _run_spec (each)  limiter → spec_attempt.attempt: worktree, setup.user_setup and
                              agent door (both under the timeout and watchdog) → slot freed
                              → collect; then any wait (``dagspec.waits``)

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
``interrupted`` by its attempt, and each whose agent had not started is called off, as it
was before with its worktree recorded (``lifecycle.call_off``); (4) the run is marked and
saved. A second signal SIGKILLs every agent group and stops every signing git
(``git_commit.stop_signers``): a spec whose work was being committed is ``interrupted``,
its work left uncommitted in its worktree for ``dag resume``.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from functools import partial

import trio

from dagspec import (
    agent,
    estimates,
    faults,
    git_commit,
    lifecycle,
    ports,
    procgroup,
    spec_attempt,
    state,
)
from dagspec.ahead import Ahead
from dagspec.attempt import Prepared
from dagspec.errors import DagspecError
from dagspec.lifecycle import Event, EventKind, RunState, SpecStatus, Transition
from dagspec.ports import Settings as Settings  # the drive's settings live with its ports
from dagspec.unattended import limit, wake
from dagspec.waits import Waits

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
        with git_commit.stoppable_signers():
            return await self._drive()

    async def _drive(self) -> RunState:
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
                        self.preparing += 1  # until its worktree is ready (``worktree``)
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
                    git_commit.stop_signers()  # a spec's work committed, waits no more
                else:
                    self.on_stopping(self.run, self.settings.grace, len(self.groups))
                self.interrupted = True
                self.stop()

    async def _end_survivors(self) -> None:
        """End the agents a killed driver left (``agent.end_survivors``) before anything."""
        if any(spec.attempts for spec in self.run.specs):  # else a new run: none can be alive
            await agent.end_survivors(self.run, self.settings.paths, self.settings.grace)
            self.apply(lifecycle.agents_gone(self.run))

    # one spec (its attempt: ``dagspec.spec_attempt``, to which this engine is a ``Drive``) --

    async def _run_spec(self, spec_id: str, *, attempt: bool = True) -> None:
        """One spec: an attempt holding its slot until its agent exits; then any wait."""
        try:
            if attempt:  # a wait comes after the agent: its slot is free
                await spec_attempt.attempt(self, spec_id)
            await self._wait_out(spec_id)
        finally:
            self.free_slot(spec_id)
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

    async def worktree(self, spec_id: str) -> Prepared:
        """The worktree of a spec holding a slot: made ahead, else made now. Raises what
        ``workspace.prepare`` raises."""
        try:
            ready = await self.ahead.take(spec_id) or await self._prepare(spec_id)
        finally:
            self.preparing -= 1
            self.wake.set()  # worktrees may be made ahead now
        self.last_number = max(self.last_number, ready.number)
        return ready

    def free_slot(self, spec_id: str) -> None:
        """Give the spec's slot back (once), and wake ``_schedule`` to fill it."""
        if spec_id in self.slots:
            self.slots.discard(spec_id)
            self.limiter.release_on_behalf_of(spec_id)
            self.wake.set()

    def failed(self, transition: Transition) -> None:
        """Apply an attempt's end; under ``fail_fast`` a failure (not a restart) stops."""
        self.apply(transition)
        if self.settings.fail_fast and any(e.kind is EventKind.FAILED for e in transition[1]):
            self.stop()
