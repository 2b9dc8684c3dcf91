"""Chaos: SIGKILL the driver at seeded random moments of a run, resume each time, and check
that nothing is lost, nothing finished is done twice, and every spec lands on main."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dagspec import state
from dagspec.lifecycle import SpecStatus
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.engine_support import Project, dag_text, start_dag
from tests.fake_autospec_fixture import wait_for

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow

KILLS = 20
SEED = 20261124
SPECS = ("a", "b", ("c", ["a"]), ("d", ["a", "b"]), ("e", ["c"]), ("f", ["d", "e"]))


def names_of(project: Project, spec_id: str) -> set[str]:
    """What a start record of this spec's agent can name: its description or its directory."""
    try:
        spec_dir = state.load(RunPaths(project.repo, "r")).spec(spec_id).spec_dir
    except KeyError:
        spec_dir = None
    return {f"Build {spec_id}"} | ({Path(spec_dir).name} if spec_dir else set())


def wait_for_steps(project: Project, driver: subprocess.Popen[str], events: int) -> None:
    """Until the fakes have logged ``events`` records in all, or the driver has ended."""
    done = lambda: len(project.fake.events()) >= events or driver.poll() is not None  # noqa: E731
    wait_for(done, timeout=30, what=f"{events} fake autospec records")


def test_killed_twenty_times_the_run_still_completes_once(project: Project) -> None:
    """Each kill comes a seeded random number of the fakes' steps after the driver started
    (plus a random moment), so the kills fall all through the run whatever the machine's
    speed: during worktree creation, stages and collection; once every spec is completed,
    a random moment of the merge."""
    # Steps slow enough that the kills, a few steps apart, cannot all miss the run on a
    # fast engine: at 0.01 s a loaded machine saw the run end after 11 kills.
    project.fake.setenv("STEP_SECONDS", "0.05")
    project.fake.setenv("TASKS", 6)
    project.write_dag(dag_text(*SPECS))
    rng = random.Random(SEED)
    completed: set[str] = set()
    kills = 0
    for attempt in range(KILLS):
        args = ("run", "dag.yaml", "--parallel", "--max-parallel", "2", "--run-id", "r")
        seen = len(project.fake.events())
        starts = len(project.fake.events("start"))
        driver = start_dag(project.repo, *(args if attempt == 0 else ("resume", "r")))
        if len(completed) == len(SPECS):
            time.sleep(rng.uniform(0.2, 0.6))
        else:
            wait_for_steps(project, driver, seen + rng.randint(1, 5))
            time.sleep(rng.uniform(0, 0.05))
        if driver.poll() is not None:
            driver.communicate()  # its pipes closed, not left to the garbage collector
            break  # it got to the end before this kill
        driver.send_signal(signal.SIGKILL)
        driver.communicate(timeout=30)
        kills += 1
        current = project.state()  # the state file always parses
        for record in project.fake.events("start")[starts:]:
            named = {*record["argv"]}
            assert not any(named & names_of(project, spec) for spec in completed), record
        completed = {s.id for s in current.specs if s.status is SpecStatus.COMPLETED}
    assert kills >= 15
    final = start_dag(project.repo, "resume", "r")
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, out + err
    run = project.state()
    assert {s.status for s in run.specs} == {SpecStatus.COMPLETED}
    assert all(s.merged for s in run.specs)
    on_main = git(project.repo, "ls-tree", "-r", "--name-only", "main").split()
    for spec in run.specs:
        assert f"fake_impl/{Path(spec.spec_dir or '').name}/T004.txt" in on_main, spec.id
    dirs = [Path(s.spec_dir or "").name[:3] for s in run.specs]
    assert len(set(dirs)) == len(dirs)
    # Kills fell during joins to the integration branch too: main still gains one merge
    # commit per spec on its first-parent line, and no commit made to combine dependencies.
    since = f"{run.base_commit}..main"
    merged = git(project.repo, "log", "--first-parent", "--format=%s", since).splitlines()
    assert sorted(m.rsplit(": ", 1)[-1] for m in merged) == sorted(s.id for s in run.specs)
    assert "bring in" not in git(project.repo, "log", "--format=%s", "main")
