"""dagspec with an autospec below 0.10.4 (issue 13 item 6): the stand-in keeps upstream
v0.7.3's contract (``FAKE_AUTOSPEC_VERSION=0.7.3``): specify checks out its own ``NNN-name``
branch in the worktree, and ``run --spec X`` fails after the agent worked. Real git, real
processes; the first test goes through the built ``dag.pyz``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git
from tests.engine_support import Project, branches, dag_text, start_dag
from tests.fake_autospec_fixture import wait_for

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow

RunCli = Callable[..., int]


@pytest.fixture
def old(project: Project) -> Project:
    project.fake.setenv("VERSION", "0.7.3")
    project.fake.setenv("COMMIT", "always")  # the agent commits, on autospec's own branch
    project.fake.setenv("TASKS", 4)
    project.fake.setenv("PHASES", 2)
    return project


ALL_TASKS = ["T001.txt", "T002.txt", "T003.txt", "T004.txt"]


def own_branches(repo: Path) -> list[str]:
    """Branches autospec's specify made (``NNN-name``)."""
    return [b for b in branches(repo) if b[:3].isdigit()]


def merged_specs(repo: Path) -> list[str]:
    """The spec of each merge commit on main's first-parent line, oldest first."""
    subjects = git(repo, "log", "--first-parent", "--merges", "--reverse", "--format=%s", "main")
    return [line.split(": ")[-1] for line in subjects.splitlines()]


def implemented(repo: Path, spec_dir: str) -> list[str]:
    """The work products of ``spec_dir`` on main."""
    files = git(repo, "ls-tree", "-r", "--name-only", "main", f"fake_impl/{spec_dir}/")
    return [Path(f).name for f in files.split()]


def spec_dir(project: Project, spec_id: str) -> str:
    return Path(project.state().spec(spec_id).spec_dir or "").name


def test_a_run_through_dag_pyz(old: Project, pyz: Path) -> None:
    dag = old.write_dag(dag_text("a", ("b", ["a"]), "c"))
    argv = [sys.executable, str(pyz), "run", str(dag), "--parallel", "--run-id", "r"]
    done = subprocess.run(argv, cwd=old.repo, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert old.statuses() == dict.fromkeys("abc", "completed")
    switched = [e["branch"] for e in old.fake.events("branch") if e["action"] == "switched"]
    assert sorted(switched) == sorted(spec_dir(old, s) for s in "abc")  # v0.7.3 did switch
    assert own_branches(old.repo) == []  # and the work was taken back from each
    assert sorted(merged_specs(old.repo)) == ["a", "b", "c"]
    for spec in "abc":
        assert implemented(old.repo, spec_dir(old, spec)) == ALL_TASKS


def test_an_interrupted_spec_goes_on_without_the_spec_flag(old: Project, run_cli: RunCli) -> None:
    old.fake.control([{"match": "^Build b$", "HANG_AT": "implement:T004"}])
    old.write_dag(dag_text("a", ("b", ["a"])))
    driver = start_dag(old.repo, "run", "dag.yaml", "--run-id", "r")
    wait_for(lambda: old.fake.events("hang"), timeout=30, what="b hangs in implement")
    driver.send_signal(signal.SIGINT)
    driver.communicate(timeout=30)
    assert old.statuses() == {"a": "completed", "b": "interrupted"}
    worktree, mine, theirs = old.worktree("b"), spec_dir(old, "b"), spec_dir(old, "a")
    assert git(worktree, "symbolic-ref", "--short", "HEAD").strip() == mine  # autospec's
    # Something touched a's directory last (an agent, an editor): without --spec v0.7.3
    # would go on with a's spec unless dagspec makes b's the newest again.
    later = (worktree / "specs" / mine).stat().st_mtime_ns + 5_000_000_000
    os.utime(worktree / "specs" / theirs, ns=(later, later))
    old.fake.control([])
    assert run_cli("resume", "r") == 0
    assert old.statuses() == {"a": "completed", "b": "completed"}
    assert old.starts("Build b") == old.starts("Build b")[:1]  # specify's start, then:
    resumed = [s for s in old.starts() if s["argv"][:2] == ["run", "-i"]]
    assert [s["argv"] for s in resumed] == [["run", "-i", "-y"]]
    assert old.fake.events("spec_flag_bug") == []
    assert old.fake.events("prompt_dir_mismatch") == []
    log = Path(old.state().spec("b").log or "").read_text()
    assert f"✓ Using spec: specs/{mine} (via fallback - most recent)" in log
    assert implemented(old.repo, mine) == ALL_TASKS
    assert own_branches(old.repo) == []
    assert merged_specs(old.repo) == ["a", "b"]


@pytest.mark.parametrize("first", ["dag cleanup", "nothing", "rm -rf the worktree"])
def test_a_failed_spec_is_cleaned_up_and_retried(
    old: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], first: str
) -> None:
    old.fake.control([{"match": "^Build a$", "FAIL_AT": "implement"}])
    dag = old.write_dag(dag_text("a", ("b", ["a"])))
    assert run_cli("run", dag, "--run-id", "r") == 1
    assert old.statuses() == {"a": "failed", "b": "blocked"}
    own = spec_dir(old, "a")
    assert own_branches(old.repo) == [own]  # the agent's commits are there, and only there
    capsys.readouterr()
    if first == "rm -rf the worktree":
        shutil.rmtree(old.worktree("a"))  # git still has it registered, on autospec's branch
    if first == "dag cleanup":
        assert run_cli("cleanup", "r") == 1
        out = capsys.readouterr().out
        assert "not this run's worktree" not in out
        assert f"removed {old.worktree('a')}" in out  # nothing uncommitted in it
        assert "kept dag/r/a: 3 commits not on main" in out  # taken back from autospec's
        assert not old.worktree("a").exists() and own_branches(old.repo) == []
    old.fake.control([])
    assert run_cli("retry", "r", "a") == 0
    assert old.statuses() == {"a": "completed", "b": "completed"}
    runs = [s["argv"] for s in old.starts() if s["argv"][0] == "run"]
    assert runs[1] == ["run", "-i", "-y"]  # specify, plan, tasks not again; no --spec
    assert implemented(old.repo, own) == ALL_TASKS
    spec_yaml = git(old.repo, "log", "--format=%s", "main", "--", f"specs/{own}/spec.yaml")
    assert spec_yaml.splitlines()[-1] == f"docs(spec): add specification for {own}"
    assert own_branches(old.repo) == []
    assert merged_specs(old.repo) == ["a", "b"]
