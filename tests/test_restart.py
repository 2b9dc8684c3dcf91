"""Honest restarts (issue 13): a spec restarts at the stage where it failed or was
interrupted, with what its last attempt left dealt with first. Real git, the stand-in
autospec, the CLI in-process."""

from __future__ import annotations

import signal
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec.errors import StateError
from tests.conftest import git
from tests.engine_support import Project, dag_text, pid_alive, start_dag
from tests.fake_autospec_fixture import wait_for

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow

RunCli = Callable[..., int]


@pytest.mark.parametrize(
    ("stage", "restart"),
    [("plan", "-pti"), ("tasks", "-ti"), ("implement", "-i")],
)
def test_an_invalid_artifact_is_made_again_not_trusted(
    project: Project, run_cli: RunCli, stage: str, restart: str
) -> None:
    fail = {"match": "^Build a$", "FAIL_AT": stage, "FAIL_KIND": "validation"}
    project.fake.control([fail])
    dag = project.write_dag(dag_text("a", ("b", ["a"])))
    assert run_cli("run", dag, "--run-id", "r") == 1
    assert project.state().spec("a").stage == stage
    project.fake.control([])
    before = len(project.fake.events("start"))
    assert run_cli("retry", "r", "a") == 0
    assert project.fake.events("start")[before]["argv"][:2] == ["run", restart]
    assert project.statuses() == {"a": "completed", "b": "completed"}


def test_a_failed_specify_starts_over_in_a_clean_directory(
    project: Project, run_cli: RunCli
) -> None:
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "specify", "FAIL_KIND": "validation"}])
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r") == 1
    project.fake.control([])
    assert run_cli("retry", "r", "a") == 0
    last = project.fake.events("start")[-1]["argv"]
    assert last[:2] == ["run", "-spti"]
    specs = sorted(p.name for p in (project.repo / "specs").iterdir())
    assert len(specs) == 1, specs  # one spec directory merged, not a leftover beside it


def test_a_stale_index_lock_left_by_a_killed_agent_is_removed(
    project: Project, run_cli: RunCli
) -> None:
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "tasks"}])
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r") == 1
    worktree = Path(project.state().spec("a").worktree or "")
    gitdir = Path(git(worktree, "rev-parse", "--absolute-git-dir").strip())
    (gitdir / "index.lock").write_text("")
    project.fake.control([])
    assert run_cli("retry", "r", "a") == 0
    assert not (gitdir / "index.lock").exists()


def test_a_dependency_already_on_the_base_branch_needs_no_branch(
    project: Project, run_cli: RunCli
) -> None:
    project.fake.control([{"match": "^Build c$", "FAIL_AT": "plan"}])
    dag = project.write_dag(dag_text("a", "c", ("b", ["a", "c"])))
    assert run_cli("run", dag, "--run-id", "r", "--no-merge") == 1
    git(project.repo, "merge", "--ff-only", "-q", "dag/r/a")  # the user took a by hand
    assert run_cli("merge", "r", "--cleanup") == 0  # a: already on main, branch removed
    assert "dag/r/a" not in git(project.repo, "branch")
    project.fake.control([])
    assert run_cli("retry", "r", "c") == 0
    assert project.statuses() == dict.fromkeys("acb", "completed")


def test_nothing_an_agent_started_outlives_its_spec(
    project: Project, run_cli: RunCli, tmp_path: Path
) -> None:
    pid_file = tmp_path / "daemon.pid"
    wrapper = tmp_path / "autospec"
    wrapper.write_text(
        "#!/bin/sh\n"
        '[ "$1" = run ] || exec ' + f'{project.fake.path} "$@"\n'  # --version: no daemon
        f"setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > {pid_file}\n"
        f'exec {project.fake.path} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r", "--autospec", wrapper) == 0
    daemon = int(pid_file.read_text())
    wait_for(lambda: not pid_alive(daemon), timeout=15, what="the daemon ended")


def test_a_freed_slot_waits_for_nothing_an_exited_agent_left(
    project: Project, run_cli: RunCli, tmp_path: Path
) -> None:
    """Issue 16: the slot is given back as the agent exits. What its group left is ended
    meanwhile: a daemon deaf to SIGTERM is killed only after the 10 s grace, and the next
    spec must not wait for that."""
    pid_file, seen = tmp_path / "daemon.pid", tmp_path / "seen"
    wrapper = tmp_path / "autospec"
    wrapper.write_text(
        "#!/bin/sh\n"
        '[ "$1" = run ] || exec ' + f'{project.fake.path} "$@"\n'
        f"if [ -e {pid_file} ]; then\n"  # the second spec: is the first's daemon alive?
        f"  daemon=$(cat {pid_file})\n"  # killed, it may stay a zombie: not alive
        "  s=$(awk '/^State:/ {print $2}' /proc/$daemon/status 2>/dev/null)\n"
        '  case "$s" in ""|Z) s=gone ;; *) s=alive ;; esac\n'
        f'  echo "$s" > {seen}; kill -9 "$daemon"\n'
        "else\n"  # the first spec: a daemon that ignores SIGTERM, not in the agent's group
        "  setsid sh -c 'trap \"\" TERM; exec sleep 300' </dev/null >/dev/null 2>&1 &\n"
        f"  echo $! > {pid_file}\n"
        "fi\n"
        f'exec {project.fake.path} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    dag = project.write_dag(dag_text("a", "b"))
    assert run_cli("run", dag, "--run-id", "r", "--autospec", wrapper) == 0  # one at a time
    assert seen.read_text() == "alive\n"


def tasks_done(project: Project) -> int:
    try:
        return project.state().spec("a").tasks_done or 0
    except StateError:  # not recorded yet
        return 0


def killed_after_two_of_four_tasks(project: Project) -> Path:
    """Run r of one spec a with 4 tasks; SIGKILL the driver once 2 are done (the agent is
    held at T003). The path of a's tasks.yaml."""
    project.fake.setenv("TASKS", 4)
    project.fake.control([{"match": "^Build a$", "HANG_AT": "implement:T003"}])
    project.write_dag(dag_text("a"))
    driver = start_dag(project.repo, "run", "dag.yaml", "--run-id", "r")
    wait_for(lambda: tasks_done(project) >= 2, timeout=30, what="2 tasks done")
    driver.send_signal(signal.SIGKILL)
    driver.communicate(timeout=30)
    spec = project.state().spec("a")
    tasks = Path(spec.worktree or "") / (spec.spec_dir or "") / "tasks.yaml"
    return tasks


def test_a_torn_tasks_file_is_put_back_before_implement_goes_on(
    project: Project, run_cli: RunCli
) -> None:
    tasks = killed_after_two_of_four_tasks(project)
    whole = tasks.read_bytes()
    tasks.write_bytes(whole[: len(whole) // 2])  # what a kill mid-rewrite leaves
    project.fake.control([])
    assert run_cli("resume", "r") == 0
    assert project.state().spec("a").tasks_done == 4
    resumed = project.fake.events("start")[-1]["pid"]
    redone = [r for r in project.fake.events("task") if r["pid"] == resumed]
    assert {r["task"] for r in redone} == {"T003", "T004"}  # the two done stay done


def test_a_torn_tasks_file_without_a_whole_copy_is_made_again(
    project: Project, run_cli: RunCli
) -> None:
    """No whole tasks.yaml was ever read (the kill came before the watcher's first poll):
    the torn file is not trusted, so the restart runs the tasks stage again (``-ti``) and
    every task is built, rather than the half that the cut file still lists."""
    tasks = killed_after_two_of_four_tasks(project)
    lines = tasks.read_text().splitlines(keepends=True)
    tasks.write_text("".join(lines[: len(lines) // 2]))  # cut at a line end: it parses
    (project.repo / ".autospec/state/dag-runs/r/tasks/a.yaml").unlink()  # no whole copy
    project.fake.control([])
    before = len(project.fake.events("start"))
    assert run_cli("resume", "r") == 0
    assert project.fake.events("start")[before]["argv"][:2] == ["run", "-ti"]
    assert project.state().spec("a").tasks_done == 4


def test_a_spec_whose_empty_branch_cleanup_removed_starts_afresh_on_resume(
    project: Project, run_cli: RunCli
) -> None:
    """``dag cleanup`` of an interrupted run removes a branch without commits of its own;
    resume then has nothing of that spec to go on with, and starts it again."""
    project.fake.control([{"match": "^Build b$", "FAIL_AT": "specify"}])
    dag = project.write_dag(dag_text("a", "b"))
    assert run_cli("run", dag, "--run-id", "r", "--no-merge") == 1
    # 1: a's branch, completed and not merged, stays even with --force
    assert run_cli("cleanup", "r", "--force") == 1
    assert "dag/r/b" not in git(project.repo, "branch")
    project.fake.control([])
    assert run_cli("retry", "r", "b") == 0
    assert project.statuses() == {"a": "completed", "b": "completed"}
