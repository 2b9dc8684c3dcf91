"""The scheduler's two ports, so that its policy can be tested without git or agents, and
its settings.

``Workspace``: worktrees and their work (``Threaded(attempt.GitWorkspace(...))`` for real).
``AgentDoor``: running one agent (``agent.run_agent`` for real).
``Settings``: what a drive needs that does not change during it (``scheduler.drive``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import attrs
import trio

from dagspec.attempt import Prepared
from dagspec.dagfile import Dag
from dagspec.lifecycle import RunState
from dagspec.workspace import RunPaths

GRACE = 10.0
"""Seconds between SIGTERM and SIGKILL when an agent's process group is ended."""


class Workspace(Protocol):
    """The worktree port: what a drive asks of git and the file system. The scheduler calls
    ``highest_number`` once, first, then ``prepare`` and ``collect`` for several specs at
    once (a spec's ``collect`` runs beside the next spec's ``prepare`` and agent): the
    workspace serialises what must be serial itself. Raising ``DagspecError`` fails the
    spec with its message. ``Threaded`` runs a synchronous one, such as
    ``attempt.GitWorkspace``, in worker threads."""

    async def highest_number(self, run: RunState) -> int: ...

    async def prepare(self, run: RunState, spec_id: str, floor: int) -> Prepared: ...

    async def collect(
        self, run: RunState, spec_id: str, path: Path, seen: str | None
    ) -> str | None: ...

    def release(self, path: Path) -> None: ...

    async def discard(self, run: RunState, ready: Prepared) -> None: ...


class SyncWorkspace(Protocol):
    """``Workspace`` with plain methods (``attempt.GitWorkspace``)."""

    def highest_number(self, run: RunState) -> int: ...

    def prepare(self, run: RunState, spec_id: str, floor: int) -> Prepared: ...

    def collect(self, run: RunState, spec_id: str, path: Path, seen: str | None) -> str | None: ...

    def release(self, path: Path) -> None: ...

    def discard(self, run: RunState, ready: Prepared) -> None: ...


@attrs.frozen
class Threaded:
    """A ``SyncWorkspace`` as a ``Workspace``: each call in a worker thread, off the loop."""

    inner: SyncWorkspace

    async def highest_number(self, run: RunState) -> int:
        return await trio.to_thread.run_sync(self.inner.highest_number, run)

    async def prepare(self, run: RunState, spec_id: str, floor: int) -> Prepared:
        return await trio.to_thread.run_sync(self.inner.prepare, run, spec_id, floor)

    async def collect(
        self, run: RunState, spec_id: str, path: Path, seen: str | None
    ) -> str | None:
        return await trio.to_thread.run_sync(self.inner.collect, run, spec_id, path, seen)

    def release(self, path: Path) -> None:
        self.inner.release(path)

    async def discard(self, run: RunState, ready: Prepared) -> None:
        await trio.to_thread.run_sync(self.inner.discard, run, ready)


class Running(Protocol):
    """What ``on_start`` gets: the agent's pid (its process group's id) and, once it has
    exited, its exit code (negative: killed by that signal). ``trio.Process`` is one."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...


class AgentDoor(Protocol):
    """The signature of ``run_agent``, which the scheduler takes as a parameter."""

    async def __call__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log: Path,
        on_start: Callable[[Running], None],
        on_line: Callable[[bytes], None],
        grace: float = GRACE,
        on_exit: Callable[[], None] = ...,
    ) -> int: ...


def nothing() -> None:
    """A callback that does nothing: the door's ``on_exit`` when no one listens."""


OnStopping = Callable[[RunState, float, int], None]
"""Told of the first SIGINT/SIGTERM: the run, the grace period (seconds), how many agents."""


def ignore_stopping(run: RunState, grace: float, agents: int) -> None:
    """The ``OnStopping`` of a drive that shows nothing."""


@attrs.frozen
class Settings:
    """Everything the scheduler needs that does not change during a drive."""

    paths: RunPaths
    dag: Dag
    max_parallel: int  # 1 when the run is sequential
    fail_fast: bool = False
    timeouts: Mapping[str, float | None] = attrs.field(factory=dict)  # seconds, per spec
    stall_timeout: float | None = None  # seconds without progress before a spec is stalled
    grace: float = GRACE  # seconds between SIGTERM and SIGKILL
    poll_interval: float = 1.0  # seconds between two looks at an agent's tasks.yaml
    # Seconds each spec id took in earlier runs (estimates.load_history), for the start order.
    history: Mapping[str, Sequence[float]] = attrs.field(factory=dict)
