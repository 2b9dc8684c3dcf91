"""A run left alone (issue 17): the stall and usage-limit transitions, table by table, then
the scheduler applying them with a scripted agent door and trio's autojump clock."""

from __future__ import annotations

import itertools
import json
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

from dagspec import (
    agent,
    autospec,
    lifecycle,
    limits,
    ports,
    scheduler,
    state,
    unattended,
    watchdog,
)
from dagspec.dagfile import load_dag
from dagspec.lifecycle import Event, EventKind, RunState, RunStatus, SpecState, SpecStatus
from dagspec.limits import PATTERNS, LimitHit, parse_limit
from dagspec.workspace import RunPaths
from tests import run_states
from tests.conftest import git
from tests.engine_support import dag_text
from tests.test_policy import FakeWorkspace, new_run, statuses

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DEPS = {"a": (), "b": ("a",)}
RATE = "API Error: 429 rate_limit_error"  # claude, no stated reset: the 60 s back-off
_PIDS = itertools.count(2**22 + 1)  # above Linux's pid_max: signalling these reaches nobody


def _run(**fields: object) -> RunState:
    run = RunState(
        format=1,
        run_id="r",
        dag_file="d.yaml",
        dag_name="d",
        repo="/r",
        status=RunStatus.RUNNING,
        base_branch="main",
        base_commit="0" * 40,
        started_at=NOW,
        specs=(SpecState("a", "L0"), SpecState("b", "L0", depends_on=("a",))),
    )
    a = attrs.evolve(run.spec("a"), status=SpecStatus.RUNNING, stage="plan", attempts=1)
    return run.with_spec(attrs.evolve(a, **fields))


# --- the transitions ----------------------------------------------------------------------------


def test_a_stall_shows_once_and_progress_clears_it() -> None:
    since = NOW - timedelta(minutes=5)
    run, events = unattended.stall(_run(), "a", since=since, now=NOW)
    assert run.spec("a").stalled_since == since
    assert run.spec("a").status is SpecStatus.RUNNING
    assert run.spec("a").shown_status == "stalled"
    assert events == (Event("a", EventKind.STALLED, "no progress for 5m00s"),)
    assert unattended.stall(run, "a", since=since, now=NOW) == (run, ())  # once
    moved, events = unattended.stall_news(run, "a", idle=None, now=NOW)
    assert moved.spec("a").stalled_since is None and events == ()
    assert moved.spec("a").shown_status == "running"
    assert unattended.unstall(moved, "a") == (moved, ())


def test_a_stall_of_a_spec_no_longer_running_changes_nothing() -> None:
    run = _run(status=SpecStatus.COMPLETED)
    assert unattended.stall(run, "a", since=NOW, now=NOW) == (run, ())


@pytest.mark.parametrize(
    ("restarts", "status", "kind", "reason"),
    [
        (0, SpecStatus.PENDING, EventKind.RESTARTING, "no progress for 10 min; starting at plan"),
        (1, SpecStatus.FAILED, EventKind.FAILED, "no progress for 10 min"),
    ],
)
def test_the_first_stall_restarts_the_spec_at_its_stage_and_the_second_fails_it(
    restarts: int, status: SpecStatus, kind: EventKind, reason: str
) -> None:
    run = _run(stall_restarts=restarts, stalled_since=NOW, limit_hits=2)
    run, events = unattended.end_stall(run, DEPS, "a", now=NOW, idle=600.0, exit_code=-15)
    spec = run.spec("a")
    assert (spec.status, spec.stalled_since, spec.exit_code) == (status, None, -15)
    assert events[0] == Event("a", kind, reason)
    assert spec.stage == "plan"  # where the restart starts
    if status is SpecStatus.FAILED:
        assert spec.error == reason
        assert run.spec("b").status is SpecStatus.BLOCKED  # the cascade
    else:
        assert (spec.stall_restarts, spec.limit_hits) == (1, 0)
        assert run.spec("b").status is SpecStatus.PENDING


@pytest.mark.parametrize(
    ("idle", "text"), [(2.0, "no progress for 2s"), (59.9, "no progress for 59s"), (601, "10 min")]
)
def test_the_reason_names_minutes_from_a_minute_on(idle: float, text: str) -> None:
    run, _ = unattended.end_stall(_run(stall_restarts=1), DEPS, "a", now=NOW, idle=idle)
    assert run.spec("a").error is not None and run.spec("a").error.endswith(text)


@pytest.mark.parametrize(
    ("hits", "hit", "until"),
    [
        (0, parse_limit(RATE, now=NOW), NOW + timedelta(seconds=60)),
        (2, parse_limit(RATE, now=NOW), NOW + timedelta(seconds=240)),  # doubled per repeat
        (
            0,
            parse_limit("You've hit your limit · resets 3pm (UTC)", now=NOW),
            datetime(2026, 11, 24, 15, 0, 30, tzinfo=UTC),  # the reset, and a margin
        ),
    ],
)
def test_a_limit_makes_the_spec_wait_until_the_reset_or_a_back_off(
    hits: int, hit: LimitHit | None, until: datetime
) -> None:
    assert hit is not None
    run, events = unattended.limit_hit(
        _run(limit_hits=hits), DEPS, "a", now=NOW, hit=hit, exit_code=1
    )
    spec = run.spec("a")
    assert (spec.status, spec.waiting_until, spec.limit_hits) == (
        SpecStatus.WAITING,
        until,
        hits + 1,
    )
    assert spec.error == f"claude limit: {hit.message}"
    when = until.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert events == (Event("a", EventKind.WAITING, f"hit a claude limit; until {when}"),)
    assert run.spec("b").status is SpecStatus.PENDING  # it waits; nothing is blocked
    assert unattended.note(spec) == f"until {until:%Y-%m-%d %H:%M}Z: {spec.error}"
    woken, _ = unattended.wake(run, "a")
    assert (woken.spec("a").status, woken.spec("a").waiting_until) == (SpecStatus.PENDING, None)
    assert woken.spec("a").stage == "plan"


def test_the_fifth_limit_in_a_row_fails_the_spec() -> None:
    hit = parse_limit(RATE, now=NOW)
    assert hit is not None and unattended.MAX_LIMIT_HITS == 5
    run, events = unattended.limit_hit(_run(limit_hits=4), DEPS, "a", now=NOW, hit=hit)
    assert run.spec("a").status is SpecStatus.FAILED
    assert run.spec("a").error == f"hit a claude usage limit 5 times in a row: {RATE}"
    assert [e.kind for e in events] == [EventKind.FAILED, EventKind.BLOCKED]


@pytest.mark.parametrize(("limit", "waiting", "expected"), [(4, 0, 4), (4, 1, 3), (2, 2, 1)])
def test_each_wait_lowers_the_parallel_limit_by_one_never_below_one(
    limit: int, waiting: int, expected: int
) -> None:
    run = _run(status=SpecStatus.WAITING if waiting else SpecStatus.PENDING)
    if waiting > 1:
        run = run.with_spec(attrs.evolve(run.spec("b"), status=SpecStatus.WAITING))
    assert unattended.limit(limit, run) == expected


def test_a_spec_stalled_when_its_driver_died_is_interrupted_not_stalled() -> None:
    run = _run(status=SpecStatus.RUNNING, stalled_since=NOW)
    settled = lifecycle.settle_stale(run, driver_alive=False)
    assert settled.spec("a").status is SpecStatus.INTERRUPTED
    assert settled.spec("a").stalled_since is None


def test_resume_keeps_a_wait_and_gives_failed_specs_a_fresh_budget() -> None:
    run = _run(status=SpecStatus.WAITING, waiting_until=NOW, limit_hits=2)
    run = run.with_spec(attrs.evolve(run.spec("b"), status=SpecStatus.FAILED, stall_restarts=1))
    again = lifecycle.prepare_resume(run, run.options)
    assert again.spec("a") == run.spec("a")
    assert (again.spec("b").status, again.spec("b").stall_restarts) == (SpecStatus.PENDING, 0)


def test_a_limit_counts_only_when_the_attempt_ended_on_it(tmp_path: Path) -> None:
    """Every pattern is found at the end of a log, terminal codes and all; the same words
    early in an attempt, before its real failure, are chatter (issue 17)."""
    log = tmp_path / "a.log"
    for pattern in PATTERNS:
        log.write_bytes(b"[Stage 4/4] implement...\n\x1b[31m" + pattern.example.encode() + b"\n")
        hit = limits.limit_at_end(log, autospec.plain, now=NOW)
        assert hit is not None and hit.pattern == pattern.name, pattern.name
    chatter = b"Implementing retry for API Error: 429 rate_limit_error responses\n"
    work = b"".join(f"wrote src/file{n}.py\n".encode() for n in range(limits.TAIL_LINES))
    log.write_bytes(chatter + work + b"Error: 3 of 10 tests failed\n")
    assert limits.limit_at_end(log, autospec.plain, now=NOW) is None


def test_an_earlier_attempt_s_limit_is_not_this_attempt_s(tmp_path: Path) -> None:
    """All attempts share a log: attempt 2 failing fast for its own reason, a few lines
    after attempt 1's limit message, failed; it is not waiting for that limit again."""
    log = tmp_path / "a.log"
    first = b"=== dagspec: attempt 1, 2026-11-30T10:00:00Z: autospec run -spti 'x'\n"
    second = b"=== dagspec: attempt 2, 2026-11-30T11:00:00Z: autospec run --plan 'x'\n"
    limit = PATTERNS[0].example.encode() + b"\n"
    log.write_bytes(first + limit + second + b"Error: go build ./... failed\n")
    assert limits.limit_at_end(log, autospec.plain, now=NOW) is None
    log.write_bytes(first + b"Error: first\n" + second + limit)
    assert limits.limit_at_end(log, autospec.plain, now=NOW) is not None


# --- progress, as the watchdog reads it -------------------------------------------------------


def test_progress_is_log_output_a_spec_file_or_a_commit(git_repo: Path) -> None:
    worktree = git_repo.parent / "wt"
    git(git_repo, "worktree", "add", "-q", "-b", "work", str(worktree))
    log = git_repo.parent / "a.log"
    log.write_text("header\n")
    (worktree / "specs" / "001-a").mkdir(parents=True)

    def stamp(spec_dir: str | None = "001-a") -> watchdog.Stamp:
        return watchdog.progress_stamp(log, worktree, spec_dir)

    steps: list[Callable[[], object]] = [
        lambda: log.write_text("header\noutput\n"),
        lambda: (worktree / "specs" / "001-a" / "tasks.yaml").write_text("tasks: []\n"),
        lambda: git(worktree, "commit", "-q", "--allow-empty", "-m", "work"),
    ]
    for step in steps:
        before = stamp()
        step()
        assert stamp() != before
    assert stamp() == stamp()
    before = stamp(None)
    (worktree / "specs" / "002-b").mkdir()  # specify made a directory
    assert stamp(None) != before


# --- the scheduler, with a scripted agent -------------------------------------------------------


@pytest.fixture(autouse=True)
def _wall_on_trio_clock(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a test on trio's mock clock, the wall clock (``state.utcnow``) runs with it: a
    wait's end is a wall-clock instant slept on trio's clock, so real seconds passing
    between the two readings (a loaded machine) shifted a wait by that much (180 s read
    179 s)."""
    if "autojump_clock" not in request.fixturenames:
        return
    clock = request.getfixturevalue("autojump_clock")
    start = state.utcnow()
    monkeypatch.setattr(state, "utcnow", lambda: start + timedelta(seconds=clock.current_time()))


@dataclass
class Attempt:
    """One attempt of the scripted agent: ``beats`` output lines ``beat`` seconds apart, then
    ``silent`` seconds of nothing, then ``lines`` and exit ``code``."""

    beats: int = 0
    beat: float = 30.0
    silent: float = 10.0
    lines: Sequence[str] = ()
    code: int = 0


@dataclass
class Scripted:
    """The agent door: each spec's attempts in turn (the last one repeats)."""

    plan: Mapping[str, Sequence[Attempt]] = field(default_factory=dict)
    spans: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

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
        spans = self.spans.setdefault(cwd.name, [])
        attempts = self.plan.get(cwd.name, [Attempt()])
        how = attempts[min(len(spans), len(attempts) - 1)]
        process = _Process(next(_PIDS))
        on_start(process)
        began = trio.current_time()
        try:
            for _ in range(how.beats):
                await trio.sleep(how.beat)
                with log.open("a") as out:
                    out.write("working\n")
            await trio.sleep(how.silent)
        except trio.Cancelled:
            process.returncode = -signal.SIGTERM
            raise
        finally:
            spans.append((began, trio.current_time()))
        with log.open("a") as out:  # as the real door does: every line goes to the log
            for line in how.lines:
                out.write(line + "\n")
                on_line(line.encode())
        process.returncode = how.code
        return how.code


@dataclass
class _Process:
    pid: int
    returncode: int | None = None


async def _drive(
    tmp_path: Path,
    features: Sequence[str | tuple[str, Sequence[str]]],
    agents: Scripted,
    events: list[Event],
    initial: RunState | None = None,
    extra: str = "",
    **settings: object,
) -> RunState:
    dag_file = tmp_path / "dag.yaml"
    dag_file.write_text(dag_text(*features, extra=extra))
    dag = load_dag(dag_file)
    options = {"max_parallel": 4, "poll_interval": 1e6, **settings}
    config = scheduler.Settings(paths=RunPaths(tmp_path, "r"), dag=dag, **options)  # type: ignore[arg-type]
    workspace = FakeWorkspace(tmp_path / "wt")
    workspace.root.mkdir(exist_ok=True)
    run = initial or new_run(tmp_path, dag.deps)
    report: scheduler.Reporter = lambda _, event: events.append(event)  # noqa: E731
    return await scheduler.drive(run, config, report, workspace=workspace, door=agents)


def _kinds(events: list[Event], spec_id: str) -> list[str]:
    return [e.kind.value for e in events if e.spec_id == spec_id and e.kind.value != "stage"]


async def test_a_silent_agent_is_stalled_then_restarted_once_then_failed(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    agents, events = Scripted({"a": [Attempt(silent=1e6)]}), []
    final = await _drive(tmp_path, ["a", ("b", ["a"]), "c"], agents, events, stall_timeout=60.0)
    assert statuses(final) == {"a": "failed", "b": "blocked", "c": "completed"}
    assert final.spec("a").error == "no progress for 2 min"
    assert final.spec("a").attempts == 2
    assert _kinds(events, "a") == [
        "started", "stalled", "restarting", "started", "stalled", "failed"
    ]  # fmt: skip
    # Shown stalled after one timeout, ended after two (checked every 15 s); restarted at once.
    assert [(round(s), round(e)) for s, e in agents.spans["a"]] == [(0, 120), (120, 240)]


async def test_an_agent_that_moves_again_is_no_longer_stalled(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    agents, events = Scripted({"a": [Attempt(beats=3, beat=90.0, silent=0)]}), []
    final = await _drive(tmp_path, ["a"], agents, events, stall_timeout=60.0)
    assert final.spec("a").status is SpecStatus.COMPLETED and final.spec("a").attempts == 1
    # Stalled in each pause of 90 s, and each time cleared by the next line of output (a
    # stall of a spec already stalled is no event).
    assert _kinds(events, "a") == ["started", "stalled", "stalled", "stalled", "completed"]
    assert final.spec("a").stalled_since is None


async def test_steady_output_never_stalls(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    agents, events = Scripted({"a": [Attempt(beats=20, beat=30.0, silent=0)]}), []
    final = await _drive(tmp_path, ["a"], agents, events, stall_timeout=60.0)
    assert final.status is RunStatus.COMPLETED
    assert _kinds(events, "a") == ["started", "completed"]


async def test_without_a_stall_timeout_a_silent_agent_runs_on(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    agents, events = Scripted({"a": [Attempt(silent=10_000)]}), []
    final = await _drive(tmp_path, ["a"], agents, events)
    assert final.status is RunStatus.COMPLETED
    assert _kinds(events, "a") == ["started", "completed"]


async def test_a_limit_waits_for_its_back_off_then_the_spec_starts_again(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    limited = Attempt(silent=1, lines=[RATE], code=1)
    agents, events = Scripted({"a": [limited, Attempt()]}), []
    final = await _drive(tmp_path, ["a", ("b", ["a"])], agents, events)
    assert statuses(final) == {"a": "completed", "b": "completed"}
    assert _kinds(events, "a") == ["started", "waiting", "started", "completed"]
    assert [round(s) for s, _ in agents.spans["a"]] == [0, 61]  # the 60 s back-off
    assert final.spec("a").attempts == 2 and final.spec("a").limit_hits == 0


async def test_a_failure_without_a_limit_message_is_a_failure(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    agents, events = Scripted({"a": [Attempt(lines=["Error: boom"], code=1)]}), []
    final = await _drive(tmp_path, ["a"], agents, events)
    assert final.spec("a").status is SpecStatus.FAILED
    assert "waiting" not in _kinds(events, "a")


async def test_repeated_limits_back_off_doubling_and_the_fifth_fails(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    agents, events = Scripted({"a": [Attempt(silent=0, lines=[RATE], code=1)]}), []
    final = await _drive(tmp_path, ["a"], agents, events)
    assert final.spec("a").status is SpecStatus.FAILED
    assert final.spec("a").error == f"hit a claude usage limit 5 times in a row: {RATE}"
    assert [round(s) for s, _ in agents.spans["a"]] == [0, 60, 180, 420, 900]


async def test_a_wait_lowers_the_parallel_limit_until_it_ends(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    limited = Attempt(silent=1, lines=[RATE], code=1)
    long = [Attempt(silent=100)]
    agents = Scripted({"a": [limited, Attempt(silent=100)], "b": long, "c": long, "d": long})
    final = await _drive(tmp_path, ["a", "b", "c", "d"], agents, [], max_parallel=3)
    assert final.status is RunStatus.COMPLETED
    # a waits from 1 to 61: two slots, both taken by b and c, so d does not start at 1.
    starts = sorted(round(s) for spans in agents.spans.values() for s, _ in spans)
    assert starts[:4] == [0, 0, 0, 61]
    # (the last, once b or c is collected: in a thread, so the clock may jump past 100)
    assert starts[4] >= 100


async def test_ctrl_c_during_a_wait_keeps_it_for_resume(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    autojump_clock.autojump_threshold = 5.0  # real seconds: the signal comes in far sooner
    reset = int(state.utcnow().timestamp()) + 6 * 3600  # in six hours: far beyond the test
    limited = Attempt(silent=0, lines=[f"Claude AI usage limit reached|{reset}"], code=1)
    agents, events = Scripted({"a": [limited, Attempt()]}), []
    waiting = trio.Event()

    async def interrupt_once_waiting() -> None:
        await waiting.wait()
        os.kill(os.getpid(), signal.SIGINT)

    class Watch(list[Event]):
        def append(self, event: Event) -> None:
            super().append(event)
            if event.kind is EventKind.WAITING:
                waiting.set()

    seen = Watch()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(interrupt_once_waiting)
        final = await _drive(tmp_path, ["a", ("b", ["a"])], agents, seen)
    assert final.status is RunStatus.INTERRUPTED
    assert statuses(final) == {"a": "waiting", "b": "pending"}
    until = final.spec("a").waiting_until
    assert until == datetime.fromtimestamp(reset + 30, UTC)
    assert state.load(RunPaths(tmp_path, "r")).spec("a").waiting_until == until
    # resume: still waiting, then at the reset it starts again, and b after it
    autojump_clock.autojump_threshold = 0.0
    again = lifecycle.prepare_resume(final, final.options)
    assert again.spec("a").status is SpecStatus.WAITING
    again = again.with_spec(attrs.evolve(again.spec("a"), waiting_until=state.utcnow()))
    final = await _drive(tmp_path, ["a", ("b", ["a"])], agents, events, initial=again)
    assert statuses(final) == {"a": "completed", "b": "completed"}
    assert len(agents.spans["a"]) == 2


# --- the DAG file, the command line, and what status shows ------------------------------------


@pytest.mark.parametrize(
    ("extra", "flags", "line"),
    [
        (
            "execution:\n  stall_timeout: 10m",
            (),
            "no progress for 10m00s is shown stalled; at 20m00s",
        ),
        ("execution:\n  stall_timeout: 10m", ("--stall-timeout", "1s"), "no progress for 1s is"),
        ("", ("--stall-timeout", "90s"), "no progress for 1m30s is shown stalled; at 3m00s"),
    ],
)
def test_dry_run_shows_the_stall_watchdog_and_the_flag_wins(
    runnable: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    extra: str,
    flags: tuple[str, ...],
    line: str,
) -> None:
    dag = runnable / "dag.yaml"
    dag.write_text(dag_text("a", extra=extra))
    assert run_cli("run", dag, "--dry-run", *flags) == 0
    out = capsys.readouterr().out
    assert f"stall watchdog: a spec with {line}" in out


def test_no_stall_timeout_no_watchdog_in_the_plan(
    runnable: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    dag = runnable / "dag.yaml"
    dag.write_text(dag_text("a"))
    assert run_cli("run", dag, "--dry-run") == 0
    assert "stall watchdog" not in capsys.readouterr().out


def test_a_stall_timeout_that_is_not_a_duration_is_refused_with_its_line(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    dag = git_repo / "dag.yaml"
    dag.write_text(dag_text("a", extra='execution:\n  stall_timeout: "soon"'))
    assert run_cli("validate", dag) == 1
    assert capsys.readouterr().err == (
        f"dag: error: {dag}:4: execution.stall_timeout is 'soon', not a duration: write it "
        "like 90s, 45m, 2h or 1h30m: whole numbers, each with its unit h, m or s, in that "
        "order, with no spaces\n"
    )


def test_status_shows_stalled_and_waiting_specs_and_when(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    stalled = run_states.spec(
        "a", SpecStatus.RUNNING, started_at=run_states.at(0), stalled_since=run_states.at(60)
    )
    waiting = run_states.spec(
        "b",
        SpecStatus.WAITING,
        waiting_until=datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
        error="claude limit: You've hit your limit",
    )
    run_states.save(run_states.run(git_repo, "r", stalled, waiting, status=RunStatus.RUNNING))
    assert run_cli("status", "r", "--json") == 0
    specs = json.loads(capsys.readouterr().out)["specs"]
    assert [(s["status"], s["stalled_since"], s["waiting_until"]) for s in specs] == [
        ("running", state.format_time(run_states.at(60)), None),
        ("waiting", None, "2026-11-24T15:00:00Z"),
    ]
    run_cli("status", "r")
    out = capsys.readouterr().out
    rows = out.splitlines()
    a_row = next(row for row in rows if row.startswith("a "))
    b_row = next(row for row in rows if row.startswith("b "))
    assert "stalled" in a_row
    assert f"no progress since {run_states.at(60):%H:%M:%S}Z" in a_row
    assert "waiting" in b_row  # its note ends the row, or is under it on a narrow terminal
    assert "until 2026-11-24 15:00Z: claude limit: You've hit your limit" in out


def test_retry_takes_a_waiting_spec_and_starts_it_at_its_stage() -> None:
    """No driver holds the run: ``retry`` reopens a waiting spec as it does a failed one."""
    from dagspec.commands.retry import check_retryable

    run = _run(status=SpecStatus.WAITING, waiting_until=NOW + timedelta(days=3), limit_hits=2)
    check_retryable(run, ["a"])  # no error
    again = lifecycle.prepare_retry(run, ["a"], run.options)
    a = again.spec("a")
    assert (a.status, a.stage, a.waiting_until, a.limit_hits) == (
        SpecStatus.PENDING,
        "plan",
        None,
        0,
    )


def test_status_says_how_to_start_a_waiting_spec_now(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    until = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)
    waiting = run_states.spec("a", SpecStatus.WAITING, waiting_until=until, stage="plan")
    run_states.save(run_states.run(git_repo, "r", waiting, status=RunStatus.INTERRUPTED))
    run_cli("status", "r")
    hints = [line for line in capsys.readouterr().out.splitlines() if line.startswith("hint:")]
    assert len(hints) == 1
    assert hints[0].startswith("hint: a waits for a usage limit until 2026-12-05 17:00Z: `")
    assert hints[0].endswith(" retry r a` starts it now")


def test_the_hint_names_every_waiting_spec_and_the_latest_reset() -> None:
    two = _run(status=SpecStatus.WAITING, waiting_until=NOW)
    b = attrs.evolve(two.spec("b"), status=SpecStatus.WAITING, waiting_until=NOW + timedelta(1))
    hint = unattended.early_start_hint(two.with_spec(b))
    assert hint == (
        "2 specs wait for a usage limit until 2026-11-25 12:00Z: `dag retry r a b` starts them now"
    )
    assert unattended.early_start_hint(_run()) is None


@pytest.mark.slow
async def test_a_request_from_retry_ends_a_wait_now(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """``dag retry`` of a spec its live driver holds waiting: a request file and SIGURG (sent
    here to this process, which is the driver), and the spec starts at once at its stage."""
    from dagspec import waits

    autojump_clock.autojump_threshold = 5.0  # real seconds: the signal comes far sooner
    reset = int(state.utcnow().timestamp()) + 3 * 86400  # in three days
    limited = Attempt(silent=0, lines=[f"Claude AI usage limit reached|{reset}"], code=1)
    agents = Scripted({"a": [limited, Attempt(silent=0)]})
    waiting = trio.Event()

    class Watch(list[Event]):
        def append(self, event: Event) -> None:
            super().append(event)
            if event.kind is EventKind.WAITING:
                waiting.set()

    async def retry_once_waiting() -> None:
        await waiting.wait()
        waits.request(RunPaths(tmp_path, "r"), ["a"], os.getpid())

    seen = Watch()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(retry_once_waiting)
        final = await _drive(tmp_path, ["a", ("b", ["a"])], agents, seen)
    assert statuses(final) == {"a": "completed", "b": "completed"}
    assert [s for s, _ in agents.spans["a"]][1] < 60  # not three days later
    restarted = [e.detail for e in seen if e.kind is EventKind.RESTARTING]
    assert restarted == ["asked by dag retry; starting at specify"]
    assert waits.requested(RunPaths(tmp_path, "r")) == []  # taken
