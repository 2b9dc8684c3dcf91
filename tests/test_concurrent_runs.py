"""Two ``dag run`` of one repository at once, from one checkout or from the main checkout
and a linked worktree of it: distinct spec numbers, both merged, neither run stepping on
the other (README, How a run works)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dagspec import spec_dirs
from tests.conftest import git
from tests.engine_support import Gatekeeper, Project, dag_text, start_dag
from tests.fake_autospec_fixture import make_autospec_project

pytest_plugins = ("tests.engine_fixtures",)
pytestmark = pytest.mark.slow


def _finish(*drivers: subprocess.Popen[str]) -> None:
    for driver in drivers:
        out, err = driver.communicate(timeout=60)
        assert driver.returncode == 0, out + err


def _checkout(project: Project, where: str) -> tuple[Path, str]:
    """The checkout the second run starts from, and its branch."""
    if where == "main checkout":
        return project.repo, "main"
    linked = project.repo.parent / "linked"
    git(project.repo, "worktree", "add", "-q", "-b", "side", str(linked))
    make_autospec_project(linked)
    return linked, "side"


@pytest.mark.parametrize("mode", ["auto", "always"])  # autospec 0.10.x, 0.7.3 (contract §1.5)
@pytest.mark.parametrize("where", ["main checkout", "linked worktree"])
def test_two_runs_at_once_hand_out_distinct_spec_numbers(
    project: Project, gates: Gatekeeper, where: str, mode: str
) -> None:
    checkout, branch = _checkout(project, where)
    project.fake.setenv("BRANCH", mode)
    project.fake.setenv("GATES", "specify")
    gates.hold("specify", 2)  # both agents started, each with its number, before either ends
    project.write_dag(dag_text("alpha"), "alpha.yaml")
    (checkout / "banana.yaml").write_text(dag_text("banana"))
    first = start_dag(project.repo, "run", "alpha.yaml", "--run-id", "ra")
    second = start_dag(checkout, "run", "banana.yaml", "--run-id", "rb")
    _finish(first, second)
    gates.check()
    made = [
        git(project.repo, "ls-tree", "--name-only", f"{b}:specs").split() for b in ("main", branch)
    ]
    dirs = sorted(set(made[0] + made[1]))
    assert sorted(d.split("-", 1)[1] for d in dirs) == ["build-alpha", "build-banana"]
    assert len({spec_dirs.number_of(d) for d in dirs}) == 2, dirs
    assert "dag(ra): alpha" in git(project.repo, "log", "--format=%s", "main")
    assert "dag(rb): banana" in git(project.repo, "log", "--format=%s", branch)
