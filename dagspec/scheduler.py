"""The async heart of a run: one nursery of specs, one capacity limiter, one door for agents.

The shape of ``drive()``::

    nursery
    ├── _watch_signals        SIGINT/SIGTERM: stop starting specs, cancel the running ones
    └── _schedule             starts each spec as it becomes ready, in the specs' nursery
        └── _run_spec (each)  limiter → worktree (git lock) → run_agent() → work collected

The ready rule: a spec starts when it is pending and every one of its dependencies has
completed (``graph.ready``). A pending spec downstream of a failed or interrupted spec that
will not run again in this drive is ``blocked``, ``blocked_by`` naming those specs; the block
cascades, and independent specs go on unless ``fail_fast``.

The cancellation order, on SIGINT/SIGTERM or on a failure under ``fail_fast``: (1) no spec
starts any more; (2) the specs' nursery is cancelled, so each running agent's process group
gets SIGTERM, then SIGKILL after ``grace`` seconds, and is waited for (``terminate_group``);
(3) each spec that was running is marked ``interrupted``; (4) the run is marked and saved.
A second signal sends SIGKILL to every agent group at once.

The state is saved atomically after every transition and progress change, and ``report``
hears of each. This is the only async module; git and files are reached through threads.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import attrs
import trio

from dagspec import attempt, autospec, graph, procgroup, render, state, worktree
from dagspec.errors import DagspecError
from dagspec.spec import Dag
from dagspec.state import RunState, RunStatus, SpecState, SpecStatus
from dagspec.workspace import RunPaths

T = TypeVar("T")
GRACE = 10.0  # seconds between SIGTERM and SIGKILL
_DRAIN = 2.0  # seconds to read what is left in the pipe once the agent's group is gone
_MAX_LINE = 64 * 1024  # the most of one output line kept for parsing (the log gets it all)
_DEAD = (SpecStatus.FAILED, SpecStatus.INTERRUPTED)


@attrs.frozen
class Event:
    """Something a spec did, for the progress reporter: ``kind`` and a few words of detail."""

    spec_id: str
    kind: str  # started, stage, tasks, completed, failed, blocked, interrupted
    detail: str = ""


Reporter = Callable[[RunState, Event], None]


@attrs.frozen
class Settings:
    """Everything the scheduler needs that does not change during a drive."""

    paths: RunPaths
    dag: Dag
    autospec: str  # the executable, resolved
    worktree_root: Path
    max_parallel: int  # 1 when the run is sequential
    fail_fast: bool = False
    timeouts: Mapping[str, float | None] = attrs.field(factory=dict)
    grace: float = GRACE
    poll_interval: float = 1.0


async def drive(initial: RunState, settings: Settings, report: Reporter) -> RunState:
    """Run every pending spec of ``initial`` that becomes ready; return the final state."""
    return await _Engine(initial, settings, report).drive()


# --- the one door for agent processes ----------------------------------------------------


async def run_agent(
    argv: Iterable[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    on_start: Callable[[trio.Process], None],
    on_line: Callable[[bytes], None],
    grace: float = GRACE,
) -> int:
    """Run one agent in its own session; stream its output to ``log``; return its exit code.

    stdout and stderr go to ``log`` as bytes, in the order written, holding nothing in memory
    but one chunk and the start of one line; ``on_line`` gets each complete line that may be
    a banner (``autospec.INTERESTING``). stdin is /dev/null: an agent can never read the
    terminal. Cancelled, it terminates the whole process group (``terminate_group``) and
    waits for it. Once the agent exits, what is left of its group is ended too, so nothing
    outlives it. A negative result is death by that signal. ``on_start`` gets the process
    as soon as it runs (its pid is its group's id; after a cancellation, its
    ``returncode`` says how it ended).
    """
    reading = trio.CancelScope(shield=True)
    with _one_exception():
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    list(argv),
                    cwd=cwd,
                    env=dict(env),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    check=False,
                    deliver_cancel=partial(terminate_group, grace=grace),
                )
            )
            on_start(process)
            nursery.start_soon(_end_the_rest, process, reading, grace)
            assert process.stdout is not None
            with reading:
                await _copy_output(process.stdout, log, on_line)
    assert process.returncode is not None
    return process.returncode


@contextlib.contextmanager
def _one_exception() -> Iterator[None]:
    """Unwrap a group holding one exception, so callers of ``run_agent`` see that exception
    (e.g. the ``OSError`` of an executable that cannot be started), not a nursery's group."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def _copy_output(
    stream: trio.abc.ReceiveStream, log: Path, on_line: Callable[[bytes], None]
) -> None:
    carry = b""
    with log.open("ab") as sink:
        async for chunk in stream:
            sink.write(chunk)
            sink.flush()  # `dag logs -f` follows the file
            data = carry + chunk
            end = data.rfind(b"\n") + 1
            for match in autospec.INTERESTING.finditer(data, 0, end):
                on_line(match[0])
            carry = data[end:][:_MAX_LINE]
    if autospec.INTERESTING.match(carry):
        on_line(carry)


async def _end_the_rest(process: trio.Process, reading: trio.CancelScope, grace: float) -> None:
    """Once the agent has exited, end what is left of its group, then stop reading soon.

    A child that shares the agent's stdout keeps the pipe open: without this the reader
    would wait for an end of file that never comes.
    """
    with trio.CancelScope(shield=True):
        await process.wait()
        await end_group(process.pid, grace)
    reading.deadline = trio.current_time() + _DRAIN


async def terminate_group(process: trio.Process, *, grace: float = GRACE) -> None:
    """SIGTERM the agent's whole process group, then SIGKILL it after ``grace`` seconds.

    This is ``trio.run_process``'s ``deliver_cancel``: trio runs it shielded and stops it
    as soon as the agent itself has exited; ``_end_the_rest`` then ends the rest.
    """
    procgroup.signal_group(process.pid, signal.SIGTERM)
    await trio.sleep(grace)
    procgroup.signal_group(process.pid, signal.SIGKILL)


async def end_group(pgid: int, grace: float, *, marker: str | None = None) -> None:
    """SIGTERM what lives in group ``pgid`` (with ``marker`` in its environment), wait up to
    ``grace`` seconds for it to go, then SIGKILL."""
    if not procgroup.members(pgid, marker=marker):
        return
    procgroup.signal_group(pgid, signal.SIGTERM)
    with trio.move_on_after(grace):
        while procgroup.members(pgid):  # noqa: ASYNC110 (a process group has no event)
            await trio.sleep(0.02)
    procgroup.signal_group(pgid, signal.SIGKILL)


# --- the engine ---------------------------------------------------------------------------


class _Engine:
    """One drive of a run: the current state, saved and reported on every change.

    Only the trio thread changes ``state``; work done in threads returns values.
    """

    def __init__(self, initial: RunState, settings: Settings, report: Reporter) -> None:
        self.state = initial
        self.settings = settings
        self.report = report
        self.limiter = trio.CapacityLimiter(settings.max_parallel)
        self.git_lock = trio.Lock()
        self.stopping = False
        self.interrupted = False
        self.specs_scope = trio.CancelScope()
        self.in_flight = 0
        self.wake = trio.Event()
        self.groups: set[int] = set()
        self.last_number = 0  # the highest spec number given out (attempt.highest_number)

    def change(self, spec_id: str, event: Event | None = None, **fields: Any) -> None:
        self.state = self.state.with_spec(attrs.evolve(self.state.spec(spec_id), **fields))
        state.save(self.state, self.settings.paths.state_file)
        if event is not None:
            self.report(self.state, event)

    # the run -----------------------------------------------------------------------------

    async def drive(self) -> RunState:
        self.state = attrs.evolve(
            self.state, status=RunStatus.RUNNING, driver_pid=os.getpid(), finished_at=None
        )
        state.save(self.state, self.settings.paths.state_file)
        self._cascade()
        await self._end_survivors()
        self.last_number = await self._git(attempt.highest_number, self.state)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_signals)
            await self._schedule()
            nursery.cancel_scope.cancel()
        return self._finish()

    def _finish(self) -> RunState:
        if not self.stopping:
            self._cascade()
        statuses = {s.status for s in self.state.specs}
        if self.interrupted:
            status = RunStatus.INTERRUPTED
        elif statuses <= {SpecStatus.COMPLETED}:
            status = RunStatus.COMPLETED
        else:
            status = RunStatus.FAILED
        self.state = attrs.evolve(self.state, status=status, finished_at=state.utcnow())
        state.save(self.state, self.settings.paths.state_file)
        return self.state

    async def _schedule(self) -> None:
        """Start ready specs one by one, in declaration order, each when a slot is free.

        The loop takes the limiter on the spec's behalf before starting it (trio runs new
        tasks in no set order, so tasks taking it themselves would start in any order).
        """
        started: set[str] = set()
        with self.specs_scope:
            async with trio.open_nursery() as specs:
                while True:
                    ready = [] if self.stopping else self._ready(started)
                    if ready:
                        await self.limiter.acquire_on_behalf_of(ready[0])
                        started.add(ready[0])
                        self.in_flight += 1
                        specs.start_soon(self._run_spec, ready[0])
                    elif self.in_flight == 0:
                        return
                    else:
                        self.wake = trio.Event()
                        await self.wake.wait()

    def _ready(self, started: set[str]) -> list[str]:
        pending = {s.id for s in self.state.specs if s.status is SpecStatus.PENDING} - started
        completed = {s.id for s in self.state.specs if s.status is SpecStatus.COMPLETED}
        return graph.ready(self.settings.dag.deps, pending, completed)

    def stop(self) -> None:
        """No more starts; cancel every spec (the module docstring's cancellation order)."""
        self.stopping = True
        self.specs_scope.cancel()

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if self.interrupted:
                    for pgid in self.groups:
                        procgroup.signal_group(pgid, signal.SIGKILL)
                else:
                    self._announce_stopping()
                self.interrupted = True
                self.stop()

    def _announce_stopping(self) -> None:
        """Tell a reporter that listens for it that the run is stopping (issue 14): how long
        it waits, for how many agents, before SIGKILL."""
        stopping = getattr(self.report, "stopping", None)
        if stopping is not None:
            stopping(self.state, self.settings.grace, len(self.groups))

    def _cascade(self) -> None:
        """Block each pending spec downstream of a failed or interrupted one."""
        for spec in self.state.specs:
            causes = self._root_causes(spec.id)
            if spec.status is SpecStatus.PENDING and causes:
                self.change(
                    spec.id,
                    Event(spec.id, "blocked", ", ".join(causes)),
                    status=SpecStatus.BLOCKED,
                    blocked_by=causes,
                )

    def _root_causes(self, spec_id: str) -> tuple[str, ...]:
        upstream = graph.upstream(self.settings.dag.deps, spec_id)
        return tuple(s.id for s in self.state.specs if s.id in upstream and s.status in _DEAD)

    # one spec ----------------------------------------------------------------------------

    async def _run_spec(self, spec_id: str) -> None:
        """One spec, holding the slot ``_schedule`` took for it."""
        try:
            await self._attempt(spec_id)
        finally:
            self.limiter.release_on_behalf_of(spec_id)
            self.in_flight -= 1
            self.wake.set()

    async def _attempt(self, spec_id: str) -> None:
        """One attempt at a spec: its worktree, its agent, its work collected.

        The spec becomes ``running`` once its worktree is ready, in the same save that
        records the worktree and branch (saves rewrite the whole file: fewer is faster).
        """
        spec = self.state.spec(spec_id)
        started: dict[str, Any] = {
            "attempts": spec.attempts + 1,
            "started_at": state.utcnow(),
            "finished_at": None,
            "exit_code": None,
            "error": None,
            "blocked_by": (),
            "log": str(self.settings.paths.log_file(spec_id)),
        }
        try:
            ready = await self._git(self._prepare, spec)
            self.last_number = max(self.last_number, ready.number)
            self.change(
                spec_id,
                Event(spec_id, "started", f"attempt {started['attempts']}"),
                status=SpecStatus.RUNNING,
                worktree=str(ready.path),
                branch=ready.branch,
                spec_dir=f"specs/{ready.spec_dir}" if ready.spec_dir else None,
                stage=ready.call.stage,
                **started,
            )
            await self._run(spec_id, ready)
        except DagspecError as exc:
            self._fail(spec_id, str(exc), **started)
        finally:
            # Still running after the attempt: it was cancelled (however the Cancelled came
            # wrapped), or a bug cut it short. Either way it did not finish.
            if self.state.spec(spec_id).status is SpecStatus.RUNNING:
                self.change(
                    spec_id,
                    Event(spec_id, "interrupted"),
                    status=SpecStatus.INTERRUPTED,
                    error="interrupted",
                    finished_at=state.utcnow(),
                    agent_pid=None,
                )

    async def _git(self, fn: Callable[..., T], *args: object) -> T:
        """Every git call of a drive goes through here: one at a time, off the event loop
        (concurrent ``git worktree add`` in one repository contend for the same locks)."""
        async with self.git_lock:
            return await trio.to_thread.run_sync(partial(fn, *args))

    async def _end_survivors(self) -> None:
        """End the agents that an earlier, killed driver left running, before anything else
        happens in their worktrees (or takes a spec number they are about to use). An agent
        is known by its spec's ``AUTOSPEC_STATE_DIR`` in its environment, whether or not the
        driver lived long enough to record its pid."""
        agents = procgroup.groups_by_variable("AUTOSPEC_STATE_DIR")
        async with trio.open_nursery() as nursery:
            for spec in self.state.specs:
                state_dir = str(self.settings.paths.autospec_state_dir(spec.id))
                groups = set(agents.get(state_dir, ()))
                marker = f"AUTOSPEC_STATE_DIR={state_dir}"
                if spec.agent_pid is not None:
                    groups.add(spec.agent_pid)
                    self.change(spec.id, agent_pid=None)
                for pgid in groups:
                    nursery.start_soon(partial(end_group, pgid, self.settings.grace, marker=marker))

    def _prepare(self, spec: SpecState) -> attempt.Prepared:
        """(in a thread) ``attempt.prepare`` with this drive's settings."""
        return attempt.prepare(
            self.state,
            spec,
            dag=self.settings.dag,
            executable=self.settings.autospec,
            root=self.settings.worktree_root,
            floor=self.last_number,
        )

    async def _run(self, spec_id: str, ready: attempt.Prepared) -> None:
        watcher = _Watcher(self, spec_id, ready.path, ready.spec_dir)
        log = self.settings.paths.log_file(spec_id)
        _write_header(log, self.state.spec(spec_id).attempts, ready.call)
        timeout = self.settings.timeouts.get(spec_id)
        started: list[trio.Process] = []
        with trio.move_on_after(math.inf if timeout is None else timeout) as timer:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watcher.poll_tasks)
                try:
                    await run_agent(
                        ready.call.argv,
                        cwd=ready.path,
                        env=attempt.agent_env(self.settings.paths, spec_id, ready.call),
                        log=log,
                        on_start=partial(self._started, spec_id, started),
                        on_line=watcher.line,
                        grace=self.settings.grace,
                    )
                except OSError as exc:
                    raise DagspecError(f"cannot start {ready.call.argv[0]}: {exc}") from None
                nursery.cancel_scope.cancel()
        code = started[0].returncode if started else None
        self.groups.discard(self.state.spec(spec_id).agent_pid or 0)
        worktree.release_number(ready.path)  # an empty directory or two: no git, no thread
        if timer.cancelled_caught:
            reason = f"timed out after {render.format_duration(timeout or 0)}"
            self._fail(spec_id, reason, exit_code=code, agent_pid=None)
        elif code != 0:
            reason = _exit_reason(code or 0, self.state.spec(spec_id).stage, watcher)
            self._fail(spec_id, reason, exit_code=code, agent_pid=None)
        else:
            await self._complete(spec_id, ready.path, watcher)

    def _started(self, spec_id: str, started: list[trio.Process], process: trio.Process) -> None:
        started.append(process)
        self.groups.add(process.pid)
        self.change(spec_id, agent_pid=process.pid)

    async def _complete(self, spec_id: str, path: Path, watcher: _Watcher) -> None:
        with trio.CancelScope(shield=True):  # half-collected work would be worse than late
            spec = self.state.spec(spec_id)
            spec_dir = await self._git(attempt.collect, self.state, spec, path, watcher.spec_dir)
        stats = watcher.final_stats(spec_dir)
        spec = self.state.spec(spec_id)
        self.change(
            spec_id,
            Event(spec_id, "completed"),
            status=SpecStatus.COMPLETED,
            stage=None,
            exit_code=0,
            agent_pid=None,
            finished_at=state.utcnow(),
            spec_dir=f"specs/{spec_dir}" if spec_dir else None,
            tasks_done=stats.done if stats else spec.tasks_done,
            tasks_total=stats.total if stats else spec.tasks_total,
        )

    def _fail(self, spec_id: str, reason: str, **fields: Any) -> None:
        self.change(
            spec_id,
            Event(spec_id, "failed", reason),
            **{
                **fields,
                "status": SpecStatus.FAILED,
                "error": reason,
                "finished_at": state.utcnow(),
            },
        )
        self._cascade()
        if self.settings.fail_fast:
            self.stop()


class _Watcher:
    """Follows one agent: its banners (stage, spec directory, errors) and its tasks.yaml."""

    def __init__(self, engine: _Engine, spec_id: str, path: Path, spec_dir: str | None) -> None:
        self.engine = engine
        self.spec_id = spec_id
        self.path = path
        self.spec_dir = spec_dir
        self.last_error: str | None = None
        self._seen: tuple[int, int] | None = None

    def line(self, raw: bytes) -> None:
        banner = autospec.parse_banner(autospec.plain(raw))
        if isinstance(banner, autospec.StageSeen):
            event = Event(self.spec_id, "stage", banner.stage)
            self.engine.change(self.spec_id, event, stage=banner.stage)
        elif isinstance(banner, autospec.SpecDirSeen) and banner.name != self.spec_dir:
            self.spec_dir = banner.name
            self.engine.change(self.spec_id, spec_dir=f"specs/{banner.name}")
        elif isinstance(banner, autospec.ErrorSeen):
            self.last_error = banner.text

    async def poll_tasks(self) -> None:
        """Re-read tasks.yaml whenever it changes; report when the counts change."""
        while True:
            await trio.sleep(self.engine.settings.poll_interval)
            stats = await self._read_when_changed()
            spec = self.engine.state.spec(self.spec_id)
            if stats is None or (stats.done, stats.total) == (spec.tasks_done, spec.tasks_total):
                continue
            event = Event(self.spec_id, "tasks", f"{stats.done}/{stats.total}")
            self.engine.change(self.spec_id, event, tasks_done=stats.done, tasks_total=stats.total)

    async def _read_when_changed(self) -> autospec.TaskStats | None:
        """The counts, when the file changed since the last good read. autospec rewrites it
        non-atomically, so a read that cannot be trusted is retried a moment later."""
        tasks = self._tasks_file(self.spec_dir)
        try:
            info = tasks.stat() if tasks is not None else None
        except FileNotFoundError:
            return None
        if tasks is None or info is None or (info.st_mtime_ns, info.st_size) == self._seen:
            return None
        for _ in range(3):
            stats = autospec.parse_tasks(tasks.read_text(encoding="utf-8", errors="replace"))
            if stats is not None:
                self._seen = (info.st_mtime_ns, info.st_size)
                return stats
            await trio.sleep(0.05)
        return None

    def final_stats(self, spec_dir: str | None) -> autospec.TaskStats | None:
        """The counts once the agent is gone: the file is whole, and taken as it is."""
        tasks = self._tasks_file(spec_dir)
        if tasks is None or not tasks.is_file():
            return None
        text = tasks.read_text(encoding="utf-8", errors="replace")
        return autospec.parse_tasks(text, strict=False)

    def _tasks_file(self, spec_dir: str | None) -> Path | None:
        return self.path / "specs" / spec_dir / "tasks.yaml" if spec_dir else None


def _write_header(log: Path, number: int, call: autospec.Invocation) -> None:
    """Each attempt's output starts with a line saying which attempt and what it ran."""
    log.parent.mkdir(parents=True, exist_ok=True)
    when = state.format_time(state.utcnow())
    with log.open("a", encoding="utf-8") as file:
        file.write(f"=== dagspec: attempt {number}, {when}: {call.shell()}\n")


def _exit_reason(code: int, stage: str | None, watcher: _Watcher) -> str:
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
    text = f"autospec {how}" + (f" during {stage}" if stage else "")
    return text + (f": {watcher.last_error}" if watcher.last_error else "")
