"""``dag validate`` from a real git hook: GIT_DIR, GIT_INDEX_FILE and friends set, no TTY."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT, git

pytestmark = pytest.mark.slow

HOOK = """#!/bin/sh
# Reject a commit whose DAG file is invalid (the README's recipe).
exec "{python}" -m dagspec validate workflow.yaml
"""


@pytest.fixture
def hooked_repo(git_repo: Path) -> Path:
    hook = git_repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(HOOK.format(python=sys.executable))
    hook.chmod(0o755)
    shutil.copy(FIXTURES / "dags" / "example.yaml", git_repo / "workflow.yaml")
    return git_repo


def _commit(repo: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    git(repo, "add", "workflow.yaml")
    return subprocess.run(
        ["git", "commit", "-m", "change the workflow"],
        cwd=repo,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_good_dag_file_is_committed(hooked_repo: Path) -> None:
    done = _commit(hooked_repo)
    assert done.returncode == 0, done.stderr
    assert "OK: 6 features in 2 layers" in done.stdout + done.stderr
    assert git(hooked_repo, "log", "-1", "--format=%s").strip() == "change the workflow"


def test_a_broken_dag_file_is_rejected_with_the_error_shown(hooked_repo: Path) -> None:
    _commit(hooked_repo)
    text = (hooked_repo / "workflow.yaml").read_text()
    (hooked_repo / "workflow.yaml").write_text(
        text.replace('depends_on: ["060-user-auth"]', 'depends_on: ["060-user-oauth"]')
    )
    done = _commit(hooked_repo)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "dag: error: workflow.yaml:29: feature '061-rate-limiting' depends on "
        "'060-user-oauth', which is not defined (did you mean '060-user-auth'?)"
    ]
    assert git(hooked_repo, "log", "-1", "--format=%s").strip() == "change the workflow"
    assert "workflow.yaml" in git(hooked_repo, "diff", "--cached", "--name-only")


def test_the_hook_environment_does_not_leak_into_git_calls(
    hooked_repo: Path, tmp_path: Path
) -> None:
    """A hook runs with GIT_INDEX_FILE pointing at a temporary index; the spec check
    must still look at the repository, not wherever those variables point."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    git(elsewhere, "init", "-q")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GIT_DIR": str(elsewhere / ".git"),
        "GIT_INDEX_FILE": str(elsewhere / ".git" / "index.lock"),
        "GIT_WORK_TREE": str(elsewhere),
    }
    shutil.copy(FIXTURES / "dags" / "bad" / "no-description-no-spec.yaml", hooked_repo / "d.yaml")
    spec = hooked_repo / "specs" / "070-undescribed" / "spec.yaml"
    spec.parent.mkdir(parents=True)
    spec.write_text("feature: {}\n")
    done = subprocess.run(
        [sys.executable, "-m", "dagspec", "validate", "d.yaml"],
        cwd=hooked_repo,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "OK: 1 feature in 1 layer\n"), done.stderr
