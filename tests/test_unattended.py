"""Issue 17 end to end, through the built ``dag.pyz`` and the stand-in autospec: a worktree
setup the agent needs, notifications of exactly the run's events, the report card."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dagspec import waits
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.engine_support import Project, dag_text, pid_alive

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow

SETUP = 'mkdir -p vendor && echo "$DAG_SPEC_ID" > vendor/lib.txt'
# Records each notice: the environment's event and spec, and the JSON it read on stdin.
RECORDER = (
    'n=$(ls "{out}" | grep -c "env$"); echo "$DAG_EVENT $DAG_SPEC_ID" > "{out}/$n.env"; '
    'cat > "{out}/$n.json"'
)


def _dag(pyz: Path, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(pyz), *args],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _prepare(project: Project, *, setup: str, extra: str = "") -> Path:
    """A repository whose agents need ``vendor/lib.txt`` (setup) and ``.env`` (copied)."""
    (project.repo / ".gitignore").write_text("vendor/\n.env\n")
    git(project.repo, "add", ".gitignore")
    git(project.repo, "commit", "-q", "-m", "ignore what setup makes")
    (project.repo / ".env").write_text("SECRET=1\n")
    project.fake.setenv("REQUIRE", "vendor/lib.txt,.env")
    execution = f"execution:\n  setup: {json.dumps(setup)}\n  copy: [.env]{extra}"
    return project.write_dag(dag_text("a", ("b", ["a"]), extra=execution))


def _notices(out: Path) -> list[tuple[str, dict[str, Any]]]:
    count = len(list(out.glob("*.env")))
    return [
        ((out / f"{n}.env").read_text().strip(), json.loads((out / f"{n}.json").read_text()))
        for n in range(count)
    ]


def test_setup_makes_what_the_agent_needs_and_nothing_of_it_is_committed(
    pyz: Path, project: Project, tmp_path: Path
) -> None:
    dag = _prepare(project, setup=SETUP)
    project.fake.setenv("TOKENS", True)
    out = tmp_path / "notices"
    out.mkdir()
    notify = RECORDER.format(out=out)
    done = _dag(pyz, project.repo, "run", str(dag), "--run-id", "r", "--notify", notify)
    assert done.returncode == 0, done.stdout + done.stderr
    assert project.statuses() == {"a": "completed", "b": "completed"}
    log = (project.repo / ".autospec/state/dag-runs/r/logs/a.log").read_text()
    assert f"=== dagspec: setup: {SETUP}\n" in log
    assert "execution.copy: copied .env (1 new)" in log
    shipped = git(project.repo, "ls-tree", "-r", "--name-only", "main").split()
    assert not [name for name in shipped if name.startswith(("vendor/", ".env"))]
    assert [env for env, _ in _notices(out)] == ["run-finished"]
    assert _notices(out)[0][1]["summary"].startswith("run r completed in ")
    assert "report of run r: completed\n" in done.stdout
    assert "total: 2 specs (2 completed), 2 merged, tasks 4/4, 2 attempts" in done.stdout
    # 2 specs of 4 agent sessions each (specify, plan, tasks, one implement phase)
    assert "agent time, tokens 8000 in/1600 out, $0.1000\n" in done.stdout


def test_a_failing_setup_fails_its_spec_before_the_agent_and_says_why(
    pyz: Path, project: Project, tmp_path: Path
) -> None:
    out = tmp_path / "notices"
    out.mkdir()
    notify = f"\n  notify: {json.dumps(RECORDER.format(out=out))}"
    dag = _prepare(project, setup="echo cannot reach the registry; exit 7", extra=notify)
    done = _dag(pyz, project.repo, "run", str(dag), "--run-id", "r")
    assert done.returncode == 1
    assert project.statuses() == {"a": "failed", "b": "blocked"}
    error = project.state().spec("a").error or ""
    assert error == "execution.setup failed with exit code 7: cannot reach the registry"
    assert project.starts() == []  # no agent started
    assert [env for env, _ in _notices(out)] == ["spec-failed a", "run-finished"]
    summary = "a failed: execution.setup failed with exit code 7: cannot reach the registry"
    assert _notices(out)[0][1]["summary"] == summary

    report = _dag(pyz, project.repo, "report", "r", "--json")
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    state = project.state()
    assert [(s["id"], s["status"], s["attempts"]) for s in data["specs"]] == [
        (s.id, s.status.value, s.attempts) for s in state.specs
    ]
    assert data["totals"]["counts"] == state.counts()
    assert data["totals"]["attempts"] == sum(s.attempts for s in state.specs)


@pytest.mark.parametrize(
    ("flags", "extra", "error"),
    [
        (("--stall-timeout", "1s"), "", "no progress for 2s (in execution.setup)"),
        (("--timeout", "2s"), "", "timed out after 2s (in execution.setup)"),
    ],
)
def test_a_hanging_setup_is_stalled_or_timed_out_like_an_agent(
    pyz: Path, project: Project, tmp_path: Path, flags: tuple[str, ...], extra: str, error: str
) -> None:
    pids = tmp_path / "setup-pids"
    dag = _prepare(project, setup=f"echo $$ >> {pids}; exec sleep 600")
    done = _dag(pyz, project.repo, "run", str(dag), "--run-id", "r", *flags)
    assert done.returncode == 1, done.stdout + done.stderr
    assert project.statuses() == {"a": "failed", "b": "blocked"}
    assert project.state().spec("a").error == error
    assert project.starts() == []  # no agent started
    assert not [pid for pid in map(int, pids.read_text().split()) if pid_alive(pid)]


def test_dry_run_shows_the_recipe(pyz: Path, project: Project) -> None:
    dag = _prepare(project, setup=SETUP)
    done = _dag(pyz, project.repo, "run", str(dag), "--dry-run", "--notify", "tee -a notices.log")
    assert done.returncode == 0, done.stderr
    assert "copied into each worktree (gitignored, never committed): .env\n" in done.stdout
    assert f"setup in each new worktree, before its agent: {SETUP}\n" in done.stdout
    assert "notify on run end, failed, stalled and waiting specs: tee -a notices.log\n" in (
        done.stdout
    )


# --- item 2: the stall watchdog; item 3: usage limits --------------------------------------------


def test_a_silent_agent_is_restarted_once_at_its_stage_then_failed(
    pyz: Path, project: Project, tmp_path: Path
) -> None:
    project.fake.setenv("HANG_AT", "plan")  # silent there until a signal comes
    out = tmp_path / "notices"
    out.mkdir()
    dag = project.write_dag(dag_text("a", ("b", ["a"]), extra="execution:\n  stall_timeout: 1s"))
    done = _dag(
        pyz, project.repo, "run", str(dag), "--run-id", "r", "--notify", RECORDER.format(out=out)
    )
    assert done.returncode == 1, done.stdout + done.stderr
    state = project.state()
    assert project.statuses() == {"a": "failed", "b": "blocked"}
    assert state.spec("a").error == "no progress for 2s"
    assert state.spec("a").attempts == 2
    assert project.stages("a") == ["specify", "plan", "plan"]  # restarted at its stage
    assert "-pti" in project.starts()[1]["argv"]
    assert "a: stalled: no progress for 1s" in done.stdout
    assert "a: restarting: no progress for 2s; starting at plan" in done.stdout
    assert [env for env, _ in _notices(out)] == [
        "spec-stalled a", "spec-stalled a", "spec-failed a", "run-finished"
    ]  # fmt: skip
    stalled = _notices(out)[0][1]
    assert (stalled["status"], stalled["summary"]) == ("stalled", "a: no progress for 1s")
    assert not [r for r in project.fake.events("exit")]  # both ended by dagspec's signal
    # the report's agent time is both attempts', as the state file has them
    report = json.loads(_dag(pyz, project.repo, "report", "r", "--json").stdout)
    spec = state.spec("a")
    assert spec.started_at is not None and spec.finished_at is not None
    last = (spec.finished_at - spec.started_at).total_seconds()
    assert spec.earlier_seconds >= 2  # the first attempt: ended after two stall timeouts
    assert report["specs"][0]["duration_seconds"] == last
    assert report["specs"][0]["agent_seconds"] == spec.earlier_seconds + last
    assert report["totals"]["agent_seconds"] == sum(
        s.earlier_seconds + (s.finished_at - s.started_at).total_seconds()
        for s in state.specs
        if s.started_at and s.finished_at
    )
    assert not [pid for r in project.starts() if pid_alive(pid := r["pid"])]


def test_a_usage_limit_waits_for_its_reset_then_the_spec_starts_again(
    pyz: Path, project: Project, tmp_path: Path
) -> None:
    limit = {"FAIL_AT": "plan", "FAIL_KIND": "limit", "LIMIT_AGENT": "gemini", "LIMIT_RESET": 1}
    project.fake.control([limit])
    project.fake.setenv("GATES", "plan")
    out = tmp_path / "notices"
    out.mkdir()
    dag = project.write_dag(dag_text("a"))
    argv = [sys.executable, str(pyz), "run", str(dag), "--run-id", "r"]
    argv += ["--notify", RECORDER.format(out=out)]
    gates = project.fake.gate_dir
    with subprocess.Popen(
        argv, cwd=project.repo, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    ) as dag_run:
        try:
            gates.release(gates.wait_any("plan", timeout=60), "plan")  # the first attempt
            project.fake.wait_event("limit", timeout=60)
            second = gates.wait_any("plan", timeout=60)  # after the wait: the limit is gone
            project.fake.control([])
            gates.release(second, "plan")
            stdout, _ = dag_run.communicate(timeout=120)
        finally:
            dag_run.kill()  # nothing, when it ended: a test that fails must not hang
    assert dag_run.returncode == 0, stdout
    state = project.state()
    assert project.statuses() == {"a": "completed"}
    assert (state.spec("a").attempts, state.spec("a").limit_hits) == (2, 0)
    assert project.stages("a") == ["specify", "plan", "plan", "tasks", "implement"]
    assert "a: waiting: hit a gemini limit; until " in stdout
    assert [env for env, _ in _notices(out)] == ["spec-waiting a", "run-finished"]
    waiting = _notices(out)[0][1]
    assert waiting["status"] == "waiting"
    assert waiting["summary"].startswith("a: hit a gemini limit; until ")


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Until ``check()`` holds (a state written by another process), at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"no {what} in {timeout} s"
        time.sleep(0.05)


def _waiting(project: Project) -> bool:
    path = RunPaths(project.repo, "r").state_file
    return path.exists() and project.statuses().get("a") == "waiting"


@pytest.mark.parametrize("driver", ["run", "resume", None])
def test_a_weekly_limit_waits_days_and_retry_starts_it_now(
    pyz: Path, project: Project, driver: str | None
) -> None:
    """Claude's weekly limit states a date three days off: the spec waits until that day,
    not today; `dag status` says how to start it now; `dag retry r a` does, through the
    live driver (`run`, or a `resume` of the interrupted run), or with no driver, itself."""
    days = 3 * 86400
    limit = {"FAIL_AT": "plan", "FAIL_KIND": "limit", "LIMIT_AGENT": "claude-weekly"}
    project.fake.control([{**limit, "LIMIT_RESET": days}])
    dag = project.write_dag(dag_text("a", ("b", ["a"])))
    argv = [sys.executable, str(pyz), "run", str(dag), "--run-id", "r"]
    first = subprocess.Popen(
        argv,
        cwd=project.repo,
        stdin=subprocess.DEVNULL,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    live = first
    try:
        _wait_for(lambda: _waiting(project) or first.poll() is not None, "waiting spec")
        assert first.poll() is None, first.communicate()[0]
        until = project.state().spec("a").waiting_until
        assert until is not None
        ahead = (until - datetime.now(UTC)).total_seconds()
        assert days - 120 < ahead < days + 60  # that day (to the minute, plus the margin)
        project.fake.control([])  # the limit is gone: the next attempt goes through
        status = _dag(pyz, project.repo, "status", "r")
        assert "retry r a` starts it now\n" in status.stdout
        if driver != "run":
            first.send_signal(signal.SIGINT)  # the wait survives; the run is interrupted
            assert first.wait(timeout=60) == 130
            assert project.statuses() == {"a": "waiting", "b": "pending"}
        if driver == "resume":
            live = subprocess.Popen(
                [sys.executable, str(pyz), "resume", "r"],
                cwd=project.repo,
                stdin=subprocess.DEVNULL,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            _wait_for(lambda: waits.lock_holder(RunPaths(project.repo, "r")) == live.pid, "lock")
        retry = _dag(pyz, project.repo, "retry", "r", "a")
        assert retry.returncode == 0, retry.stdout + retry.stderr
        if driver is None:
            assert "retrying a of run r" in retry.stdout
        else:
            assert retry.stdout.startswith(
                f"ended the wait of a of run r: its driver (process {live.pid})"
            )
            out, _ = live.communicate(timeout=120)
            assert live.returncode == 0, out
            assert "a: restarting: asked by dag retry; starting at plan" in out
    finally:
        for process in {first.pid: first, live.pid: live}.values():
            process.kill()  # nothing, when it ended: a test that fails must not hang
            process.communicate()
    assert project.statuses() == {"a": "completed", "b": "completed"}
    assert project.stages("a") == ["specify", "plan", "plan", "tasks", "implement"]
    wake = project.repo / ".autospec/state/dag-runs/r/wake"
    assert [p for p in wake.rglob("*") if p.is_file()] == []  # no request, no answer left
