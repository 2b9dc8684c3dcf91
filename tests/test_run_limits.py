"""What ends an agent early, end to end: ``--timeout``, and a second Ctrl-C (README,
How a run works)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from tests.engine_support import Project, dag_text, group_alive, pid_alive, start_dag
from tests.fake_autospec_fixture import wait_for

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow  # real agents, and a real second of waiting for the timeout

RunCli = Callable[..., int]
GRACE = 10.0  # README, How a run works: SIGTERM, then SIGKILL after a 10 s grace period


def test_the_timeout_flag_fails_a_spec_that_runs_longer(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    # The agent of a hangs (its child too) until it is signalled. b has a limit of its own,
    # which wins over the flag: a busy machine can take more than a second to run it.
    project.fake.control([{"match": "^Build a$", "HANG_AT": "plan", "CHILD": "inherit"}])
    b_limit = '\n        timeout: "1h"'
    text = dag_text("a", "b", extra='execution:\n  timeout: "30s"')  # the flag wins
    dag = project.write_dag(text.replace('"Build b"', '"Build b"' + b_limit))
    code = run_cli("run", dag, "--parallel", "--timeout", "1s", "--run-id", "r", "--no-merge")
    assert code == 1
    assert project.statuses() == {"a": "failed", "b": "completed"}
    assert project.state().spec("a").error == "timed out after 1s"
    assert "timed out after 1s" in capsys.readouterr().out
    groups = [r["pgid"] for r in project.starts()]
    children = [r["child_pid"] for r in project.fake.events("child")]
    assert children
    assert [g for g in groups if group_alive(g)] == []
    assert [c for c in children if pid_alive(c)] == []


def test_a_second_ctrl_c_kills_the_agents_at_once(project: Project) -> None:
    # The agents ignore SIGTERM, so the first Ctrl-C alone would wait the whole grace period;
    # their children do not, so a child's death shows that the first one was acted on.
    project.fake.setenv("HANG_AT", "plan")
    project.fake.setenv("IGNORE_SIGTERM", True)
    project.fake.setenv("CHILD", "1")
    project.write_dag(dag_text("a", "b"))
    driver = start_dag(project.repo, "run", "dag.yaml", "--parallel", "--run-id", "r")
    try:
        wait_for(lambda: len(project.fake.events("hang")) == 2, timeout=20, what="two hangs")
        agents = [r["pid"] for r in project.fake.events("hang")]
        children = [r["child_pid"] for r in project.fake.events("child")]
        assert children
        driver.send_signal(signal.SIGINT)
        first = time.monotonic()
        wait_for(lambda: not any(pid_alive(c) for c in children), timeout=GRACE / 2, what="SIGTERM")
        assert all(pid_alive(a) for a in agents)  # in their grace period
        driver.send_signal(signal.SIGINT)
        left = first + GRACE / 2 - time.monotonic()
        wait_for(lambda: not any(map(pid_alive, agents)), timeout=left, what="SIGKILL at once")
        out, err = driver.communicate(timeout=left + 5)
    finally:
        if driver.poll() is None:  # a failed check above: leave no process behind
            driver.kill()
            driver.communicate()
    assert driver.returncode == 130, out + err
    assert project.statuses() == {"a": "interrupted", "b": "interrupted"}
    groups = {r["pgid"] for r in project.starts()}
    assert [g for g in groups if group_alive(g)] == []
    assert " resume r\n" in out  # the next: hint, in the form dag was called
