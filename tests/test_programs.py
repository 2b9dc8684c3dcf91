"""A command the DAG file or ``--notify`` gives must start a program that exists: checked by
``dag validate`` and before ``dag run``, with the file and line, not hours into the run."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec.lifecycle import RunStatus, SpecStatus
from dagspec.programs import program_problem
from tests.conftest import git
from tests.engine_support import dag_text
from tests.run_states import run, save, spec


@pytest.mark.parametrize(
    "command",
    [
        "git status",  # on PATH
        "sh -c 'exit 0'",
        "cd web && npm ci",  # a builtin first: the shell's to run
        "FOO=1 nosuchtool",  # an assignment first
        "$TOOL --flag",  # a variable
        "~/bin/nosuchtool",  # the shell expands ~
        "(nosuchtool)",  # a subshell
        "if true; then nosuchtool; fi",
        "./scripts/setup.sh --fast",  # executable, in the repository
        "   # a comment only",
    ],
)
def test_commands_that_can_start_or_are_the_shells_pass(command: str, tmp_path: Path) -> None:
    script = tmp_path / "scripts" / "setup.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert program_problem(command, repo=tmp_path) is None


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("5", "runs '5', which is not on PATH: install it"),
        ("notify-sendd 'done'", "runs 'notify-sendd', which is not on PATH"),
        ("./scripts/missing.sh", "runs ./scripts/missing.sh: no such file in "),
        ("/nonexistent/x", "runs /nonexistent/x: no such file: give the right path"),
        ("./scripts", "runs ./scripts, which is not a file: give the program's path"),
        ("scripts/plain.sh", "runs scripts/plain.sh, which is not executable: `chmod +x "),
        ("echo 'unclosed", "is not a shell command (No closing quotation): close its quotes"),
    ],
)
def test_commands_that_cannot_start_say_what_to_do(
    command: str, problem: str, tmp_path: Path
) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "plain.sh").write_text("echo hi\n")
    found = program_problem(command, repo=tmp_path)
    assert found is not None and found.startswith(problem), found


@pytest.mark.parametrize("key", ["setup", "notify"])
def test_validate_names_the_key_and_its_line(
    key: str, git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    (git_repo / "dag.yaml").write_text(dag_text("a", extra=f"execution:\n  {key}: 5"))
    assert run_cli("validate", "dag.yaml") == 1
    err = capsys.readouterr().err
    assert err == (
        f"dag: error: dag.yaml:4: execution.{key} runs '5', which is not on PATH: install it, "
        "give its path, or write the command you meant (it runs as `sh -c COMMAND`)\n"
    )


def test_run_refuses_before_it_starts(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    (git_repo / "dag.yaml").write_text(dag_text("a", extra="execution:\n  setup: nosuchtool"))
    assert run_cli("run", "dag.yaml", "--run-id", "r") == 1
    err = capsys.readouterr().err
    assert err.startswith("dag: error: dag.yaml:4: execution.setup runs 'nosuchtool', which")
    assert err.count("\n") == 1
    assert not (git_repo / ".autospec" / "state" / "dag-runs" / "r.yaml").exists()


@pytest.mark.slow
def test_notify_flag_is_checked_by_preflight_through_the_archive(pyz: Path, git_repo: Path) -> None:
    (git_repo / "dag.yaml").write_text(dag_text("a"))
    done = subprocess.run(
        [sys.executable, str(pyz), "run", "dag.yaml", "--dry-run", "--notify", "5"],
        cwd=git_repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("dag: error:")]
    assert (  # among the other problems preflight finds in this bare repository
        "dag: error: --notify runs '5', which is not on PATH: install it, give its path, or "
        "write the command you meant (it runs as `sh -c COMMAND`)"
    ) in errors


def _script(repo: Path, name: str, *, mode: int = 0o755) -> None:
    (repo / name).write_text("#!/bin/sh\nmkdir -p vendor\n")
    (repo / name).chmod(mode)


@pytest.mark.parametrize(
    ("prepare", "problem"),
    [
        # a worktree holds only committed files: the script is not there
        ("untracked", "runs ./setup.sh, which is not committed, and a worktree holds only "),
        ("staged", "runs ./setup.sh, which is not committed, and a worktree holds only "),
        # `chmod +x` in the checkout, never committed: mode 100644 in every worktree
        ("chmod", "runs ./setup.sh, which is not executable in git (mode 100644 at HEAD)"),
    ],
)
def test_a_setup_script_must_be_committed_and_executable_in_git(
    prepare: str,
    problem: str,
    git_repo: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    if prepare == "chmod":
        _script(git_repo, "setup.sh", mode=0o644)
        git(git_repo, "add", "setup.sh")
        git(git_repo, "commit", "-q", "-m", "setup")
        (git_repo / "setup.sh").chmod(0o755)
    else:
        _script(git_repo, "setup.sh")
        if prepare == "staged":
            git(git_repo, "add", "setup.sh")
    (git_repo / "dag.yaml").write_text(dag_text("a", extra="execution:\n  setup: ./setup.sh"))
    assert run_cli("validate", "dag.yaml") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"dag: error: dag.yaml:4: execution.setup {problem}"), err
    hint = "`git update-index --chmod=+x setup.sh`" if prepare == "chmod" else "`git add setup.sh`"
    assert f"{hint} and commit it" in err


def test_a_committed_link_is_judged_by_the_script_it_leads_to(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    """A link committed without its script: the worktree gets a dangling link."""
    _script(git_repo, "real.sh")
    (git_repo / "setup.sh").symlink_to("real.sh")
    git(git_repo, "add", "setup.sh")
    git(git_repo, "commit", "-q", "-m", "the link only")
    (git_repo / "dag.yaml").write_text(dag_text("a", extra="execution:\n  setup: ./setup.sh"))
    assert run_cli("validate", "dag.yaml") == 1
    assert "setup.sh, a link to real.sh, which is not committed" in capsys.readouterr().err
    git(git_repo, "add", "real.sh")
    git(git_repo, "commit", "-q", "-m", "and its script")
    assert run_cli("validate", "dag.yaml") == 0


def test_a_committed_executable_or_copied_setup_script_passes(
    git_repo: Path, run_cli: Callable[..., int]
) -> None:
    _script(git_repo, "setup.sh")
    git(git_repo, "add", "setup.sh")
    git(git_repo, "commit", "-q", "-m", "setup")
    (git_repo / "local").mkdir()
    _script(git_repo, "local/mine.sh")
    (git_repo / ".gitignore").write_text("local/\n")
    git(git_repo, "add", ".gitignore")  # each worktree has the committed rules only
    git(git_repo, "commit", "-q", "-m", "ignore local/")
    for setup in ("./setup.sh", "local/mine.sh"):
        extra = f"execution:\n  setup: {setup}\n  copy: [local]"
        (git_repo / "dag.yaml").write_text(dag_text("a", extra=extra))
        assert run_cli("validate", "dag.yaml") == 0, setup


@pytest.mark.parametrize("command", ["resume", "retry"])
def test_notify_flag_is_checked_by_resume_and_retry(
    command: str,
    git_repo: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    save(run(git_repo, "r", spec("a", SpecStatus.FAILED), status=RunStatus.FAILED))
    args = [command, "r", *(["a"] if command == "retry" else []), "--notify", "nosuchtool"]
    assert run_cli(*args) == 1
    assert capsys.readouterr().err.startswith(
        "dag: error: --notify runs 'nosuchtool', which is not on PATH"
    )
