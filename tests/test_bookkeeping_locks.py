"""A drive's git bookkeeping has one lock per thing that must be serial
(``dagspec.bookkeeping``): a spec's worktree is made while another spec joins the
integration branch, and a join is made while a worktree is made. With one lock over both,
instant agents one at a time alternated between the two (issue 16).

Real git, the real ``GitWorkspace``; the test holds one lock from its own thread and the
other side must finish without it (a bound of a minute, not a sleep: with one lock it
would wait for ever).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from dagspec import lifecycle, state
from dagspec.attempt import GitWorkspace
from dagspec.dagfile import load_dag
from dagspec.lifecycle import RunState, RunStatus, SpecState
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.engine_support import Project, dag_text

pytest_plugins = ("tests.engine_fixtures",)

BOUND = 60.0  # seconds: far more than a worktree add or a join takes


def _workspace(project: Project) -> tuple[RunState, GitWorkspace]:
    dag = load_dag(project.write_dag(dag_text("a", "b")))
    initial = RunState(
        format=state.FORMAT,
        run_id="r",
        dag_file="dag.yaml",
        dag_name="t",
        repo=str(project.repo),
        status=RunStatus.RUNNING,
        base_branch="main",
        base_commit=git(project.repo, "rev-parse", "main").strip(),
        started_at=state.utcnow(),
        specs=(SpecState(id="a", layer="L0"), SpecState(id="b", layer="L0")),
    )
    paths = RunPaths(project.repo, "r")
    paths.run_dir.mkdir(parents=True)
    workspace = GitWorkspace(paths, dag, str(project.fake.path), project.repo.parent)
    workspace.highest_number(initial)  # the drive's Bookkeeping, read once
    return initial, workspace


def test_a_worktree_is_made_while_another_spec_joins(project: Project) -> None:
    run, workspace = _workspace(project)
    assert workspace.book is not None
    with ThreadPoolExecutor(1) as pool, workspace.book.joining:  # the lock is let go first
        ready = pool.submit(workspace.prepare, run, "b", 0).result(timeout=BOUND)
    assert (ready.path / ".git").is_file()
    assert git(ready.path, "branch", "--show-current").strip() == ready.branch


def test_a_spec_joins_while_a_worktree_is_made(project: Project) -> None:
    run, workspace = _workspace(project)
    ready = workspace.prepare(run, "a", 0)
    (ready.path / "feature.txt").write_text("the agent's work\n")
    run, _ = lifecycle.start(
        run,
        "a",
        now=state.utcnow(),
        worktree=str(ready.path),
        branch=ready.branch,
        spec_dir=None,
        stage=ready.call.stage,
        log=str(workspace.paths.log_file("a")),
    )
    assert workspace.book is not None
    with ThreadPoolExecutor(1) as pool, workspace.book.worktrees:
        pool.submit(workspace.collect, run, "a", ready.path, None).result(timeout=BOUND)
    joined = git(project.repo, "show", "dag/r/_integration:feature.txt")
    assert joined.strip() == "the agent's work"
