"""The stand-in's ``FAKE_AUTOSPEC_VERSION=0.7.3``: upstream v0.7.3's observable contract.

What sets v0.7.3 apart (issue 13, contract §1.5): specify checks out its own ``NNN-name``
branch even in a linked worktree, and ``run --spec X`` is broken: autospec looks for the
stage's artifact in ``specs/-X/``, so every continuation with ``--spec`` fails after the agent
has worked. Going on without ``--spec``, with the spec directory the most recently modified
one, works.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import git
from tests.fake_autospec_fixture import FakeAutospec, make_autospec_project
from tests.test_fake_autospec import (
    DESCRIPTION,
    NAME,
    add_worktree,
    autospec,
    branch,
    statuses,
)


@pytest.fixture
def project(git_repo: Path, fake_autospec: FakeAutospec) -> Path:
    """The git_repo with a constitution, and the fake on PATH."""
    make_autospec_project(git_repo)
    return git_repo


@pytest.fixture
def legacy(fake_autospec: FakeAutospec) -> FakeAutospec:
    fake_autospec.setenv("VERSION", "0.7.3")
    fake_autospec.setenv("TASKS", 4)
    fake_autospec.setenv("PHASES", 2)
    return fake_autospec


def test_it_says_its_version(legacy: FakeAutospec) -> None:
    assert autospec("--version").out == "autospec fake-0.7.3\n"


@pytest.mark.slow
@pytest.mark.parametrize(("version", "switched"), [("0.7.3", True), ("0.10.4", False)])
def test_specify_in_a_linked_worktree_switches_branch_below_0_10_4(
    project: Path, fake_autospec: FakeAutospec, version: str, switched: bool
) -> None:
    fake_autospec.setenv("VERSION", version)
    worktree = add_worktree(project, "wt")
    result = autospec("run", "-s", DESCRIPTION, cwd=worktree)
    assert result.code == 0, result.err
    assert branch(worktree) == (NAME if switched else "dag/wt")
    assert (f"Switched to a new branch '{NAME}'" in result.out) is switched


@pytest.mark.slow
def test_a_spec_flag_fails_after_the_agent_worked(
    project: Path, legacy: FakeAutospec, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert autospec("run", "-s", DESCRIPTION).code == 0
    monkeypatch.setenv("SPECIFY_FEATURE", NAME)
    result = autospec("run", "-pti", "--spec", NAME)
    assert result.code == 1
    assert result.err.endswith(f"plan.yaml not found in specs/-{NAME}\n"), result.err
    assert (project / "specs" / NAME / "plan.yaml").is_file()  # the agent's work is there
    assert legacy.events("spec_flag_bug")[0]["checked"] == f"specs/-{NAME}"


@pytest.mark.slow
def test_implement_with_a_spec_flag_fails_after_its_first_phase(
    project: Path, legacy: FakeAutospec, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert autospec("run", "-spt", DESCRIPTION).code == 0
    monkeypatch.setenv("SPECIFY_FEATURE", NAME)
    result = autospec("run", "-i", "--spec", NAME)
    assert result.code == 1
    assert f"failed to parse specs/-{NAME}/tasks.yaml" in result.err
    assert list(statuses(project).values()) == ["Completed"] * 2 + ["Pending"] * 2


@pytest.mark.slow
def test_the_same_call_works_from_0_10_4(
    project: Path, fake_autospec: FakeAutospec, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert autospec("run", "-spt", DESCRIPTION).code == 0
    monkeypatch.setenv("SPECIFY_FEATURE", NAME)
    assert autospec("run", "-i", "--spec", NAME).code == 0
    assert set(statuses(project).values()) == {"Completed"}


@pytest.mark.slow
def test_without_spec_flag_the_most_recently_modified_spec_goes_on(
    project: Path, legacy: FakeAutospec, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert autospec("run", "-s", "Add alpha widget").code == 0
    git(project, "checkout", "-q", "main")
    assert autospec("run", "-s", "Add beta gadget").code == 0
    git(project, "checkout", "-q", "main")  # no NNN- branch: detection falls back to mtime
    alpha = project / "specs" / "001-alpha-widget"
    later = (project / "specs" / "002-beta-gadget").stat().st_mtime_ns + 1_000_000_000
    os.utime(alpha, ns=(later, later))
    monkeypatch.setenv("SPECIFY_FEATURE", alpha.name)
    result = autospec("run", "-pti")
    assert result.code == 0, result.err
    assert f"✓ Using spec: specs/{alpha.name} (via fallback - most recent)" in result.out
    assert set(statuses(project, alpha.name).values()) == {"Completed"}


def test_a_spec_directory_without_its_number_cannot_be_read(project: Path) -> None:
    (project / "specs" / "hello").mkdir(parents=True)
    (project / "specs" / "hello" / "spec.yaml").write_text("feature: {}\n")
    result = autospec("run", "-p", "--spec", "hello")
    assert result.code == 1
    assert result.err == "Error: could not parse spec directory name: hello\n"
