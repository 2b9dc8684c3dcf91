"""dagspec's own git writes are bookkeeping (issue 12): no user hook vetoes them, no user
setting changes them, and its merges on the base branch are signed when the user signs.

The first tests drive the git verbs directly on a diamond (two specs' branches that a third
brings together); the last ones run whole DAGs of the fake autospec.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import git_commit, git_merge, git_refs, git_worktree, integration, worktree
from tests.conftest import git, signing_leftovers
from tests.engine_support import Project, branches, dag_text, start_dag
from tests.fake_autospec_fixture import make_autospec_project

pytest_plugins = ("tests.engine_fixtures",)
RunCli = Callable[..., int]
DIAMOND = ("a", "b", ("c", ["a", "b"]))


def commit_on(repo: Path, branch: str, name: str, text: str = "") -> None:
    """A branch from main with one commit adding ``name`` (made before any hook is in)."""
    git(repo, "checkout", "-q", "-b", branch, "main")
    (repo / name).write_text(text or f"{name}\n")
    git(repo, "add", name)
    git(repo, "commit", "-qm", f"add {name}")
    git(repo, "checkout", "-q", "main")


@pytest.fixture
def diamond(git_repo: Path) -> Path:
    """Branches ``dag/r/a`` and ``dag/r/b``, each with a file of its own."""
    commit_on(git_repo, "dag/r/a", "a.txt")
    commit_on(git_repo, "dag/r/b", "b.txt")
    return git_repo


def install_hook(repo: Path, name: str, tmp_path: Path) -> Path:
    """A hook under ``core.hooksPath=.githooks`` that records that it ran and fails."""
    marker = tmp_path / f"{name}.ran"
    hooks = repo / ".githooks"
    hooks.mkdir(exist_ok=True)
    (hooks / name).write_text(
        f"#!/bin/sh\ntouch '{marker}'\necho 'rejected by {name}' >&2\nexit 1\n"
    )
    (hooks / name).chmod(0o755)
    git(repo, "config", "core.hooksPath", ".githooks")
    return marker


def bring_together(repo: Path, tmp_path: Path, deps: tuple[str, ...] = ("a", "b")) -> Path:
    """What dagspec writes for a spec ``c`` behind ``deps``: each joins the run's integration
    branch as a merge commit, and ``c``'s worktree starts from its tip."""
    base = git(repo, "rev-parse", "main").strip()
    for dep in deps:
        message = f"Merge dag/r/{dep}: {dep}\n"
        integration.join(repo, "r", base, spec_id=dep, branch=f"dag/r/{dep}", message=message)
    path = tmp_path / "wts" / "r" / "c"
    start = integration.tip(repo, "r", base)
    worktree.create_worktree(repo, path, branch="dag/r/c", start=start)
    return path


@pytest.mark.parametrize(
    "hook",
    [
        "commit-msg",
        "pre-commit",
        "prepare-commit-msg",
        "pre-merge-commit",
        "post-commit",
        "post-checkout",
        "post-merge",
        "reference-transaction",
    ],
)
def test_no_user_hook_can_veto_dagspec_s_writes(diamond: Path, tmp_path: Path, hook: str) -> None:
    marker = install_hook(diamond, hook, tmp_path)
    path = bring_together(diamond, tmp_path)
    assert (path / "a.txt").exists() and (path / "b.txt").exists()
    assert git(path, "log", "-1", "--format=%s").strip() == "Merge dag/r/b: b"
    (path / "work.txt").write_text("the agent's work\n")
    assert git_commit.commit_all(path, "dag(r): c")
    git_merge.set_branch(diamond, "dag/r/_merged", "dag/r/c")
    assert not marker.exists()
    assert git(path, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    "setting",
    [
        ("merge.ff", "only"),
        ("merge.ff", "false"),
        ("merge.verifySignatures", "true"),
        ("commit.template", "/no/such/template"),
        ("merge.conflictStyle", "zdiff3"),
        ("commit.gpgSign", "false"),
    ],
)
def test_no_user_setting_changes_dagspec_s_merges(
    diamond: Path, tmp_path: Path, setting: tuple[str, str]
) -> None:
    git(diamond, "config", "--global", *setting)
    one = bring_together(diamond, tmp_path, deps=("a",))  # a merge, whatever merge.ff
    parents = git(one, "log", "-1", "--format=%P").split()
    assert parents[1:] == [git(diamond, "rev-parse", "dag/r/a").strip()]
    git(diamond, "worktree", "remove", str(one))
    git(diamond, "branch", "-D", "dag/r/c", "dag/r/_integration")
    both = bring_together(diamond, tmp_path)
    parents = git(both, "log", "-1", "--format=%P").split()
    assert len(parents) == 2 and git(both, "log", "-1", "--format=%B").strip() == (
        "Merge dag/r/b: b"
    )


def test_user_output_settings_do_not_reach_what_dagspec_reads(diamond: Path) -> None:
    for key, value in (("color.ui", "always"), ("log.showSignature", "true")):
        git(diamond, "config", "--global", key, value)
    assert git_refs.commits_lacking(diamond, "dag/r/a", ["main"])[0].endswith(" add a.txt")
    assert git_worktree.worktrees(diamond) == {diamond: "main"}


def test_a_failed_creation_removes_only_what_it_made(diamond: Path, tmp_path: Path) -> None:
    """The dependency conflicts: its branch and worktree go, everything else stays."""
    commit_on(diamond, "dag/r/x", "a.txt", "other content\n")
    git(diamond, "worktree", "add", "-q", str(tmp_path / "wts" / "other" / "a"), "dag/r/a")
    with pytest.raises(integration.JoinConflict, match="conflicts"):
        bring_together(diamond, tmp_path, deps=("a", "x"))
    assert "dag/r/c" not in branches(diamond)
    assert not (tmp_path / "wts" / "r" / "c").exists()
    assert (tmp_path / "wts" / "other" / "a" / "a.txt").exists()
    assert {b for b in git_worktree.worktrees(diamond).values()} == {"main", "dag/r/a"}


# --- whole runs -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("hook", ["commit-msg", "pre-commit"])
def test_a_diamond_completes_under_a_conventional_commits_hook(
    project: Project, run_cli: RunCli, tmp_path: Path, hook: str
) -> None:
    hooks = project.repo / ".githooks"
    hooks.mkdir()
    (hooks / hook).write_text(
        "#!/bin/sh\ngrep -qE '^(feat|fix|chore)(\\(.+\\))?: ' \"${1:-/dev/null}\" || {\n"
        "  echo 'not a conventional commit' >&2; exit 1; }\n"
    )
    (hooks / hook).chmod(0o755)
    git(project.repo, "config", "core.hooksPath", ".githooks")
    project.write_dag(dag_text(*DIAMOND))
    assert run_cli("run", "dag.yaml", "--run-id", "r") == 0
    assert all(project.state().spec(s).merged for s in "abc")
    assert git(project.repo, "config", "core.hooksPath").strip() == ".githooks"


@pytest.mark.slow
def test_a_diamond_completes_with_merge_ff_only(project: Project, run_cli: RunCli) -> None:
    git(project.repo, "config", "--global", "merge.ff", "only")
    git(project.repo, "config", "--global", "pull.rebase", "true")
    project.write_dag(dag_text(*DIAMOND))
    assert run_cli("run", "dag.yaml", "--run-id", "r") == 0
    assert all(project.state().spec(s).merged for s in "abc")


@pytest.mark.slow
def test_the_merges_on_the_base_branch_are_signed_like_the_user_s(
    project: Project, run_cli: RunCli, tmp_path: Path, own_tmpdir: Path
) -> None:
    key = tmp_path / "signing-key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(key)],
        check=True,
    )
    allowed = tmp_path / "allowed-signers"
    allowed.write_text(f"test@example.com {key.with_suffix('.pub').read_text()}")
    for name, value in (
        ("commit.gpgsign", "true"),
        ("gpg.format", "ssh"),
        ("user.signingkey", str(key)),
        ("gpg.ssh.allowedSignersFile", str(allowed)),
    ):
        git(project.repo, "config", name, value)
    base = git(project.repo, "rev-parse", "main").strip()
    project.write_dag(dag_text(*DIAMOND))
    assert run_cli("run", "dag.yaml", "--run-id", "r") == 0
    added = git(project.repo, "log", "--first-parent", "--format=%G? %s", f"{base}..main")
    assert added.splitlines() == [f"G Merge dag/r/{s}: {s}" for s in "cba"]
    work = git(project.repo, "log", "--no-merges", "--format=%G? %s", f"{base}..main")
    assert {line[:2] for line in work.splitlines() if " dag(r): " in line} == {"G "}
    assert signing_leftovers(own_tmpdir) == []  # git's signing buffers, in $TMPDIR


# --- runs that never collide -----------------------------------------------------------------


@pytest.mark.slow
def test_a_fresh_run_after_a_failed_one_completes(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "plan"}])
    project.write_dag(dag_text(*DIAMOND))
    assert run_cli("run", "dag.yaml", "--run-id", "first") == 1
    kept = project.worktree("a", "first")
    assert kept.is_dir()
    project.fake.control([])
    assert run_cli("run", "dag.yaml", "--run-id", "second") == 0
    assert all(project.state("second").spec(s).merged for s in "abc")
    assert project.state("second").autospec_version == "autospec fake-0.10.4"  # recorded
    assert kept.is_dir() and "dag/first/a" in branches(project.repo)
    assert not project.worktree("a", "second").parent.exists()  # merged: its run dir went too


@pytest.mark.slow
def test_a_repository_next_door_with_the_same_ids_does_not_collide(
    project: Project, run_cli: RunCli, tmp_path: Path
) -> None:
    project.fake.control([{"match": "^Build a$", "FAIL_AT": "plan"}])
    project.write_dag(dag_text("a"))
    assert run_cli("run", "dag.yaml", "--run-id", "r", "--no-merge") == 1
    project.fake.control([])
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    (other / "dag.yaml").write_text(dag_text("a"))
    make_autospec_project(other)
    git(other, "add", "dag.yaml")
    git(other, "commit", "-qm", "initial")
    assert run_cli("run", other / "dag.yaml", "--repo", other, "--run-id", "r") == 0
    assert project.worktree("a").is_dir()  # the first repository's failed spec, untouched


@pytest.mark.slow
def test_two_runs_started_at_once_each_get_their_own_id_and_worktrees(project: Project) -> None:
    project.write_dag(dag_text("a", "b"))
    drivers = [start_dag(project.repo, "run", "dag.yaml", "--no-merge") for _ in range(2)]
    outputs = [d.communicate(timeout=120) for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0], outputs
    runs = sorted(p.stem for p in (project.repo / ".autospec/state/dag-runs").glob("*.yaml"))
    assert len(runs) == 2
    for run_id in runs:
        assert project.statuses(run_id) == {"a": "completed", "b": "completed"}
        for spec_id in "ab":
            assert git(project.worktree(spec_id, run_id), "symbolic-ref", "--short", "HEAD") == (
                f"dag/{run_id}/{spec_id}\n"
            )


@pytest.mark.slow
def test_a_feature_named_merged_with_a_dirty_checkout_parks_the_result(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write_dag(dag_text("merged"))
    git(project.repo, "add", "dag.yaml")
    git(project.repo, "commit", "-qm", "the DAG")
    (project.repo / "README.md").write_text("my own change\n")
    assert run_cli("run", "dag.yaml", "--run-id", "r") == 1
    out, err = capsys.readouterr()
    assert "dag: warning: " in err and "has uncommitted changes on main" in err
    assert "git merge --ff-only dag/r/_merged" in out
    assert {"dag/r/merged", "dag/r/_merged"} <= set(branches(project.repo))
    assert (project.repo / "README.md").read_text() == "my own change\n"


@pytest.mark.slow
def test_a_parked_result_taken_after_the_base_moved_leaves_nothing_to_clean_up(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """Parked, then the user commits on main: `dag merge` builds the merges again on the new
    tip (b's commits replayed, as it sits on a's join) and fast-forwards; the old
    `_merged` is obsolete (its changes are all on main) and goes, and cleanup has nothing
    it would call lost."""
    project.write_dag(dag_text("a", ("b", ["a"])))
    git(project.repo, "add", "dag.yaml")
    git(project.repo, "commit", "-qm", "the DAG")
    (project.repo / "README.md").write_text("my own change\n")
    assert run_cli("run", "dag.yaml", "--run-id", "r", "--keep-worktrees") == 1
    git(project.repo, "commit", "-qam", "my own commit")
    assert run_cli("merge", "r", "--cleanup") == 0
    assert "dag/r/_merged" not in branches(project.repo)
    capsys.readouterr()
    assert run_cli("cleanup", "r") == 0
    assert "kept" not in capsys.readouterr().out
    assert branches(project.repo) == ["main"]
    subjects = git(project.repo, "log", "--format=%s", "main").splitlines()
    merges = [s.split(":")[0] for s in subjects if s.startswith("Merge dag/r/")]
    assert sorted(merges) == ["Merge dag/r/a", "Merge dag/r/b"]
