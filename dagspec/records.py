"""The records of a run: statuses, the frozen run and spec records, options and events.

Pure values; every change to them is a transition of ``dagspec.lifecycle``, which is where
they are imported from.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs


class SpecStatus(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    BLOCKED = "blocked"
    INTERRUPTED = "interrupted"
    WAITING = "waiting"  # hit a usage limit: no agent, no slot, until ``waiting_until``


class RunStatus(enum.Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@attrs.frozen
class SpecState:
    """One spec of a run. The fields up to ``waiting_until`` are those of ``dag status
    --json`` (README, JSON), in order. A running spec with ``stalled_since`` set is shown as
    ``stalled`` (``shown_status``): it still holds its slot and may still recover."""

    id: str
    layer: str
    status: SpecStatus = SpecStatus.PENDING
    stage: str | None = None
    tasks_done: int | None = None
    tasks_total: int | None = None
    depends_on: tuple[str, ...] = ()
    blocked_by: tuple[str, ...] = ()
    worktree: str | None = None
    branch: str | None = None
    spec_dir: str | None = None
    attempts: int = 0
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    log: str | None = None
    merged: bool = False
    merge_commit: str | None = None
    stalled_since: datetime | None = None  # running, no progress seen since (issue 17)
    waiting_until: datetime | None = None  # waiting: when it starts again (UTC)
    # Not in the JSON: the agent's process group, so that a resume after the driver was
    # killed can stop an agent that outlived it before starting the spec again.
    agent_pid: int | None = None
    # Not in the JSON: attempts ended for a stall since the spec last (re)opened, and the
    # usage limits its attempts hit in a row (``dagspec.unattended``).
    stall_restarts: int = 0
    limit_hits: int = 0
    # Not in the JSON: the seconds of every attempt before the last (``agent_seconds``).
    earlier_seconds: float = 0.0
    # Not in the JSON: its agent exited 0 and its work is not joined yet (``agent_exited``):
    # an attempt that ends before the join (a conflict with the work joined before it, a
    # git fault, a killed driver) is taken up again at the join, without the agent.
    agent_done: bool = False
    # Not in the JSON: the merge commit the base branch lost since the spec was recorded
    # merged (a reset, a rebase aborted after the merge; ``record_dropped``). Its second
    # parent holds the spec's work, which ``dag merge`` merges again from there once the
    # spec's branch is deleted: the work is never findable only in a reflog.
    dropped_merge: str | None = None

    def attempt_seconds(self, now: datetime) -> float | None:
        """Seconds of the last attempt, from its start to its end (to ``now`` while it
        runs); None when it has no recorded start or end."""
        end = self.finished_at or (now if self.status is SpecStatus.RUNNING else None)
        if self.started_at is None or end is None:
            return None
        return max((end - self.started_at).total_seconds(), 0.0)

    def agent_seconds(self, now: datetime) -> float:
        """Seconds all its attempts ran: the earlier ones' and the last one's."""
        return self.earlier_seconds + (self.attempt_seconds(now) or 0.0)

    @property
    def shown_status(self) -> str:
        """The status to show: ``stalled`` for a running spec that made no progress for the
        stall timeout, else the status's name."""
        if self.status is SpecStatus.RUNNING and self.stalled_since is not None:
            return "stalled"
        return self.status.value


@attrs.frozen
class RunOptions:
    """The options a run was started with; ``resume`` reuses them unless overridden."""

    parallel: bool = False
    max_parallel: int = 4
    timeout: float | None = None  # seconds
    stall_timeout: float | None = None  # seconds; --stall-timeout, else execution.stall_timeout
    fail_fast: bool = False
    merge: bool = True
    keep_worktrees: bool = False
    autospec: str | None = None
    worktree_root: str | None = None
    notify: str | None = None  # --notify; else the DAG's execution.notify


@attrs.frozen
class RunState:
    """One run: where it merges to, how it was started, and every spec's record."""

    format: int
    run_id: str
    dag_file: str
    dag_name: str
    repo: str
    status: RunStatus
    base_branch: str
    base_commit: str
    started_at: datetime
    finished_at: datetime | None = None
    driver_pid: int | None = None
    options: RunOptions = RunOptions()
    specs: tuple[SpecState, ...] = ()
    autospec_version: str | None = None  # what `autospec --version` said
    autospec: str | None = None  # the executable it ran, absolute, however it was chosen

    def spec(self, spec_id: str) -> SpecState:
        """The spec ``spec_id``; ``KeyError`` when the run has none."""
        for spec in self.specs:
            if spec.id == spec_id:
                return spec
        raise KeyError(spec_id)

    def with_spec(self, spec: SpecState) -> RunState:
        """A new state with ``spec`` replacing the spec of the same id."""
        specs = tuple(spec if s.id == spec.id else s for s in self.specs)
        return attrs.evolve(self, specs=specs)

    def ids(self, *statuses: SpecStatus) -> list[str]:
        """The ids of the specs in one of ``statuses``, in declaration order."""
        return [s.id for s in self.specs if s.status in statuses]

    def counts(self) -> dict[str, int]:
        """How many specs are in each status (statuses with none are left out)."""
        result: dict[str, int] = {}
        for spec in self.specs:
            result[spec.status.value] = result.get(spec.status.value, 0) + 1
        return result


class EventKind(enum.StrEnum):
    STARTED = "started"
    STAGE = "stage"
    TASKS = "tasks"
    COMPLETED = "completed"
    FAILED = "failed"
    BLOCKED = "blocked"
    INTERRUPTED = "interrupted"
    CALLED_OFF = "called off"  # stopped before its agent started: as it was before the attempt
    STALLED = "stalled"  # detail: "no progress for 5m00s"
    RESTARTING = "restarting"  # ended for a stall, starting again; detail says why
    WAITING = "waiting"  # detail: "<agent> limit; until <time>"


@attrs.frozen
class Event:
    """Something a spec did, for the progress reporter: ``kind`` and a few words of detail."""

    spec_id: str
    kind: EventKind
    detail: str = ""
