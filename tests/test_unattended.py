"""Issue 17 end to end, through the built ``dag.pyz`` and the stand-in autospec: a worktree
setup the agent needs, notifications of exactly the run's events, the report card."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, git
from tests.engine_support import Project, dag_text

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow

SETUP = 'mkdir -p vendor && echo "$DAG_SPEC_ID" > vendor/lib.txt'
# Records each notice: the environment's event and spec, and the JSON it read on stdin.
RECORDER = (
    'n=$(ls "{out}" | grep -c "env$"); echo "$DAG_EVENT $DAG_SPEC_ID" > "{out}/$n.env"; '
    'cat > "{out}/$n.json"'
)


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("build") / "dag.pyz"
    argv = [sys.executable, str(ROOT / "build_zipapp.py"), "--output", str(output)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return output


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


def test_dry_run_shows_the_recipe(pyz: Path, project: Project) -> None:
    dag = _prepare(project, setup=SETUP)
    done = _dag(pyz, project.repo, "run", str(dag), "--dry-run", "--notify", "notify-send dag")
    assert done.returncode == 0, done.stderr
    assert "copied into each worktree (gitignored, never committed): .env\n" in done.stdout
    assert f"setup in each new worktree, before its agent: {SETUP}\n" in done.stdout
    assert "notify on run end, failed, stalled and waiting specs: notify-send dag\n" in (
        done.stdout
    )
