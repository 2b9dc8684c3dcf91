"""The run's integration branch and the final merge built on it (README, How a run works
and Merging): real git in tmp repositories, and whole runs of the fake autospec
in-process and through dag.pyz."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import integration
from dagspec.errors import DagspecError
from dagspec.integration import JoinConflict, RewrittenBase, integration_branch
from dagspec.merge import merge_run
from dagspec.removal import remove_merged_worktrees
from dagspec.workspace import RunPaths
from tests.conftest import git
from tests.engine_support import Project, branches, dag_text
from tests.test_merge import RUN, add_commit, branch, load, make_run, snapshot, tip

pytest_plugins = ("tests.engine_fixtures",)
ROOT = Path(__file__).resolve().parent.parent
RunCli = Callable[..., int]


def spec_branch(repo: Path, spec_id: str, start: str, files: dict[str, str]) -> str:
    """A spec's branch as the engine leaves it: from ``start``, one commit of its work."""
    git(repo, "branch", branch(spec_id), start)
    git(repo, "checkout", "-q", branch(spec_id))
    add_commit(repo, files, f"work of {spec_id}")
    git(repo, "checkout", "-q", "main")
    return tip(repo, branch(spec_id))


def join(repo: Path, spec_id: str, base: str) -> str | None:
    message = f"Merge {branch(spec_id)}: {spec_id}\n"
    return integration.join(
        repo, RUN, base, spec_id=spec_id, branch=branch(spec_id), message=message
    )


def merges_since(repo: Path, base: str, rev: str = "main") -> list[str]:
    """Subjects of the merge commits ``rev`` has beyond ``base``, all of them, first-parent
    line or not."""
    return git(repo, "log", "--merges", "--format=%s", rev, f"^{base}").splitlines()


# --- joining ----------------------------------------------------------------------------------


def test_each_spec_joins_as_one_merge_commit_and_only_once(git_repo: Path) -> None:
    base = tip(git_repo)
    a = spec_branch(git_repo, "a", base, {"a.txt": "a\n"})
    first = join(git_repo, "a", base)
    assert first is not None
    assert git(git_repo, "rev-parse", f"{first}^1", f"{first}^2").split() == [base, a]
    assert join(git_repo, "a", base) is None  # a killed driver's second try adds nothing
    assert tip(git_repo, integration_branch(RUN)) == first
    assert tip(git_repo) == base  # the base branch is not touched


def test_a_join_conflict_names_the_files_and_moves_nothing(git_repo: Path) -> None:
    base = tip(git_repo)
    spec_branch(git_repo, "a", base, {"same.txt": "a\n"})
    spec_branch(git_repo, "b", base, {"same.txt": "b\n"})
    joined = join(git_repo, "a", base)
    with pytest.raises(JoinConflict, match=r"conflicts .* in same\.txt: merge .*_integration"):
        join(git_repo, "b", base)
    assert tip(git_repo, integration_branch(RUN)) == joined
    assert git(git_repo, "status", "--porcelain") == ""


def test_joining_a_deleted_branch_is_a_clear_error(git_repo: Path) -> None:
    with pytest.raises(DagspecError, match="dag/r1/a is gone"):
        join(git_repo, "a", tip(git_repo))


# --- the final merge --------------------------------------------------------------------------


def joined_run(repo: Path) -> tuple[str, str]:
    """A completed run of a <- b: a joined, b started from the integration tip and joined.
    Returns the base commit and the integration tip."""
    base = tip(repo)
    make_run(repo, {"a": ((), {}), "b": (("a",), {})}, branches=False)
    spec_branch(repo, "a", base, {"a.txt": "a\n"})
    join(repo, "a", base)
    spec_branch(repo, "b", tip(repo, integration_branch(RUN)), {"b.txt": "b\n"})
    join(repo, "b", base)
    return base, tip(repo, integration_branch(RUN))


def test_an_unmoved_base_is_moved_to_the_integration_tip(git_repo: Path) -> None:
    base, integrated = joined_run(git_repo)
    run, dag = load(make_paths(git_repo))
    new, report = merge_run(git_repo, run, dag)
    assert tip(git_repo) == integrated
    assert [s.commit for s in report.specs] == [
        git(git_repo, "rev-parse", f"{integrated}^1").strip(),
        integrated,
    ]
    assert all(s.merged for s in new.specs)
    assert merges_since(git_repo, base) == [f"Merge {branch('b')}: b", f"Merge {branch('a')}: a"]


def test_a_moved_base_gets_one_merge_per_spec_on_its_new_tip(git_repo: Path) -> None:
    base, _ = joined_run(git_repo)
    add_commit(git_repo, {"user.txt": "meanwhile\n"}, "the user's own commit")
    run, dag = load(make_paths(git_repo))
    merged, _ = merge_run(git_repo, run, dag)
    first_parent = git(git_repo, "log", "--first-parent", "--format=%s", f"{base}..main")
    assert first_parent.splitlines() == [
        f"Merge {branch('b')}: b",
        f"Merge {branch('a')}: a",
        "the user's own commit",
    ]
    assert (git_repo / "a.txt").exists() and (git_repo / "b.txt").exists()  # fast-forwarded
    assert "bring in" not in git(git_repo, "log", "--format=%s", "main")
    # b started from a's join: its own commit is replayed onto a's new merge, so no merge
    # of a (nor b's commit) is in the history twice (issue 11), whatever parent is followed
    assert merges_since(git_repo, base) == [f"Merge {branch('b')}: b", f"Merge {branch('a')}: a"]
    subjects = git(git_repo, "log", "--format=%s", "main", f"^{base}").splitlines()
    assert subjects.count("work of b") == 1 and subjects.count("work of a") == 1
    replayed = git(git_repo, "log", "-1", "--format=%B", "main^2").strip().splitlines()
    assert replayed[0] == "work of b"
    assert replayed[-1] == f"(replayed from commit {tip(git_repo, branch('b'))})"
    published = tip(git_repo)  # a driver killed before saving ``merged`` merges nothing again
    assert merge_run(git_repo, run, dag)[0] == merged and tip(git_repo) == published
    remove_merged_worktrees(git_repo, merged)  # b's branch was replayed, so it is merged
    assert not [b for b in branches(git_repo) if b in (branch("a"), branch("b"))]


def make_paths(repo: Path) -> RunPaths:
    return RunPaths(repo, RUN)


def test_a_rewritten_base_is_never_merged_into(git_repo: Path) -> None:
    add_commit(git_repo, {"secret.txt": "password\n"}, "add the deploy key by mistake")
    base, _ = joined_run(git_repo)
    git(git_repo, "reset", "-q", "--hard", "HEAD~1")  # the user drops the leaking commit
    before = snapshot(git_repo)
    run, dag = load(make_paths(git_repo))
    for dry_run in (True, False):
        with pytest.raises(RewrittenBase) as caught:
            merge_run(git_repo, run, dag, dry_run=dry_run)
        message = str(caught.value)
        assert "main was rewritten" in message
        assert f"{base[:7]} add the deploy key by mistake" in message
        assert "nothing was merged" in message and "dag merge r1 --onto-current" in message
        assert "\n" not in message
    assert snapshot(git_repo) == before


@pytest.mark.slow
def test_onto_current_replays_each_spec_without_the_dropped_commits(git_repo: Path) -> None:
    add_commit(git_repo, {"secret.txt": "password\n"}, "add the deploy key by mistake")
    joined_run(git_repo)
    git(git_repo, "reset", "-q", "--hard", "HEAD~1")
    add_commit(git_repo, {"user.txt": "rewritten\n"}, "the user's rewrite")
    rewritten = tip(git_repo)
    run, dag = load(make_paths(git_repo))
    new, report = merge_run(git_repo, run, dag, onto_current=True)
    assert all(s.merged for s in new.specs)
    first_parent = git(git_repo, "log", "--first-parent", "--format=%s", f"{rewritten}..main")
    assert first_parent.splitlines() == [f"Merge {branch('b')}: b", f"Merge {branch('a')}: a"]
    assert "deploy key" not in git(git_repo, "log", "--format=%s", "main")
    files = git(git_repo, "ls-tree", "-r", "--name-only", "main").split()
    assert {"a.txt", "b.txt", "user.txt"} <= set(files) and "secret.txt" not in files
    assert [s.commit for s in report.specs][-1] == tip(git_repo)
    # a driver killed before saving ``new``: the next merge finds the replays on main
    published = tip(git_repo)
    again, report = merge_run(git_repo, run, dag, onto_current=True)
    assert tip(git_repo) == published
    assert [(s.merged, s.merge_commit) for s in again.specs] == [
        (s.merged, s.merge_commit) for s in new.specs
    ]


def test_onto_current_leaves_a_conflicting_spec_off_with_its_dependents(git_repo: Path) -> None:
    joined_run(git_repo)
    git(git_repo, "reset", "-q", "--hard", "HEAD~0")
    git(git_repo, "commit", "-q", "--amend", "-m", "initial, reworded")  # main rewritten
    add_commit(git_repo, {"a.txt": "the user's a\n"}, "the user's a.txt")
    before = snapshot(git_repo)
    run, dag = load(make_paths(git_repo))
    new, report = merge_run(git_repo, run, dag, onto_current=True)
    outcomes = {s.spec_id: (s.outcome.value, s.files, s.blocked_by) for s in report.specs}
    assert outcomes == {"a": ("conflict", ("a.txt",), ()), "b": ("blocked", (), ("a",))}
    assert not any(s.merged for s in new.specs)
    assert snapshot(git_repo) == before


# --- whole runs -------------------------------------------------------------------------------


def first_parent_merges(repo: Path, base: str) -> list[str]:
    return git(repo, "log", "--first-parent", "--merges", "--format=%s", f"{base}..main").split(
        "\n"
    )[:-1]


@pytest.mark.slow
def test_a_diamond_run_adds_one_merge_per_spec_and_no_bring_in(
    project: Project, run_cli: RunCli
) -> None:
    base = tip(project.repo)
    dag = project.write_dag(dag_text("a", ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])))
    assert run_cli("run", dag, "--parallel", "--run-id", "r", "--keep-worktrees") == 0
    assert len(first_parent_merges(project.repo, base)) == 4
    assert len(merges_since(project.repo, base)) == 4  # no duplicate, no combining commit
    assert "bring in" not in git(project.repo, "log", "--format=%s", "main")
    assert "dag/r/_integration" not in branches(project.repo)  # all merged: done with
    for dep in ("a", "b", "c"):  # d started from a commit with its dependencies' work
        git(project.repo, "merge-base", "--is-ancestor", f"dag/r/{dep}", "dag/r/d")


@pytest.mark.slow
def test_a_conflict_fails_the_spec_that_causes_it_as_it_completes(
    project: Project, run_cli: RunCli
) -> None:
    project.fake.setenv("TOUCH", "shared.txt")
    dag = project.write_dag(dag_text("a", "b", ("c", ["b"]), ("d", ["a"])))
    assert run_cli("run", dag, "--run-id", "r") == 1  # one at a time: a, then b
    state = project.state()
    assert project.statuses() == {"a": "completed", "b": "failed", "c": "blocked", "d": "completed"}
    assert "shared.txt" in (state.spec("b").error or "")
    assert "`dag retry r b`" in (state.spec("b").error or "")
    assert state.spec("c").blocked_by == ("b",)
    assert project.starts("Build c") == []  # blocked at once, never started
    assert state.spec("a").merged and not state.spec("b").merged
    assert git(project.repo, "rev-parse", "--verify", "-q", "dag/r/b").strip()  # work kept
    assert "dag/r/_integration" in branches(project.repo)  # for the retry of b and then c
    run_cli("cleanup", "r")  # main has everything the integration branch has: it goes
    assert branches(project.repo) == ["dag/r/b", "main"]  # b's unmerged work stays


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("build") / "dag.pyz"
    argv = [sys.executable, str(ROOT / "build_zipapp.py"), "--output", str(output)]
    subprocess.run(argv, check=True, capture_output=True)
    return output


def dag_pyz(pyz: Path, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(pyz), *args]
    return subprocess.run(argv, cwd=repo, capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_a_rewritten_base_is_refused_by_dag_merge_with_one_line(
    project: Project, pyz: Path
) -> None:
    add_commit(project.repo, {"secret.txt": "key\n"}, "leak the key")
    dag = project.write_dag(dag_text("a"))
    done = dag_pyz(pyz, project.repo, "run", str(dag), "--run-id", "r", "--no-merge")
    assert done.returncode == 0, done.stderr
    git(project.repo, "reset", "-q", "--hard", "HEAD~1")
    done = dag_pyz(pyz, project.repo, "merge", "r")
    assert done.returncode == 1
    assert done.stderr.startswith("dag: error: the branch main was rewritten")
    assert "leak the key" in done.stderr and len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert git(project.repo, "log", "--format=%s", "main").splitlines() == ["initial"]
    done = dag_pyz(pyz, project.repo, "merge", "r", "--onto-current")
    assert done.returncode == 0, done.stderr
    assert "leak the key" not in git(project.repo, "log", "--format=%s", "main")
    assert len(first_parent_merges(project.repo, tip(project.repo, "main~1"))) == 1


def forty_five() -> str:
    """45 features: a few roots, each later one depending on one or two earlier ones."""
    features: list[str | tuple[str, list[str]]] = []
    for i in range(45):
        deps = sorted({f"f{j:02d}" for j in (i - 1, i - 4) if j >= 0 and i % 5})
        features.append((f"f{i:02d}", deps) if deps else f"f{i:02d}")
    return dag_text(*features)


@pytest.mark.slow
def test_a_45_feature_dag_adds_one_merge_per_spec_through_dag_pyz(
    project: Project, pyz: Path
) -> None:
    base = tip(project.repo)
    dag = project.write_dag(forty_five())
    done = dag_pyz(pyz, project.repo, "run", str(dag), "--parallel", "--run-id", "r")
    assert done.returncode == 0, done.stderr
    merges = first_parent_merges(project.repo, base)
    assert sorted(m.split(": ")[-1] for m in merges) == [f"f{i:02d}" for i in range(45)]
    assert len(merges_since(project.repo, base)) == 45
    assert "bring in" not in git(project.repo, "log", "--format=%s", "main")


@pytest.mark.slow
def test_a_join_conflict_resolved_by_hand_as_the_message_says_then_retried(
    project: Project, run_cli: RunCli
) -> None:
    project.fake.setenv("TOUCH", "shared.txt")
    dag = project.write_dag(dag_text("a", "b", ("c", ["b"]), ("d", ["a"])))
    assert run_cli("run", dag, "--run-id", "r") == 1
    worktree = Path(project.state().spec("b").worktree or "")
    merged = subprocess.run(
        ["git", "merge", "-q", "dag/r/_integration"], cwd=worktree, capture_output=True
    )
    assert merged.returncode == 1  # the conflict the message named
    (worktree / "shared.txt").write_text("a and b, reconciled\n")
    git(worktree, "commit", "-q", "-am", "reconcile b with a")
    failed = project.state().spec("b")
    assert (failed.exit_code, failed.agent_done, failed.attempts) == (0, True, 1)
    before = len(project.starts())
    assert run_cli("retry", "r", "b") == 0
    # b's agent had finished: the retry only joins its work (with the fix); c starts after
    assert [s["argv"] for s in project.starts()[before:]] == [["run", "-spti", "-y", "Build c"]]
    assert project.state().spec("b").attempts == 2
    assert project.statuses() == dict.fromkeys("abcd", "completed")
    assert all(s.merged for s in project.state().specs)
    assert "bring in" not in git(project.repo, "log", "--format=%s", "main")


def test_an_integration_branch_deleted_during_the_merge_is_gone_as_wanted(git_repo: Path) -> None:
    """The merge reads the run's branches once, then deletes ``_integration`` at its end:
    a user who deleted it meanwhile (``git branch -D``) must not fail a merge that moved the
    base branch already."""
    name = integration_branch(RUN)
    git(git_repo, "branch", name, "main")
    listed = integration.run_branches(git_repo, RUN)
    assert f"refs/heads/{name}" in listed
    git(git_repo, "branch", "-D", name)
    integration.drop(git_repo, RUN, listed=listed)
    assert integration.run_branches(git_repo, RUN) == {}
