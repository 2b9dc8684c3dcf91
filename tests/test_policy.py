"""The scheduling policy, without git or agents: a fake workspace, a fake agent door, trio's
autojump clock. Ordering, capacity, cascades, fail-fast, timeouts, interrupts and restarts,
each in milliseconds; the end-to-end suite runs the same engine through real git."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

from dagspec import agent, autospec, lifecycle, ports, scheduler, state
from dagspec.attempt import Prepared
from dagspec.dagfile import load_dag
from dagspec.errors import DagspecError
from dagspec.lifecycle import Event, RunState, RunStatus, SpecState, SpecStatus
from dagspec.workspace import RunPaths
from tests.engine_support import dag_text

_PIDS = itertools.count(2**22 + 1)  # above Linux's pid_max: signalling these reaches nobody


@dataclass
class Behaviour:
    """What the fake agent does for one spec: stages it announces, then sleeps, then exits."""

    seconds: float = 10.0
    code: int = 0
    stages: Sequence[str] = ("specify", "plan", "tasks", "implement")
    error: str | None = None


@dataclass
class _Process:
    pid: int
    returncode: int | None = None


@dataclass
class FakeAgents:
    """The agent door: each call is one spec (the worktree's name), logged with its times."""

    plan: Mapping[str, Behaviour] = field(default_factory=dict)
    spans: dict[str, list[float]] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    most_at_once: int = 0
    all_started: trio.Event = field(default_factory=trio.Event)
    expect: int = 0

    async def __call__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log: Path,
        on_start: Callable[[ports.Running], None],
        on_line: Callable[[bytes], None],
        grace: float = agent.GRACE,
        on_exit: Callable[[], None] = ports.nothing,
    ) -> int:
        spec_id, how = cwd.name, self.plan.get(cwd.name, Behaviour())
        process = _Process(next(_PIDS))
        on_start(process)
        self.spans[spec_id] = [trio.current_time()]
        self.running.add(spec_id)
        self.most_at_once = max(self.most_at_once, len(self.running))
        if len(self.spans) == self.expect:
            self.all_started.set()
        try:
            for number, stage in enumerate(how.stages, start=1):
                on_line(f"[Stage {number}/4] {stage}...".encode())
            if how.error:
                on_line(f"Error: {how.error}".encode())
            await trio.sleep(how.seconds)
        except trio.Cancelled:
            process.returncode = -signal.SIGTERM
            raise
        finally:
            self.running.discard(spec_id)
            self.spans[spec_id].append(trio.current_time())
        process.returncode = how.code
        return how.code


@dataclass
class FakeWorkspace:
    """The worktree port: a directory per spec, no git; ``broken`` specs cannot be prepared."""

    root: Path
    broken: Mapping[str, str] = field(default_factory=dict)
    commit_gate: trio.Event | None = None  # when given, committing a spec's work waits for it
    prepare_seconds: float = 0.0  # how long making a worktree takes
    slower: Mapping[str, float] = field(default_factory=dict)  # seconds more, for these specs
    prepared: dict[str, float] = field(default_factory=dict)  # when each was made ready
    discarded: list[str] = field(default_factory=list)  # made ahead and never started

    async def highest_number(self, run: RunState) -> int:
        return 0

    async def prepare(self, run: RunState, spec_id: str, floor: int) -> Prepared:
        with trio.CancelScope(shield=True):  # git in a thread: a stop waits for it
            await trio.sleep(self.prepare_seconds + self.slower.get(spec_id, 0.0))
        self.prepared[spec_id] = trio.current_time()
        if spec_id in self.broken:
            raise DagspecError(self.broken[spec_id])
        path = self.root / spec_id
        path.mkdir(exist_ok=True)
        call = autospec.Invocation(("autospec", "run", "-spti"), {}, "specify")
        return Prepared(path, f"dag/r/{spec_id}", call, {}, None, 0)

    async def collect(
        self, run: RunState, spec_id: str, path: Path, seen: str | None
    ) -> str | None:
        if self.commit_gate is not None:
            with trio.move_on_after(1000):  # a gate never opened shows as 1000 s of waiting
                await self.commit_gate.wait()
        return None

    def release(self, path: Path) -> None:
        pass

    async def discard(self, run: RunState, ready: Prepared) -> None:
        self.discarded.append(ready.path.name)


@dataclass
class Drive:
    """One drive of a DAG with the fakes; ``events`` as reported."""

    tmp_path: Path
    features: Sequence[str | tuple[str, Sequence[str]]]
    agents: FakeAgents = field(default_factory=FakeAgents)
    broken: Mapping[str, str] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    commit_gate: trio.Event | None = None
    prepare_seconds: float = 0.0
    slower: Mapping[str, float] = field(default_factory=dict)
    workspace: FakeWorkspace | None = None  # the last drive's

    async def __call__(self, initial: RunState | None = None, **settings: object) -> RunState:
        dag_file = self.tmp_path / "dag.yaml"
        dag_file.write_text(dag_text(*self.features))
        dag = load_dag(dag_file)
        run = initial or new_run(self.tmp_path, dag.deps)
        options = {"max_parallel": 4, "poll_interval": 1e6, **settings}
        config = scheduler.Settings(paths=RunPaths(self.tmp_path, "r"), dag=dag, **options)  # type: ignore[arg-type]
        workspace = FakeWorkspace(
            self.tmp_path / "wt", self.broken, self.commit_gate, self.prepare_seconds, self.slower
        )
        self.workspace = workspace
        workspace.root.mkdir(exist_ok=True)
        report: scheduler.Reporter = lambda _, event: self.events.append(event)  # noqa: E731
        return await scheduler.drive(run, config, report, workspace=workspace, door=self.agents)

    def kinds(self, spec_id: str) -> list[str]:
        return [e.kind.value for e in self.events if e.spec_id == spec_id]


def new_run(tmp_path: Path, deps: Mapping[str, Sequence[str]]) -> RunState:
    return RunState(
        format=state.FORMAT,
        run_id="r",
        dag_file="dag.yaml",
        dag_name="t",
        repo=str(tmp_path),
        status=RunStatus.RUNNING,
        base_branch="main",
        base_commit="0" * 40,
        started_at=state.utcnow(),
        specs=tuple(SpecState(id=s, layer="L0", depends_on=tuple(d)) for s, d in deps.items()),
    )


def statuses(run: RunState) -> dict[str, str]:
    return {s.id: s.status.value for s in run.specs}


# --- ordering and capacity -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("features", "limit", "starts"),
    [
        (["a", "b", "c"], 1, {"a": 0, "b": 10, "c": 20}),
        (["a", "b", "c"], 2, {"a": 0, "b": 0, "c": 10}),
        (["a", ("b", ["a"]), ("c", ["a"])], 4, {"a": 0, "b": 10, "c": 10}),
        (["a", "b", ("c", ["a", "b"]), ("d", ["c"])], 4, {"a": 0, "b": 0, "c": 10, "d": 20}),
    ],
)
async def test_specs_start_when_ready_and_a_slot_is_free(
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
    features: list[str | tuple[str, list[str]]],
    limit: int,
    starts: dict[str, float],
) -> None:
    drive = Drive(tmp_path, features)
    final = await drive(max_parallel=limit)
    assert final.status is RunStatus.COMPLETED
    assert {s: round(span[0]) for s, span in drive.agents.spans.items()} == starts
    assert drive.agents.most_at_once <= limit
    assert drive.kinds("a") == ["started", "stage", "stage", "stage", "stage", "completed"]


async def test_ready_specs_start_in_declaration_order(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    drive = Drive(tmp_path, ["c", "a", "b"])
    await drive(max_parallel=1)
    assert sorted(drive.agents.spans, key=lambda s: drive.agents.spans[s][0]) == ["c", "a", "b"]


async def test_a_slot_is_free_when_its_agent_exits_not_once_its_work_is_committed(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """One slot, two independent specs, and committing a's work takes until b's agent has
    started (issue 16): b starts the moment a's agent exits; a completes after that."""
    agents = FakeAgents(expect=2)
    drive = Drive(tmp_path, ["a", "b"], agents, commit_gate=agents.all_started)
    final = await drive(max_parallel=1)
    assert final.status is RunStatus.COMPLETED
    assert agents.spans == {"a": [0.0, 10.0], "b": [10.0, 20.0]}
    assert agents.most_at_once == 1
    kinds = [(e.spec_id, e.kind.value) for e in drive.events if e.kind.value != "stage"]
    assert kinds.index(("b", "started")) < kinds.index(("a", "completed"))


async def test_a_spec_whose_dependency_is_being_committed_waits_for_it_when_it_is_the_best(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The freed slot is not given to a shorter chain while the longest one's next spec
    waits only for its dependency's commit (``priority.next_to_start``): x, ready from the
    start, would take the slot a's agent freed before b is ready."""
    drive = Drive(tmp_path, ["x", "a", ("b", ["a"]), ("c", ["b"])])
    await drive(max_parallel=1)
    order = sorted(drive.agents.spans, key=lambda s: drive.agents.spans[s][0])
    assert order == ["a", "b", "x", "c"]  # c and x tie: declaration order


async def test_the_next_worktree_is_made_while_every_slot_is_busy(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Issue 16: with one slot, b's worktree is made while a holds the slot (once a's own
    is ready, from 3 to 6 s: they would share git's serial lock), so b's agent starts the
    moment a's exits, not 3 s later; c's is made once b has taken its worktree."""
    drive = Drive(tmp_path, ["a", "b", "c"], prepare_seconds=3.0)
    final = await drive(max_parallel=1)
    assert final.status is RunStatus.COMPLETED
    assert {s: span[0] for s, span in drive.agents.spans.items()} == {
        "a": 3.0,
        "b": 13.0,
        "c": 23.0,
    }
    assert drive.workspace is not None
    assert drive.workspace.prepared == {"a": 3.0, "b": 6.0, "c": 16.0}


async def test_agents_ending_together_all_start_their_successors_at_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """With two slots, the worktrees of the next two specs are made ahead (one at a time,
    after the slot holders' own), so when a and b end together c and d start at once."""
    drive = Drive(tmp_path, ["a", "b", "c", "d", "e", "f"], prepare_seconds=1.0)
    await drive(max_parallel=2)
    starts = {s: span[0] for s, span in drive.agents.spans.items()}
    assert starts == {"a": 1.0, "b": 1.0, "c": 11.0, "d": 11.0, "e": 21.0, "f": 21.0}
    assert drive.workspace is not None
    assert drive.workspace.prepared == {
        "a": 1.0,
        "b": 1.0,
        "c": 2.0,
        "d": 3.0,
        "e": 12.0,
        "f": 13.0,
    }


async def test_a_worktree_made_ahead_for_a_spec_that_never_starts_leaves_it_pending(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """a fails under fail-fast while b's worktree is made ahead: b never starts, nothing of
    it is recorded, and its worktree is discarded as the drive ends."""
    agents = FakeAgents(plan={"a": Behaviour(code=1)})
    drive = Drive(tmp_path, ["a", "b"], agents, prepare_seconds=1.0)
    final = await drive(max_parallel=1, fail_fast=True)
    assert list(agents.spans) == ["a"]
    assert drive.workspace is not None and "b" in drive.workspace.prepared
    assert drive.workspace.discarded == ["b"]
    b = final.spec("b")
    assert (b.status.value, b.worktree, b.branch, b.attempts) == ("pending", None, None, 0)


async def test_a_worktree_made_ahead_that_a_stop_caught_being_taken_is_discarded(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """a's slot frees at 1.2 s and takes c, whose worktree is made ahead until 2 s; x fails
    at 1.5 s under fail-fast, cancelling that wait. c's worktree, made after all, is
    discarded with the others: it was forgotten, left on disk with nothing recording it."""
    agents = FakeAgents(plan={"a": Behaviour(seconds=0.2), "x": Behaviour(code=1, seconds=0.5)})
    drive = Drive(tmp_path, ["a", "x", "c", "d"], agents, prepare_seconds=1.0)
    final = await drive(max_parallel=2, fail_fast=True)
    assert statuses(final) == {"a": "completed", "x": "failed", "c": "pending", "d": "pending"}
    assert drive.workspace is not None and drive.workspace.discarded == ["c"]


@pytest.mark.parametrize("earlier", [False, True], ids=["new", "resumed"])
async def test_a_worktree_a_stop_caught_being_made_for_its_slot_is_recorded_never_started(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, earlier: bool
) -> None:
    """x's worktree cannot be made (at 1 s), which stops the run under fail-fast while a's is
    made for its slot (until 3 s). a's, made after all, is recorded, but a is neither started
    nor interrupted: it is as it was before (pending, its earlier attempt and stage kept)."""
    drive = Drive(tmp_path, ["x", "a"], broken={"x": "no room"}, prepare_seconds=1.0)
    drive.slower = {"a": 2.0}
    run = new_run(tmp_path, {"x": (), "a": ()})
    if earlier:  # interrupted at plan by an earlier drive, then resumed
        a = attrs.evolve(run.spec("a"), attempts=1, stage="plan", earlier_seconds=5.0)
        run = lifecycle.prepare_resume(run.with_spec(a), run.options)
    before = run.spec("a")
    final = await drive(run, max_parallel=2, fail_fast=True)
    assert statuses(final) == {"x": "failed", "a": "pending"}
    assert drive.workspace is not None and drive.workspace.prepared["a"] == 3.0
    worktree, log = str(tmp_path / "wt" / "a"), str(RunPaths(tmp_path, "r").log_file("a"))
    assert final.spec("a") == attrs.evolve(before, worktree=worktree, branch="dag/r/a", log=log)
    assert drive.kinds("a") == [] and drive.agents.spans == {}
    assert drive.workspace.discarded == []  # recorded: nothing of it is forgotten on disk


async def test_a_failure_to_make_a_worktree_ahead_is_the_spec_s_when_it_starts(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    drive = Drive(tmp_path, ["a", "b"], broken={"b": "no room"}, prepare_seconds=1.0)
    final = await drive(max_parallel=1)
    assert statuses(final) == {"a": "completed", "b": "failed"}
    assert "no room" in (final.spec("b").error or "")


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "reason", "code"),
    [
        (Behaviour(code=1, stages=("specify", "plan")), "autospec exited with 1 during plan", 1),
        (
            Behaviour(code=1, stages=("specify",), error="boom"),
            "autospec exited with 1 during specify: Error: boom",
            1,
        ),
        (Behaviour(code=-9, stages=()), "autospec was killed by SIGKILL during specify", -9),
        (Behaviour(seconds=4000), "timed out after 30m00s", -signal.SIGTERM),
    ],
)
async def test_a_failure_is_the_specs_and_cascades_to_what_depends_on_it(
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
    how: Behaviour,
    reason: str,
    code: int,
) -> None:
    drive = Drive(tmp_path, ["a", ("b", ["a"]), ("c", ["b"]), "d"], FakeAgents({"a": how}))
    final = await drive(timeouts={"a": 1800.0})
    assert statuses(final) == {"a": "failed", "b": "blocked", "c": "blocked", "d": "completed"}
    assert final.spec("a").error == reason
    assert final.spec("a").exit_code == code
    assert final.spec("b").blocked_by == final.spec("c").blocked_by == ("a",)
    assert final.status is RunStatus.FAILED
    assert Event("a", lifecycle.EventKind.FAILED, reason) in drive.events
    assert drive.kinds("c") == ["blocked"]
    assert state.load(RunPaths(tmp_path, "r")) == final  # every change was saved


async def test_a_worktree_that_cannot_be_prepared_fails_only_its_spec(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    drive = Drive(tmp_path, ["a", ("b", ["a"]), "c"], broken={"a": "wt-a is taken"})
    final = await drive()
    assert statuses(final) == {"a": "failed", "b": "blocked", "c": "completed"}
    assert final.spec("a").error == "wt-a is taken"
    assert final.spec("a").attempts == 1
    assert "a" not in drive.agents.spans


async def test_fail_fast_interrupts_the_others_and_starts_nothing_more(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    agents = FakeAgents({"a": Behaviour(seconds=1, code=1), "b": Behaviour(seconds=100)})
    drive = Drive(tmp_path, ["a", "b", "c"], agents)
    final = await drive(max_parallel=2, fail_fast=True)
    assert statuses(final) == {"a": "failed", "b": "interrupted", "c": "pending"}
    assert final.status is RunStatus.FAILED
    assert agents.spans["b"][1] == pytest.approx(1)  # ended at once, not after 100 s
    assert "c" not in agents.spans


async def test_sigint_interrupts_running_specs_and_leaves_pending_ones(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    autojump_clock.autojump_threshold = 5.0  # real seconds: the signal comes in far sooner
    agents = FakeAgents(expect=2)
    drive = Drive(tmp_path, ["a", "b", ("c", ["a"])], agents)
    async with trio.open_nursery() as nursery:

        async def interrupt_once_both_run() -> None:
            await agents.all_started.wait()
            os.kill(os.getpid(), signal.SIGINT)

        nursery.start_soon(interrupt_once_both_run)
        final = await drive(max_parallel=2)
    assert statuses(final) == {"a": "interrupted", "b": "interrupted", "c": "pending"}
    assert final.status is RunStatus.INTERRUPTED
    assert all(span[1] < 10 for span in agents.spans.values())


# --- restarts --------------------------------------------------------------------------------


async def test_a_resumed_run_restarts_what_did_not_finish_and_nothing_else(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    first = Drive(tmp_path, ["a", ("b", ["a"]), "c"], FakeAgents({"a": Behaviour(code=1)}))
    failed = await first()
    assert statuses(failed) == {"a": "failed", "b": "blocked", "c": "completed"}
    again = lifecycle.prepare_resume(failed, failed.options)
    assert statuses(again) == {"a": "pending", "b": "pending", "c": "completed"}
    second = Drive(tmp_path, first.features)
    final = await second(again)
    assert final.status is RunStatus.COMPLETED
    assert set(second.agents.spans) == {"a", "b"}
    assert final.spec("a").attempts == 2 and final.spec("c").attempts == 1


@pytest.mark.parametrize("left", ["interrupted", "running"])  # running: its driver was killed
@pytest.mark.parametrize(
    ("again", "status"),
    [(Behaviour(), RunStatus.INTERRUPTED), (Behaviour(code=1), RunStatus.FAILED)],
)
async def test_a_retry_that_leaves_a_spec_interrupted_ends_interrupted_unless_one_failed(
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
    left: str,
    again: Behaviour,
    status: RunStatus,
) -> None:
    """A run is failed only when a spec is: b, interrupted (by a signal, or by its driver's
    death) and not retried, and c behind it make the run interrupted, for ``resume``."""
    features = ["a", "b", ("c", ["b"])]
    first = Drive(tmp_path, features, FakeAgents({"a": Behaviour(code=1)}))
    recorded = await first()
    b = attrs.evolve(recorded.spec("b"), status=SpecStatus(left))
    c = attrs.evolve(recorded.spec("c"), status=SpecStatus.PENDING)
    recorded = recorded.with_spec(b).with_spec(c)
    retried = lifecycle.prepare_retry(recorded, ["a"], recorded.options)
    final = await Drive(tmp_path, features, FakeAgents({"a": again}))(retried)
    assert statuses(final)["b"] == "interrupted"
    assert final.spec("c").blocked_by == ("b",)
    assert final.status is status


@pytest.mark.parametrize(
    ("history", "order"),
    [
        ({}, ["a", "b", "x1", "x2", "c"]),  # equal weights: the longest chain first
        (
            {"x2": [1000.0], "a": [1.0], "b": [1.0], "c": [1.0], "x1": [1.0]},
            ["x2", "a", "b", "x1", "c"],
        ),
    ],
)
async def test_the_spec_with_the_most_work_behind_it_starts_first(
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
    history: dict[str, list[float]],
    order: list[str],
) -> None:
    drive = Drive(tmp_path, ["x1", "x2", "a", ("b", ["a"]), ("c", ["b"])])
    await drive(max_parallel=1, history=history)
    assert sorted(drive.agents.spans, key=lambda s: drive.agents.spans[s][0]) == order


async def test_a_retry_reblocks_what_still_waits_for_another_failed_spec(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    fails = {"a": Behaviour(code=1), "x": Behaviour(seconds=20, code=1)}  # a fails first
    first = Drive(tmp_path, ["a", "x", ("b", ["a"]), ("c", ["a", "x"])], FakeAgents(fails))
    failed = await first()
    assert failed.spec("c").blocked_by == ("a", "x")  # x, failing later, is named too
    again = lifecycle.prepare_retry(failed, ["a"], failed.options)
    second = Drive(tmp_path, first.features, FakeAgents({"x": Behaviour(code=1)}))
    final = await second(again)
    assert statuses(final) == {"a": "completed", "x": "failed", "b": "completed", "c": "blocked"}
    assert final.spec("c").blocked_by == ("x",)
    assert set(second.agents.spans) == {"a", "b"}  # x was not retried, c never started
