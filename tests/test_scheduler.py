"""The scheduler's door for agents and its timing, with real processes (trio, autojump clock)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

from dagspec import agent, ports, scheduler, state
from dagspec.attempt import GitWorkspace
from dagspec.dagfile import load_dag
from dagspec.lifecycle import Event, RunState, RunStatus, SpecState
from dagspec.workspace import RunPaths
from tests.engine_support import Project, dag_text, group_alive, pid_alive

pytest_plugins = ("tests.engine_fixtures",)

WRITER = """
import os, sys
out = sys.stdout.buffer
out.write(b"[Stage 1/4] specify...\\n")
for i in range(20000):
    out.write(b"line %d \\x1b[1mbold\\x1b[0m \\xff\\xfe " % i + b"x" * 400 + b"\\n")
out.write(b"Error: executing stage plan: nope\\n")
sys.stderr.write("on stderr\\n")
out.write(b"Spec: specs/004-user-auth/\\n")
out.write(b"no newline at the end")
"""


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


async def run(argv: list[str], tmp_path: Path, lines: list[bytes], **kw: float) -> int:
    pids: list[int] = []
    code = await agent.run_agent(
        argv,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        log=tmp_path / "agent.log",
        on_start=lambda process: pids.append(process.pid),
        on_line=lines.append,
        **kw,
    )
    assert len(pids) == 1
    return code


@pytest.mark.slow
async def test_every_byte_reaches_the_log_and_banners_reach_the_parser(tmp_path: Path) -> None:
    lines: list[bytes] = []
    assert await run(python(WRITER), tmp_path, lines) == 0
    log = (tmp_path / "agent.log").read_bytes()
    assert log.count(b"\n") == 20004
    assert len(log) > 8_000_000
    assert log.endswith(b"no newline at the end")
    assert b"on stderr\n" in log
    assert lines == [
        b"[Stage 1/4] specify...",
        b"Error: executing stage plan: nope",
        b"Spec: specs/004-user-auth/",
    ]


async def test_the_exit_code_and_death_by_signal(tmp_path: Path) -> None:
    assert await run(python("raise SystemExit(3)"), tmp_path, []) == 3
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    assert await run(python(code), tmp_path, []) == -9


async def test_stdin_is_empty_and_the_agent_has_its_own_session(tmp_path: Path) -> None:
    code = "import os, sys; print(repr(sys.stdin.read()), os.getsid(0) == os.getpid())"
    assert await run(python(code), tmp_path, []) == 0
    assert (tmp_path / "agent.log").read_text() == "'' True\n"


async def test_a_child_holding_the_pipe_is_ended_when_the_agent_exits(tmp_path: Path) -> None:
    code = "import subprocess; print(subprocess.Popen(['sleep', '1000']).pid, flush=True)"
    with trio.fail_after(20):
        assert await run(python(code), tmp_path, []) == 0
    child = int((tmp_path / "agent.log").read_text())
    assert not pid_alive(child)


async def test_cancelling_terms_then_kills_the_whole_group(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    code = (
        "import signal, subprocess, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen(['sleep', '1000'])\n"
        "print('Error: ready', flush=True)\n"
        "time.sleep(1000)\n"
    )
    processes: list[trio.Process] = []
    with trio.CancelScope() as scope:
        await agent.run_agent(
            python(code),
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin"},
            log=tmp_path / "agent.log",
            on_start=processes.append,
            on_line=lambda _: scope.cancel(),  # cancel once it is up, its child too
        )
    cancelled_at = trio.current_time()
    assert processes[0].returncode == -9  # SIGTERM was ignored
    assert group_alive(processes[0].pid) == []
    assert cancelled_at >= agent.GRACE


# --- a drive ------------------------------------------------------------------------------


async def drive(
    project: Project, initial: RunState, settings: scheduler.Settings, report: scheduler.Reporter
) -> RunState:
    where = (settings.paths, settings.dag, str(project.fake.path), project.repo.parent)
    go_on = trio.from_thread.check_cancelled  # as the drive's is
    workspace = ports.Threaded(GitWorkspace(*where, go_on=go_on))
    return await scheduler.drive(initial, settings, report, workspace=workspace)


def drive_settings(project: Project, **kw: object) -> tuple[RunState, scheduler.Settings]:
    dag_file = project.write_dag(dag_text("a", "b"))
    dag = load_dag(dag_file)
    commit = project.repo.joinpath(".git", "refs", "heads", "main").read_text().strip()
    initial = RunState(
        format=state.FORMAT,
        run_id="r",
        dag_file="dag.yaml",
        dag_name="t",
        repo=str(project.repo),
        status=RunStatus.RUNNING,
        base_branch="main",
        base_commit=commit,
        started_at=state.utcnow(),
        specs=tuple(SpecState(id=f, layer="L0") for f in ("a", "b")),
    )
    settings = scheduler.Settings(
        paths=RunPaths(project.repo, "r"),
        dag=dag,
        max_parallel=2,
        **kw,  # type: ignore[arg-type]
    )
    return initial, settings


@pytest.mark.slow
async def test_a_timeout_fails_the_spec_and_kills_its_group(
    project: Project, autojump_clock: trio.testing.MockClock
) -> None:
    autojump_clock.autojump_threshold = 1.0  # a real second idle: the agent hangs by then
    project.fake.control([{"match": "^Build a$", "HANG_AT": "plan", "CHILD": "inherit"}])
    initial, settings = drive_settings(project, timeouts={"a": 1800.0}, poll_interval=1e6)
    events: list[Event] = []
    final = await drive(project, initial, settings, lambda _, e: events.append(e))
    assert final.status is RunStatus.FAILED
    assert final.spec("a").error == "timed out after 30m00s"
    assert final.spec("b").status.value == "completed"
    groups = [r["pgid"] for r in project.fake.events("start")]
    children = [r["child_pid"] for r in project.fake.events("child")]
    assert [g for g in groups if group_alive(g)] == []
    assert children and not any(pid_alive(c) for c in children)
    assert Event("a", "failed", "timed out after 30m00s") in events
    log = settings.paths.log_file("a").read_text()
    assert log.endswith("\n=== dagspec: end of attempt 1: timed out after 30m00s\n")


@pytest.mark.slow
async def test_an_agent_ignoring_sigterm_is_killed_after_the_grace_period(
    project: Project, autojump_clock: trio.testing.MockClock
) -> None:
    autojump_clock.autojump_threshold = 1.0  # a real second idle: the agent hangs by then
    project.fake.control([{"match": "^Build a$", "HANG_AT": "plan", "IGNORE_SIGTERM": True}])
    initial, settings = drive_settings(project, timeouts={"a": 60.0}, poll_interval=1e6)
    final = await drive(project, initial, settings, lambda _, e: None)
    assert final.spec("a").error == "timed out after 1m00s"
    assert final.spec("a").exit_code == -9
    assert trio.current_time() >= 60 + agent.GRACE


@pytest.mark.slow
async def test_progress_is_saved_and_reported(project: Project) -> None:
    initial, settings = drive_settings(project, poll_interval=0.01)
    kinds: list[tuple[str, str]] = []
    saved: list[str] = []

    def report(current: RunState, event: Event) -> None:
        kinds.append((event.spec_id, event.kind))
        saved.append(state.load(settings.paths).spec(event.spec_id).status.value)

    final = await drive(project, initial, settings, report)
    assert final.status is RunStatus.COMPLETED
    assert [k for s, k in kinds if s == "a" and k != "tasks"] == [
        "started",
        "stage",
        "stage",
        "stage",
        "stage",
        "completed",
    ]
    assert saved[-1] == "completed"
    assert final.spec("a").tasks_done == final.spec("a").tasks_total == 2


async def test_a_spec_that_made_its_list_and_failed_keeps_its_tasks(project: Project) -> None:
    """Its tasks.yaml was written and it failed within one poll of it: no tasks were
    recorded (`dag report` blank, tasks_total null), though README counts the tasks of the
    specs that made their list. The list is read once more when the agent has ended."""
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "implement"}])
    initial, settings = drive_settings(project, poll_interval=1e6)
    final = await drive(project, initial, settings, lambda _, e: None)
    assert final.spec("a").status.value == "failed"
    assert (final.spec("a").tasks_done, final.spec("a").tasks_total) == (0, 2)
    assert final.spec("b").tasks_total == 2  # completed: read as before
    # each log says how its attempt ended, under the agent's output
    failed, completed = (settings.paths.log_file(s).read_text() for s in ("a", "b"))
    assert failed.endswith(f"\n=== dagspec: end of attempt 1: {final.spec('a').error}\n")
    assert "autospec exited with 1 during implement" in failed.splitlines()[-1]
    assert completed.endswith("\n=== dagspec: end of attempt 1: autospec exited with 0\n")


async def test_an_interrupted_spec_keeps_the_tasks_done_since_the_last_poll(
    project: Project,
) -> None:
    """A Ctrl-C soon after a task completed (within one poll of tasks.yaml) left the run
    at 0/2 though the spec's tasks.yaml had T001 Completed: the list is read once more when
    an attempt ends, however it ends."""
    project.fake.setenv("HANG_AT", "implement:T002")  # T001 Completed, T002 InProgress
    initial, settings = drive_settings(project, poll_interval=1e6)

    async def interrupt_once_both_hang() -> None:
        with trio.fail_after(30):
            while len(project.fake.events("hang")) < 2:  # noqa: ASYNC110 (a file, no event)
                await trio.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(interrupt_once_both_hang)
        final = await drive(project, initial, settings, lambda _, e: None)
    assert final.status is RunStatus.INTERRUPTED
    for spec_id in ("a", "b"):
        spec = final.spec(spec_id)
        assert spec.status.value == "interrupted"
        assert (spec.tasks_done, spec.tasks_total) == (1, 2)
        saved = state.load(settings.paths).spec(spec_id)
        assert (saved.tasks_done, saved.tasks_total) == (1, 2)
        log = settings.paths.log_file(spec_id).read_text()  # how the attempt ended, last
        assert log.endswith(
            "\n=== dagspec: end of attempt 1: interrupted (the run stopped): "
            "autospec was killed by SIGTERM\n"
        ), log[-300:]
