"""Fixtures of the engine's tests: ``project`` (a repository driven by the fake autospec) and
``gates`` (the fake's gates answered from a thread). Load with
``pytest_plugins = ("tests.engine_fixtures",)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine_support import Gatekeeper, Project
from tests.fake_autospec_fixture import FakeAutospec, make_autospec_project


@pytest.fixture
def project(git_repo: Path, fake_autospec: FakeAutospec) -> Project:
    """A repository set up by ``autospec init``, with a small, fast fake autospec."""
    make_autospec_project(git_repo)
    fake_autospec.setenv("TASKS", 2)
    fake_autospec.setenv("PHASES", 1)
    fake_autospec.setenv("OUTPUT_LINES", 1)
    return Project(git_repo, fake_autospec)


@pytest.fixture
def gates(project: Project) -> Iterator[Gatekeeper]:
    keeper = Gatekeeper(project.fake.gate_dir.path)
    yield keeper
    keeper.close()
