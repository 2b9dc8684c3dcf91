"""``dag status``: the newest run by default, JSON to the letter, reading while driven."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from dagspec.commands import status as status_command
from dagspec.console import dag_command
from dagspec.errors import StateError
from dagspec.lifecycle import RunState, RunStatus, SpecStatus
from dagspec.state import run_lock
from dagspec.workspace import RunPaths
from tests.conftest import ROOT
from tests.run_states import Output, at, branch, let_go, run, save, spec, start_dag

Cli = Callable[..., int]


# How hints name dag in a `python -m dagspec` subprocess (console.dag_command).
AS_SUBPROCESS = dag_command(str(ROOT / "dagspec" / "__main__.py")).encode()


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_status_shows_the_newest_run_by_default(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    save(run(git_repo, "old", spec("a", SpecStatus.COMPLETED, merged=True), started_at=at(0)))
    save(run(git_repo, "new", spec("b", SpecStatus.FAILED, error="boom"), started_at=at(60)))
    assert run_cli("status") == 0
    out = capsys.readouterr().out
    assert "b     L0     ✗ failed" in out
    assert out.endswith("run new completed: 1 failed\nnext: dag retry new b\n")
    assert run_cli("status", "old") == 0
    assert "run old completed: 1 completed\n" in capsys.readouterr().out


def test_status_without_runs_says_how_to_start_one(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("status") == 1
    assert capsys.readouterr().err == (
        f"dag: error: no runs yet in {git_repo}: `dag run FILE` starts one\n"
    )


def test_status_of_an_unknown_run(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    save(run(git_repo, "r"))
    assert run_cli("status", "nope") == 1
    assert capsys.readouterr().err == (
        f"dag: error: no run 'nope' in {git_repo}: `dag list` shows the runs\n"
    )
    assert run_cli("status", "../r") == 1
    assert "run id '../r' is not valid" in capsys.readouterr().err


def test_json_is_exactly_the_design_shape(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = "q1-features-20261124-101500"
    paths = save(
        run(
            git_repo,
            run_id,
            spec(
                "050-error-handling",
                SpecStatus.RUNNING,
                stage="implement",
                tasks_done=5,
                tasks_total=12,
                worktree="/abs/path/wt-050-error-handling",
                branch=branch(run_id, "050-error-handling"),
                spec_dir="specs/050-error-handling",
                attempts=1,
                started_at=at(1),
                log="/abs/logs/050-error-handling.log",
                agent_pid=4242,
            ),
            spec("060-api", layer="L1", depends_on=("050-error-handling",)),
            status=RunStatus.RUNNING,
        )
    )
    assert run_cli("status", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    expected = {
        "format": 1,
        "run_id": run_id,
        "dag_file": "dag.yaml",
        "status": "running",
        "base_branch": "main",
        "base_commit": "0" * 40,
        "started_at": "2026-11-24T10:15:00Z",
        "finished_at": None,
        "specs": [
            {
                "id": "050-error-handling",
                "layer": "L0",
                "status": "running",
                "stage": "implement",
                "tasks_done": 5,
                "tasks_total": 12,
                "depends_on": [],
                "blocked_by": [],
                "worktree": "/abs/path/wt-050-error-handling",
                "branch": f"dag/{run_id}/050-error-handling",
                "spec_dir": "specs/050-error-handling",
                "attempts": 1,
                "exit_code": None,
                "started_at": "2026-11-24T10:15:01Z",
                "finished_at": None,
                "error": None,
                "log": "/abs/logs/050-error-handling.log",
                "merged": False,
                "merge_commit": None,
                "stalled_since": None,
                "waiting_until": None,
            },
            {
                "id": "060-api",
                "layer": "L1",
                "status": "pending",
                "stage": None,
                "tasks_done": None,
                "tasks_total": None,
                "depends_on": ["050-error-handling"],
                "blocked_by": [],
                "worktree": None,
                "branch": None,
                "spec_dir": None,
                "attempts": 0,
                "exit_code": None,
                "started_at": None,
                "finished_at": None,
                "error": None,
                "log": None,
                "merged": False,
                "merge_commit": None,
                "stalled_since": None,
                "waiting_until": None,
            },
        ],
    }
    assert data == expected
    assert list(data) == list(expected)
    assert list(data["specs"][0]) == list(expected["specs"][0])  # type: ignore[index]
    assert paths.state_file.exists()


def test_a_dead_driver_shows_as_interrupted_and_the_file_is_left_alone(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    state = run(
        git_repo,
        "r",
        spec("a", SpecStatus.RUNNING, stage="plan", started_at=at(0)),
        spec("b"),
        status=RunStatus.RUNNING,
        driver_pid=dead_pid(),
    )
    before = save(state).state_file.read_bytes()
    assert run_cli("status", "r", "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "interrupted"
    assert [s["status"] for s in data["specs"]] == ["interrupted", "pending"]
    assert data["specs"][0]["error"] == "the driver died"
    assert run_cli("status", "r") == 1
    assert "run r interrupted: 1 interrupted, 1 pending\nnext: dag resume r\n" in (
        capsys.readouterr().out
    )
    assert RunPaths(git_repo, "r").state_file.read_bytes() == before


NEWER = b"format: 2\nrun_id: r\n"
DAMAGED = b"format: 1\nrun_id: [unclosed\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (NEWER, "was written by a newer dagspec (format 2; this one reads format 1)"),
        (DAMAGED, "is damaged"),
        (b"\xff\xfe not utf-8", "is damaged (not UTF-8)"),
    ],
)
def test_a_file_it_cannot_read_gives_one_line_and_stays_as_it_is(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = RunPaths(git_repo, "r").state_file
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    for args in (["status", "r"], ["status", "r", "--json"], ["status", "r", "--watch"]):
        assert run_cli(*args) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"dag: error: {path} ") and err.count("\n") == 1
        assert message in err
    assert path.read_bytes() == content


def test_the_default_run_skips_a_damaged_file_and_says_so(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    save(run(git_repo, "good", spec("a")))
    bad = RunPaths(git_repo, "zz-bad").state_file
    bad.write_bytes(DAMAGED)
    assert run_cli("status") == 0
    captured = capsys.readouterr()
    assert "run good completed: 1 pending" in captured.out
    assert captured.err.startswith(f"dag: warning: {bad} is damaged")
    assert bad.read_bytes() == DAMAGED


def test_json_and_watch_do_not_go_together(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    save(run(git_repo, "r"))
    assert run_cli("status", "--json", "--watch") == 2
    assert capsys.readouterr().err.endswith(
        "dag: error: --json and --watch do not go together: choose one\n"
    )


@pytest.mark.slow
def test_status_reads_a_run_whose_lock_another_process_holds(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = RunPaths(git_repo, "r")
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from dagspec.state import run_lock;"
            "from dagspec.workspace import RunPaths\n"
            f"with run_lock(RunPaths(Path({str(git_repo)!r}), 'r')):\n"
            "    print('locked', flush=True); sys.stdin.read()",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as holder:
        Output(holder).wait_for(b"locked")
        save(run(git_repo, "r", spec("a", SpecStatus.RUNNING), status=RunStatus.RUNNING,
                 driver_pid=holder.pid))  # fmt: skip
        assert run_cli("status", "r") == 0
        assert "run r running: 1 running\n" in capsys.readouterr().out
        with pytest.raises(StateError, match=f"being driven by process {holder.pid}"):  # noqa: SIM117
            with run_lock(paths):
                pass
        assert holder.stdin is not None
        holder.stdin.close()


class _Driver:
    """A process that holds run ``r``'s lock, as its driver does while it merges at the
    run's end; ``end()`` lets it go."""

    def __init__(self, repo: Path) -> None:
        code = (
            "import sys; from pathlib import Path; from dagspec.state import run_lock;"
            "from dagspec.workspace import RunPaths\n"
            f"with run_lock(RunPaths(Path({str(repo)!r}), 'r')):\n"
            "    print('locked', flush=True); sys.stdin.read()"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        Output(self.proc).wait_for(b"locked")

    def end(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        assert self.proc.wait(timeout=20) == 0
        self.proc.stdout.close()


def test_status_while_the_driver_merges_says_so_and_names_no_merge(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run's state says completed, its specs are not merged yet, and its driver, alive
    and holding the run's lock, is merging them: `next: dag merge r` sent the user to a
    merge the lock refuses."""
    driver = _Driver(git_repo)
    base = subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=git_repo, text=True).strip()
    try:
        completed = spec("a", SpecStatus.COMPLETED)
        save(run(git_repo, "r", completed, driver_pid=driver.proc.pid, base_commit=base))
        assert run_cli("status", "r", "--color", "never") == 0  # nothing needs you yet
        out = capsys.readouterr().out
        assert out.endswith(
            "run r completed: 1 completed\n"
            f"note: run r completed, and its driver (pid {driver.proc.pid}) is merging its "
            "completed specs into main now: look again once it ends\n"
        )
        assert "next:" not in out
    finally:
        driver.end()
    assert run_cli("status", "r") == 1  # the driver gone: the merge is left to do
    assert capsys.readouterr().out.endswith("next: dag merge r\n")


@pytest.mark.slow
def test_watch_goes_on_while_the_driver_merges_and_ends_with_the_merged_run(
    git_repo: Path,
) -> None:
    driver = _Driver(git_repo)
    try:
        done = run(git_repo, "r", spec("a", SpecStatus.COMPLETED), driver_pid=driver.proc.pid)
        save(done)
        with start_dag(git_repo, "status", "r", "--watch") as proc:
            out = Output(proc)
            out.wait_for(b"run r completed: 1 completed\n")
            save(done.with_spec(spec("a", SpecStatus.COMPLETED, merged=True)))
            driver.end()
            code = out.finish()
            assert proc.stderr is not None
            said = proc.stderr.read()
    finally:
        if driver.proc.poll() is None:
            driver.end()
    assert code == 0, said
    assert b"next:" not in out.data
    assert out.data.endswith(b"nothing left to do: every spec is merged into main\n")


# --- --watch ------------------------------------------------------------------------------


def test_watch_shows_each_change_until_the_run_ends() -> None:
    running = run(Path("/r"), "r", spec("a", SpecStatus.RUNNING), status=RunStatus.RUNNING)
    progressed = running.with_spec(spec("a", SpecStatus.RUNNING, stage="plan"))
    done = attrs.evolve(
        progressed.with_spec(spec("a", SpecStatus.COMPLETED)), status=RunStatus.COMPLETED
    )
    reads = iter([running, running, progressed, progressed, done])
    shown: list[RunState] = []
    waits: list[None] = []
    final = status_command.watch(
        lambda: next(reads), shown.append, lambda: waits.append(None), every_tick=False
    )
    assert final == done
    assert shown == [running, progressed, done]
    assert len(waits) == 4


def test_watch_reads_the_run_again_once_the_driver_seen_ending_it_is_gone() -> None:
    """The driver, merging at the run's end, wrote the merged run and exited between the
    watch's read and its look at the driver: the watch ended on the unmerged run."""
    unmerged = run(Path("/r"), "r", spec("a", SpecStatus.COMPLETED))
    merged = unmerged.with_spec(spec("a", SpecStatus.COMPLETED, merged=True))
    reads = iter([unmerged, unmerged, merged])
    alive = iter([True, False, False])
    shown: list[RunState] = []
    final = status_command.watch(
        lambda: next(reads),
        shown.append,
        lambda: None,
        every_tick=False,
        driven=lambda state: next(alive),
    )
    assert final == merged
    assert shown == [unmerged, merged]


def test_watch_in_a_terminal_redraws_every_tick() -> None:
    running = run(Path("/r"), "r", status=RunStatus.RUNNING)
    reads = iter([running, running, attrs.evolve(running, status=RunStatus.FAILED)])
    shown: list[RunState] = []
    status_command.watch(lambda: next(reads), shown.append, lambda: None, every_tick=True)
    assert [s.status for s in shown] == [RunStatus.RUNNING, RunStatus.RUNNING, RunStatus.FAILED]


def test_watch_of_a_finished_run_draws_once_in_place_then_the_summary(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED)))
    assert run_cli("status", "--watch", "--color", "never") == 1  # its merge is left to do
    assert capsys.readouterr().out == (
        "SPEC  LAYER  STATUS       STAGE  TASKS  TIME  NOTE\n"
        "a     L0     ✓ completed                      not merged yet\n"
        "run r completed: 1 completed\n"  # once: the summary's counts are the table's
        "  completed, not merged into main yet: a\n"  # why it exits 1
        "next: dag merge r\n"
    )


@pytest.mark.slow
def test_watch_in_a_pipe_follows_the_state_file_to_the_end(git_repo: Path) -> None:
    state = run(git_repo, "r", spec("a", SpecStatus.RUNNING, stage="specify"), spec("b"),
                status=RunStatus.RUNNING)  # fmt: skip
    save(state)
    with start_dag(git_repo, "status", "--watch") as proc:
        out = Output(proc)
        out.wait_for(b"run r running: 1 running, 1 pending\n")
        state = state.with_spec(spec("a", SpecStatus.RUNNING, stage="plan"))
        save(state)
        out.wait_for(b"plan")
        save(attrs.evolve(state.with_spec(spec("a", SpecStatus.FAILED, error="boom")),
                          status=RunStatus.FAILED))  # fmt: skip
        let_go(RunPaths(git_repo, "r"))  # the driver ends (the watch waits for that)
        assert out.finish() == 1  # the run failed
        assert (
            proc.stderr is not None
            and proc.stderr.read() == b"note: run r (the newest; name a run to choose another)\n"
        )
    assert out.data.count(b"run r running: 1 running, 1 pending\n\n") == 2  # a table a change
    assert out.data.count(b"run r failed") == 1
    assert out.data.endswith(
        b"run r failed: 1 failed, 1 pending\n"
        b"  \xe2\x9c\x97 a: boom\n"
        b"    log: " + bytes(RunPaths(git_repo, "r").log_file("a")) + b"\n"
        b"next: " + AS_SUBPROCESS + b" resume r\n"
    )
    assert b"\x1b" not in out.data


@pytest.mark.slow
def test_watch_says_when_the_driver_is_gone_and_to_resume(git_repo: Path) -> None:
    """The driver killed under a watch: it ended with the run "interrupted" and nothing of
    the driver, while ``dag status`` and ``dag logs -f`` say it is gone and to resume."""
    state = run(git_repo, "r", spec("a", SpecStatus.RUNNING, stage="plan"),
                status=RunStatus.RUNNING)  # fmt: skip
    save(state)
    with start_dag(git_repo, "status", "r", "--watch") as proc:
        out = Output(proc)
        out.wait_for(b"run r running: 1 running\n")
        save(attrs.evolve(state, driver_pid=-1))  # killed: the file still says running
        assert out.finish() == 1
        assert proc.stderr is not None
        said = proc.stderr.read().decode()
    assert said == (
        "dag: error: the driver of run r is gone (killed, or the machine restarted): "
        f"`{AS_SUBPROCESS.decode()} resume r` goes on with it\n"
    )
    assert out.data.endswith(b"next: " + AS_SUBPROCESS + b" resume r\n")


@pytest.mark.slow
def test_status_list_and_logs_never_import_trio(git_repo: Path) -> None:
    save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED, merged=True)))
    RunPaths(git_repo, "r").log_file("a").parent.mkdir(parents=True)
    RunPaths(git_repo, "r").log_file("a").write_text("hello\n")
    code = (
        "import sys; from dagspec.cli import main\n"
        "codes = [main(['status']), main(['status', '--json']), main(['list']),"
        " main(['list', '--json']), main(['logs', 'r', 'a'])]\n"
        "assert codes == [0] * 5, codes\n"
        "assert 'trio' not in sys.modules, 'trio was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=git_repo,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
