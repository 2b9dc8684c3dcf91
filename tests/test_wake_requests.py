"""``dag retry`` of a waiting spec while a driver holds the run (``dagspec.waits``): the
driver answers only what it acted on, and a request with nobody behind it counts for nothing.
Real drivers and agents, through ``python -m dagspec``."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dagspec import waits
from dagspec.workspace import RunPaths
from tests.engine_support import Project, dag_text, pid_alive, start_dag
from tests.fake_autospec_fixture import wait_for

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow  # the agent ignores SIGTERM: its grace period runs out (10 s)

DAYS = 3 * 86400
LIMITED = {"match": "^Build a$", "FAIL_AT": "plan", "FAIL_KIND": "limit", "LIMIT_RESET": DAYS}


def _dag(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dagspec", *args]
    return subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=60)


def _requests(repo: Path) -> list[str]:
    wake = RunPaths(repo, "r").run_dir / "wake"
    return sorted(str(p.relative_to(wake)) for p in wake.rglob("*") if p.is_file())


def test_retry_while_the_driver_stops_says_so_and_starts_nothing(project: Project) -> None:
    """SIGTERM sent, an agent ignoring it keeps the driver alive: `retry` of the waiting
    spec is told the run is stopping (exit 1), not "started"; the run ends interrupted
    with the spec still waiting, and no request is left behind."""
    hang = {"match": "^Build b$", "HANG_AT": "plan", "IGNORE_SIGTERM": True, "CHILD": "1"}
    project.fake.control([LIMITED, hang])
    project.write_dag(dag_text("a", "b"))
    driver = start_dag(project.repo, "run", "dag.yaml", "--parallel", "--run-id", "r")
    try:
        wait_for(
            lambda: project.fake.events("hang") and project.statuses().get("a") == "waiting",
            timeout=30,
            what="a waiting and b hung",
        )
        children = [r["child_pid"] for r in project.fake.events("child")]
        driver.send_signal(signal.SIGTERM)
        # the agents' children die of the SIGTERM: the driver is stopping, in b's grace
        wait_for(lambda: not any(map(pid_alive, children)), timeout=5, what="SIGTERM acted on")
        retry = _dag(project.repo, "retry", "r", "a")
        out, err = driver.communicate(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert retry.returncode == 1, retry.stdout + retry.stderr
    assert "started" not in retry.stdout
    stopping = f"dag: error: run 'r' is stopping: its driver (process {driver.pid})"
    assert retry.stderr.startswith(stopping)
    assert " retry r a` starts it" in retry.stderr
    assert driver.returncode == 130, out + err
    assert project.statuses() == {"a": "waiting", "b": "interrupted"}
    assert _requests(project.repo) == []


def test_a_request_nobody_made_now_does_not_start_a_spec(project: Project) -> None:
    """A request file a killed `retry` (or an earlier driver) left: the next drive removes
    it and the spec waits on; a live `retry` then still starts it."""
    project.fake.control([LIMITED])
    project.write_dag(dag_text("a", "b"))
    first = start_dag(project.repo, "run", "dag.yaml", "--run-id", "r", "--parallel")
    waited = {"a": "waiting", "b": "completed"}
    state_file = RunPaths(project.repo, "r").state_file
    wait_for(
        lambda: state_file.exists() and project.statuses() == waited,
        timeout=30,
        what="a waiting, b done",
    )
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=30) == 130, first.communicate()
    first.communicate()
    wake = RunPaths(project.repo, "r").run_dir / "wake"
    wake.mkdir()
    (wake / "a").write_text("")  # an older dagspec's request, or one half written
    project.fake.control([])  # a restart of a would now go through
    driver = start_dag(project.repo, "resume", "r")
    try:
        paths = RunPaths(project.repo, "r")
        wait_for(lambda: waits.lock_holder(paths) == driver.pid, timeout=30, what="the lock")
        (wake / "b").write_text(f"{driver.pid} 999999999\n")  # its retry is gone
        assert project.statuses()["a"] == "waiting"
        unknown = _dag(project.repo, "retry", "r", "zz")  # named, not "being driven by"
        assert unknown.returncode == 1
        assert unknown.stderr.startswith("dag: error: run 'r' has no spec 'zz'"), unknown.stderr
        retry = _dag(project.repo, "retry", "r", "a")
        assert retry.returncode == 0, retry.stdout + retry.stderr
        started = f"ended the wait of a of run r: its driver (process {driver.pid})"
        assert retry.stdout.startswith(started)
        out, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode == 0, out + err
    assert out.count("asked by dag retry") == 1
    assert project.statuses() == {"a": "completed", "b": "completed"}
    assert _requests(project.repo) == []
