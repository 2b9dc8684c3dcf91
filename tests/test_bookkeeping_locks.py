"""A drive's git bookkeeping (``dagspec.bookkeeping``), with real git and the real
``GitWorkspace``.

One lock per thing that must be serial: a spec's worktree is made while another spec joins
the integration branch, and a join is made while a worktree is made. With one lock over
both, instant agents one at a time alternated between the two (issue 16). The test holds
one lock from its own thread and the other side must finish without it (a bound of a
minute, not a sleep: with one lock it would wait for ever).

A spec started from the integration branch right after another spec joined it, before that
one's completion is recorded, finds that spec's directory in its worktree: it is never
taken for its own (a breaker's fan of 30 instant specs lost a dozen features that way).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs

from dagspec import lifecycle, state
from dagspec.attempt import GitWorkspace
from dagspec.dagfile import load_dag
from dagspec.lifecycle import RunState, RunStatus
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.engine_support import Project, dag_text
from tests.run_states import run, spec

pytest_plugins = ("tests.engine_fixtures",)

BOUND = 60.0  # seconds: far more than a worktree add or a join takes


def _workspace(project: Project) -> tuple[RunState, GitWorkspace]:
    dag = load_dag(project.write_dag(dag_text("a", "b", ("c", ["a"]), ("d", ["a"]))))
    specs = (spec(i) for i in "abcd")
    base = git(project.repo, "rev-parse", "main").strip()
    initial = attrs.evolve(
        run(project.repo, "r", *specs, status=RunStatus.RUNNING), base_commit=base
    )
    paths = RunPaths(project.repo, "r")
    paths.run_dir.mkdir(parents=True)
    workspace = GitWorkspace(paths, dag, str(project.fake.path), project.repo.parent)
    workspace.highest_number(initial)  # the drive's Bookkeeping, read once
    return initial, workspace


def _started(run: RunState, workspace: GitWorkspace, spec_id: str) -> tuple[RunState, Path]:
    """``spec_id`` prepared and recorded running, as the scheduler does; its worktree."""
    ready = workspace.prepare(run, spec_id, 0)
    assert ready.call is not None
    run, _ = lifecycle.start(
        run,
        spec_id,
        now=state.utcnow(),
        worktree=str(ready.path),
        branch=ready.branch,
        spec_dir=None,
        stage=ready.call.stage,
        log=str(workspace.paths.log_file(spec_id)),
    )
    return run, ready.path


def _specified(worktree: Path, name: str) -> None:
    """What specify leaves: ``specs/<name>/spec.yaml``."""
    (worktree / "specs" / name).mkdir(parents=True)
    (worktree / "specs" / name / "spec.yaml").write_text(f"feature: {name}\n")


def test_a_worktree_is_made_while_another_spec_joins(project: Project) -> None:
    run, workspace = _workspace(project)
    run, path = _started(run, workspace, "a")
    assert workspace.collect(run, "a", path, None) is None  # a joined: c may start
    assert workspace.book is not None
    for spec_id in ("b", "c"):  # without dependencies; after its dependency joined
        with ThreadPoolExecutor(1) as pool, workspace.book.joining:  # lock let go first
            ready = pool.submit(workspace.prepare, run, spec_id, 0).result(timeout=BOUND)
        assert (ready.path / ".git").is_file()
        assert git(ready.path, "branch", "--show-current").strip() == ready.branch


def test_a_spec_joins_while_a_worktree_is_made(project: Project) -> None:
    run, workspace = _workspace(project)
    run, path = _started(run, workspace, "a")
    (path / "feature.txt").write_text("the agent's work\n")
    assert workspace.book is not None
    with ThreadPoolExecutor(1) as pool, workspace.book.worktrees:
        pool.submit(workspace.collect, run, "a", path, None).result(timeout=BOUND)
    joined = git(project.repo, "show", "dag/r/_integration:feature.txt")
    assert joined.strip() == "the agent's work"


def test_a_spec_never_takes_the_directory_of_one_joined_but_not_yet_recorded(
    project: Project,
) -> None:
    run, workspace = _workspace(project)
    run, path_a = _started(run, workspace, "a")
    _specified(path_a, "001-build-a")
    assert workspace.collect(run, "a", path_a, None) == "001-build-a"
    # a's completion is not recorded yet (the scheduler records it after the collect), and
    # c and d, which depend on it, start from the integration branch, which has its work
    ready = workspace.prepare(run, "d", 0)
    assert (ready.path / "specs" / "001-build-a" / "spec.yaml").is_file()
    assert ready.spec_dir is None
    assert ready.call is not None and ready.call.stage == "specify"
    run, path_c = _started(run, workspace, "c")
    _specified(path_c, "002-build-c")
    later = time.time() + 60  # a's directory the newest, by a clock ahead or a touch
    os.utime(path_c / "specs" / "001-build-a", (later, later))
    assert workspace.collect(run, "c", path_c, None) == "002-build-c"
