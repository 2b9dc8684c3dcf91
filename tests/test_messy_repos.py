"""Repositories set up unusually, where a run used to pass preflight and then fail at git, or
dagspec misread the repository: each one runs whole, on real git and the fake autospec, or is
refused by preflight in one line before any agent starts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git
from tests.engine_support import Project, dag_text

pytest_plugins = ("tests.engine_fixtures",)
RunCli = Callable[..., int]


def _completes(project: Project, run_cli: RunCli, *features: str) -> None:
    project.write_dag(dag_text(*features))
    assert run_cli("run", "dag.yaml", "--run-id", "r") == 0
    assert all(project.state().spec(s).merged for s in features)


# --- settings that reach dagspec's own commits -----------------------------------------------


@pytest.mark.slow
def test_a_sparse_checkout_in_cone_mode_runs(project: Project, run_cli: RunCli) -> None:
    """Worktrees inherit the cone; the agent's specs/ lies outside it, which `add -A` refused."""
    (project.repo / "docs").mkdir()
    (project.repo / "docs" / "a.md").write_text("a\n")
    git(project.repo, "add", "docs")
    git(project.repo, "commit", "-qm", "docs")
    git(project.repo, "sparse-checkout", "set", "--cone", "docs")
    _completes(project, run_cli, "a", "b")
    assert git(project.repo, "ls-tree", "-r", "--name-only", "main", "specs").strip()


@pytest.mark.slow
def test_autocrlf_with_safecrlf_runs(project: Project, run_cli: RunCli) -> None:
    """dagspec's `add -A` refused every agent's work: "LF would be replaced by CRLF"."""
    git(project.repo, "config", "core.autocrlf", "true")
    git(project.repo, "config", "core.safecrlf", "true")
    _completes(project, run_cli, "a")


@pytest.mark.slow
def test_an_identity_only_on_the_base_branch_commits_the_work(
    project: Project, run_cli: RunCli
) -> None:
    """Preflight finds the identity on main; a spec's branch dag/r/a has none of its own."""
    home = Path.home()
    (home / "work-id.inc").write_text("[user]\n\tname = Tess\n\temail = tess@example.com\n")
    (home / ".gitconfig").write_text(
        "[user]\n\tuseConfigOnly = true\n"
        f'[includeIf "onbranch:main"]\n\tpath = {home / "work-id.inc"}\n'
    )
    project.fake.setenv("COMMIT", "always")  # the agent commits too, on dag/r/b
    base = git(project.repo, "rev-parse", "main").strip()
    _completes(project, run_cli, "a", "b")
    authors = git(project.repo, "log", "--format=%an <%ae>|%cn <%ce>", f"{base}..main")
    assert set(authors.splitlines()) == {"Tess <tess@example.com>|Tess <tess@example.com>"}
    commits = [e for e in project.fake.events("commit") if e.get("sha")]
    assert commits and not [e for e in project.fake.events("commit") if e.get("error")]


# --- what dagspec reads of the repository -----------------------------------------------------


@pytest.mark.slow
def test_a_tag_named_like_the_base_branch_runs_and_merges(
    project: Project, run_cli: RunCli
) -> None:
    """`symbolic-ref --short HEAD` says heads/main then: "the branch 'heads/main' has no commit"."""
    git(project.repo, "tag", "main")
    _completes(project, run_cli, "a")
    assert project.state().base_branch == "main"
    assert git(project.repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert git(project.repo, "rev-parse", "HEAD") == git(
        project.repo, "rev-parse", "refs/heads/main"
    )


@pytest.mark.slow
def test_a_git_directory_kept_apart_from_the_checkout_runs_and_merges(
    project: Project, run_cli: RunCli, tmp_path: Path
) -> None:
    """`git init --separate-git-dir`: `git worktree list` names the git directory as the main
    checkout (git 2.39), and preflight ran `git status` there."""
    git(project.repo, "init", "-q", "--separate-git-dir", str(tmp_path / "apart.git"))
    assert (project.repo / ".git").is_file()
    _completes(project, run_cli, "a")
    assert git(project.repo, "rev-parse", "HEAD") == git(project.repo, "rev-parse", "main")
    assert git(project.repo, "status", "--porcelain", "--untracked-files=no") == ""


# --- refused before any agent starts ----------------------------------------------------------


def _lfs_configured(repo: Path, program: str) -> None:
    """What `git lfs install` and `git lfs track '*.bin'` leave, with ``program`` as git-lfs."""
    (repo / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-qm", "lfs")
    for key, value in (
        ("process", f"{program} filter-process"),
        ("smudge", f"{program} smudge -- %f"),
        ("clean", f"{program} clean -- %f"),
        ("required", "true"),
    ):
        git(repo, "config", f"filter.lfs.{key}", value)


def test_a_required_filter_whose_program_is_missing_is_refused_by_preflight(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    """git-lfs configured, not installed: every `git worktree add` failed after preflight."""
    _lfs_configured(project.repo, "git-lfs-not-installed")
    project.write_dag(dag_text("a"))
    assert run_cli("run", "dag.yaml", "--run-id", "r") == 1
    err = capsys.readouterr().err
    assert err == (
        "dag: error: every spec's worktree would fail to check out: the filter 'lfs' "
        ".gitattributes uses is required (filter.lfs.required) and its command "
        "`git-lfs-not-installed filter-process` runs 'git-lfs-not-installed', which is not on "
        "PATH: install it, give its path, or write the command you meant (it runs as `sh -c "
        "COMMAND`); or unset filter.lfs.required\n"
    )
    assert not project.worktree("a").parent.exists()


def test_a_required_filter_that_can_start_or_is_unused_passes(
    project: Project, run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    _lfs_configured(project.repo, "cat")
    git(project.repo, "config", "filter.other.required", "true")
    git(project.repo, "config", "filter.other.process", "not-installed-either")
    project.write_dag(dag_text("a"))
    assert run_cli("run", "dag.yaml", "--run-id", "r", "--dry-run") == 0
    assert "ok       the programs of the filters git requires" in capsys.readouterr().out
