"""A state file copied under another name with its run id edited to match (issue 11): its
recorded driver pid is not believed (the pid must hold the ``flock`` of that run's own
directory, which no copy can), and ``status``, ``cleanup``, ``resume`` and ``retry`` of the
copy never act on the original run's worktrees. A real driver, held by the fake's gates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from dagspec import state
from dagspec.lifecycle import RunStatus
from dagspec.workspace import RunPaths
from tests.conftest import git, start_dag
from tests.engine_support import Project, dag_text, pid_alive
from tests.fake_autospec_fixture import wait_for

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow


def _dag(repo: Path, *args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "dagspec", *args],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("run_dir", ["none", "symlink", "copied", "worktrees-linked"])
def test_a_copied_state_file_with_its_run_id_edited_never_acts_on_the_original(
    project: Project, run_dir: str
) -> None:
    project.fake.setenv("GATE_DIR", str(project.fake.gate_dir.path))
    project.fake.setenv("GATES", "plan")  # the agents wait there: r1 is being driven
    project.write_dag(dag_text("a", "b"))
    git(project.repo, "add", "-A")
    git(project.repo, "commit", "-qm", "the DAG")
    driver = start_dag(project.repo, "run", "dag.yaml", "--run-id", "r1", "--parallel")
    try:
        wait_for(lambda: len(list(project.fake.gate_dir.path.glob("*.plan.waiting"))) == 2,
                 timeout=60, what="both agents at plan")  # fmt: skip
        original, copy = RunPaths(project.repo, "r1"), RunPaths(project.repo, "r2")
        text = original.state_file.read_text().replace('run_id: "r1"\n', 'run_id: "r2"\n')
        assert 'run_id: "r2"\n' in text
        copy.state_file.write_text(text)
        if run_dir == "symlink":  # even the copy's run directory leads to the original's
            copy.run_dir.symlink_to(original.run_dir.name)
        elif run_dir == "worktrees-linked":  # its own names, its worktrees a link to r1's
            text = text.replace("/r1/", "/r2/")
            copy.state_file.write_text(text)
            root = Path(state.load(original).specs[0].worktree or "").parent.parent
            (root / "r2").symlink_to("r1")
        elif run_dir == "copied":
            copy.run_dir.mkdir()
            (copy.run_dir / "lock").write_text(f"{driver.pid}\n")
        copied = state.load_text(text, "copy")
        assert copied.driver_pid == driver.pid and pid_alive(driver.pid)
        assert not state.driver_alive(copied)  # it does not hold r2's lock
        assert state.driver_alive(state.load(original))
        worktrees = {s.id: Path(s.worktree or "") for s in state.load(original).specs}
        assert all(path.is_dir() for path in worktrees.values())

        for args in (
            ("status", "r2"),
            ("cleanup", "r2", "--force"),
            ("resume", "r2"),
            ("retry", "r2", "a"),
        ):
            code, out = _dag(project.repo, *args)
            assert code != 0, (args, out)
            assert "a state file copied from another run is not run 'r2'" in out, (args, out)
        code, out = _dag(project.repo, "list")
        assert "r1" in out and "running" in out
        assert all(path.is_dir() for path in worktrees.values())
        assert state.load(original).status is RunStatus.RUNNING
        assert driver.poll() is None  # the original's driver was never signalled
    finally:
        project.fake.gate_dir.path.mkdir(parents=True, exist_ok=True)
        for waiting in project.fake.gate_dir.path.glob("*.waiting"):
            name = waiting.name.removesuffix(".waiting")
            (project.fake.gate_dir.path / f"{name}.go").write_text("go\n")
        out, err = driver.communicate(timeout=120)
    assert driver.returncode == 0, out + err  # the original run went on to its end


def test_a_pid_that_holds_the_run_open_without_its_lock_is_not_its_driver(
    tmp_path: Path,
) -> None:
    """A process that has the run's directory open (a shell cd'd into it, a file manager,
    or a driver's pid reused) is not its driver; only the holder of the lock is."""
    paths = RunPaths(tmp_path, "r")
    paths.run_dir.mkdir(parents=True)
    script = (
        "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); "
        "sys.argv[2:] and fcntl.flock(fd, fcntl.LOCK_EX); print(flush=True); input()"
    )
    opened = subprocess.Popen(
        [sys.executable, "-c", script, str(paths.run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    locked = subprocess.Popen(
        [sys.executable, "-c", script, str(paths.run_dir), "lock"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        for process in (opened, locked):
            assert process.stdout is not None and process.stdout.readline() == b"\n"
        run = state.load_text(
            state.dump(
                state.RunState(
                    format=state.FORMAT,
                    run_id="r",
                    dag_file="dag.yaml",
                    dag_name="d",
                    repo=str(tmp_path),
                    status=RunStatus.RUNNING,
                    base_branch="main",
                    base_commit="0" * 40,
                    started_at=state.utcnow(),
                    specs=(),
                    driver_pid=opened.pid,
                )
            ),
            "r",
        )
        assert not state.driver_alive(run)
        assert state.driver_alive(attrs.evolve(run, driver_pid=locked.pid))
    finally:
        for process in (opened, locked):
            process.kill()
            process.communicate()
