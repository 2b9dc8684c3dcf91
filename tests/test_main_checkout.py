"""Runs start from the main checkout, and a branch named ``dag`` is named in preflight with
what to do (leftovers of issue 12): real git, the fake autospec, through ``main``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git
from tests.engine_support import Project, dag_text
from tests.fake_autospec_fixture import make_autospec_project

pytest_plugins = ("tests.engine_fixtures",)

RunCli = Callable[..., int]


def kept_worktree(project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]) -> Path:
    dag = project.write_dag(dag_text("a"))
    assert run_cli("run", dag, "--run-id", "r1", "--no-merge", "--keep-worktrees") == 0
    capsys.readouterr()
    return project.worktree("a", "r1")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["cwd", "--repo", "unrecorded"])
def test_a_run_inside_another_run_s_worktree_is_refused(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    inside = kept_worktree(project, run_cli, capsys)
    (inside / "inner.yaml").write_text(dag_text("b"))
    if how == "unrecorded":  # the record is gone: the branch dag/r1/a still says whose it is
        for record in (project.repo / ".autospec" / "state" / "dag-runs").glob("r1.yaml"):
            record.unlink()
    monkeypatch.chdir(inside if how != "--repo" else project.repo.parent)
    where = ["--repo", str(inside)] if how == "--repo" else []
    refusal = (
        f"{inside.resolve()} is the worktree of spec a of run r1: start runs from "
        f"the main checkout, `cd {project.repo}` (or `dag --repo {project.repo} run ...`)"
    )
    inner = str(inside / "inner.yaml")
    for args in (["run", inner], ["run", inner, "--dry-run"]):
        assert run_cli(*where, *args) == 1, args
        assert f"dag: error: {refusal}\n" in capsys.readouterr().err
    assert run_cli(*where, "doctor") == 1
    assert f"error    {refusal}" in capsys.readouterr().out
    assert not (inside / ".autospec" / "state" / "dag-runs").exists()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["cwd", "subdirectory", "--repo"])
def test_commands_about_runs_in_a_run_s_worktree_mean_the_main_checkout_s_runs(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    """The runs are recorded in the main checkout: status, list, report and logs read them
    from a run's worktree (their hints name the main checkout, or they would fail where
    typed); the commands that change a run, which may remove the worktree they are typed
    in, say where to type them."""
    inside = kept_worktree(project, run_cli, capsys)
    (inside / "sub").mkdir()
    monkeypatch.chdir(inside / "sub" if how == "subdirectory" else inside)
    where = ["--repo", str(inside)] if how == "--repo" else []
    for args in (["status"], ["report"], ["list"], ["logs", "r1", "a"], ["status", "--json"]):
        assert run_cli(*where, *args) == 0, args
        out = capsys.readouterr().out
        assert "r1" in out or "=== dagspec: attempt 1" in out, (args, out)
    assert run_cli(*where, "status", "r1") == 0
    assert f"next: cd {project.repo} && dag merge r1\n" in capsys.readouterr().out
    assert run_cli(*where, "report", "r1", "--json") == 0
    assert json.loads(capsys.readouterr().out)["specs"][0]["id"] == "a"
    for command in ("resume", "retry", "merge", "cleanup"):
        assert run_cli(*where, command, "r1", *(["a"] if command == "retry" else [])) == 1
        assert capsys.readouterr().err == (
            f"dag: error: {inside.resolve()} is the worktree of spec a of run r1, which "
            f"{command} may remove or recreate: run it from the main checkout, "
            f"`cd {project.repo}`\n"
        )
    monkeypatch.chdir(inside)  # the checkout named from the worktree: still its directory
    assert run_cli("--repo", str(project.repo), "retry", "r1", "a") == 1
    assert capsys.readouterr().err.endswith(f"`cd {project.repo}`\n")
    assert inside.is_dir() and project.statuses("r1") == {"a": "completed"}


@pytest.mark.slow
def test_a_run_s_worktree_means_its_run_when_none_is_named(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """status, report and logs typed in a run's worktree mean that run, not the newest; a
    run named still wins."""
    inside = kept_worktree(project, run_cli, capsys)
    dag = project.write_dag(dag_text("a", "b"), "newer.yaml")
    assert run_cli("run", dag, "--run-id", "r2", "--no-merge") == 0
    capsys.readouterr()
    monkeypatch.chdir(inside)
    assert run_cli("status", "--json") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["run_id"] == "r1"
    assert "note: run r1 (the run of this worktree; name a run to choose another)" in captured.err
    assert run_cli("report", "--json") == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == "r1"
    assert run_cli("report", "r2", "--json") == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == "r2"
    for run_id in ("r1", "r2"):
        with Path(project.state(run_id).spec("a").log or "").open("a") as log:
            log.write(f"the end of {run_id}\n")
    for args in (["logs"], ["logs", "a"]):
        assert run_cli(*args) == 0, args
        out = capsys.readouterr().out
        assert "the end of r1" in out and "the end of r2" not in out, args
    assert run_cli("logs", "b") == 1  # a spec of r2 only
    assert "'b' is neither a run nor a spec of run r1" in capsys.readouterr().err


def run_in_another_checkout(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str], how: str
) -> Path:
    """A run ``wrun`` started from a checkout other than git's main one (the user's linked
    worktree, or a bare repository's worktree), with another run ``r1`` in the main
    checkout; the checkout it is recorded in."""
    assert run_cli("run", project.write_dag(dag_text("a")), "--run-id", "r1", "--no-merge") == 0
    if how == "linked":
        checkout = project.repo.parent / "w6"
        git(project.repo, "worktree", "add", "-q", "-b", "feat", str(checkout))
    else:
        bare = project.repo.parent / "bare7"
        git(project.repo.parent, "clone", "-q", "--bare", str(project.repo), str(bare / ".git"))
        checkout = project.repo.parent / "w7"
        git(bare / ".git", "worktree", "add", "-q", str(checkout), "main")
    make_autospec_project(checkout)
    dag = checkout / "w.yaml"
    dag.write_text(dag_text("a"))
    args = ("run", dag, "--run-id", "wrun", "--no-merge", "--keep-worktrees")
    assert run_cli("--repo", checkout, *args) == 0
    capsys.readouterr()
    return checkout


@pytest.mark.slow
@pytest.mark.parametrize("how", ["linked", "bare"])
def test_commands_about_runs_in_a_run_s_worktree_mean_the_checkout_that_records_it(
    project: Project,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    """A run started from a worktree of the user's own is recorded there, not in git's main
    checkout: its worktrees' commands read it there, and say to cd there."""
    checkout = run_in_another_checkout(project, run_cli, capsys, how)
    inside = checkout.parent / f"{checkout.name}.worktrees" / "wrun" / "a"
    monkeypatch.chdir(inside)
    assert run_cli("status", "wrun") == 0
    assert f"next: cd {checkout} && dag merge wrun\n" in capsys.readouterr().out
    assert run_cli("list") == 0
    out = capsys.readouterr().out
    assert "wrun" in out and "r1" not in out
    assert run_cli("report", "wrun", "--json") == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == "wrun"
    assert run_cli("retry", "wrun", "a") == 1
    assert capsys.readouterr().err == (
        f"dag: error: {inside.resolve()} is the worktree of spec a of run wrun, which "
        f"retry may remove or recreate: run it from the checkout run wrun was started "
        f"from, `cd {checkout}`\n"
    )
    (inside / "inner.yaml").write_text(dag_text("b"))
    assert run_cli("run", "inner.yaml") == 1
    assert capsys.readouterr().err == (
        f"dag: error: {inside.resolve()} is the worktree of spec a of run wrun: start runs "
        f"from the checkout run wrun was started from, `cd {checkout}` (or `dag --repo "
        f"{checkout} run ...`)\n"
    )
    (checkout / ".autospec" / "state" / "dag-runs" / "wrun.yaml").unlink()  # no one records it
    assert run_cli("status", "wrun") == 1  # as in any checkout: its own runs, none
    assert f"no run 'wrun' in {inside.resolve()}" in capsys.readouterr().err


def test_a_worktree_of_the_user_s_own_is_fine(
    runnable: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    other = runnable.parent / "feature-wt"
    git(runnable, "worktree", "add", "-q", "-b", "feature", str(other))
    run_cli("--repo", other, "doctor")
    assert "  ok       not inside another run's worktree\n" in capsys.readouterr().out
    assert run_cli("--repo", other, "status") == 1  # its runs are its own: none yet
    assert f"no runs yet in {other.resolve()}" in capsys.readouterr().err


# --- a branch named dag ----------------------------------------------------------------------

DAG_BRANCH = (
    "is in the way of dagspec's branches dag/<run>/<spec> (git cannot have a branch 'dag' and "
    "branches under 'dag/'): rename it, `git branch -m dag dag-base`"
)


@pytest.mark.parametrize("which", ["base", "other", "named in the DAG"])
def test_a_branch_named_dag_is_refused_in_preflight_with_what_to_do(
    runnable: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    extra = "execution:\n  base_branch: dag\n" if which == "named in the DAG" else ""
    (runnable / "dag.yaml").write_text(extra + dag_text("a"))
    if which == "other":
        git(runnable, "branch", "dag")
    else:
        git(runnable, "branch", "-m", "main", "dag")
    for args in (["run", "dag.yaml", "--run-id", "r2"], ["run", "dag.yaml", "--dry-run"]):
        assert run_cli(*args) == 1
        err = capsys.readouterr().err
        what = "a branch named 'dag'" if which == "other" else "your base branch 'dag'"
        assert f"dag: error: {what} {DAG_BRANCH}" in err
        assert ("execution.base_branch: dag-base" in err) == (which == "named in the DAG")
        assert "--run-id" not in err  # another run id cannot help
    assert not (runnable / ".autospec" / "state" / "dag-runs" / "r2.yaml").exists()
    git(runnable, "branch", "-m", "dag", "dag-base")
    if which != "other":
        (runnable / "dag.yaml").write_text(dag_text("a"))
    assert run_cli("run", "dag.yaml", "--dry-run") == 0


def test_doctor_names_a_branch_named_dag_too(
    runnable: Path, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    (runnable / "dag.yaml").write_text(dag_text("a"))
    git(runnable, "branch", "dag")
    assert run_cli("doctor", "dag.yaml") == 1
    assert f"a branch named 'dag' {DAG_BRANCH}" in capsys.readouterr().out
