"""``dag demo``, and the engine end to end through the built ``dag.pyz``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git
from tests.engine_support import Project, dag_text

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow

RunCli = Callable[..., int]


def test_the_demo_runs_the_example_and_merges_it(
    tmp_path: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("demo", "--dir", tmp_path / "demo") == 0
    repo = tmp_path / "demo" / "repo"
    out = capsys.readouterr().out
    assert f"The demo repository is {repo}." in out
    assert "run demo completed: 6 completed" in out
    # one command said once: the run's end said `next: dag --repo REPO status demo` three
    # lines above the `dag status demo` of the list after `cd REPO`
    assert out.count("status demo") == 1 and "next:" not in out, out
    agent = tmp_path / "demo" / "autospec"
    assert out.endswith(  # its autospec serves the user's runs: the directory is not to go yet
        f"\n  export DAGSPEC_AUTOSPEC={agent}\n"
        "Keep the directory while your runs use it; delete it when you are done.\n"
    )
    specs = sorted(p.name[:4] for p in (repo / "specs").iterdir())
    assert specs == ["001-", "002-", "003-", "004-", "005-", "006-"]
    assert len(list((repo / "src").iterdir())) == 6
    log = git(repo, "log", "--format=%s", "main")
    assert log.count("dag(demo): ") == 6
    # every spec merged: its worktree, the run's directory and the worktree root went
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["autospec", "repo"]
    assert git(repo, "status", "--porcelain") == ""


def test_the_demo_autospec_goes_on_with_a_spec_like_the_real_one(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its --version names the contract it keeps (0.10.4, so dagspec passes --spec), and it
    goes on without --spec too: a second run of the demo DAG continues every spec."""
    assert run_cli("demo", "--dir", tmp_path / "demo") == 0
    repo = tmp_path / "demo" / "repo"
    monkeypatch.setenv("DAGSPEC_AUTOSPEC", str(tmp_path / "demo" / "autospec"))
    assert run_cli("--repo", repo, "run", repo / "dag.yaml", "--run-id", "again") == 0
    said = subprocess.run(
        [str(tmp_path / "demo" / "autospec"), "run", "-i", "-y"],
        cwd=repo,
        env={**os.environ, "SPECIFY_FEATURE": min(p.name for p in (repo / "specs").iterdir())},
        capture_output=True,
        text=True,
        check=False,
    )
    assert said.returncode == 0, said.stderr


def test_the_demo_wants_a_new_directory(
    tmp_path: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine\n")
    assert run_cli("demo", "--dir", tmp_path / "taken") == 1
    assert "is not empty" in capsys.readouterr().err


def test_the_demo_runs_from_the_pyz(pyz: Path, tmp_path: Path) -> None:
    argv = [sys.executable, str(pyz), "demo", "--dir", str(tmp_path / "demo")]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run demo completed: 6 completed" in done.stdout
    assert done.stdout.count(" status demo") == 1, done.stdout  # said once, after `cd`


def test_a_run_through_the_pyz(pyz: Path, project: Project) -> None:
    project.write_dag(dag_text("a", ("b", ["a"]), "c"))
    argv = [sys.executable, str(pyz), "run", "dag.yaml", "--parallel", "--run-id", "r"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(argv, capture_output=True, text=True, cwd=project.repo, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert project.statuses() == dict.fromkeys("abc", "completed")
    assert all(s.merged for s in project.state().specs)
