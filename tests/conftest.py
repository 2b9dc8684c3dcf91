"""Shared fixtures: real git repositories in tmp dirs, an isolated HOME, the CLI in-process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_autospec_fixture import fake_autospec  # noqa: F401  (registers the fixture)
from tests.pyz_fixture import pyz  # noqa: F401  (registers the fixture)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def git(cwd: Path, *args: str) -> str:
    """Run git for a test's own set-up and checks (the code under test has dagspec.git)."""
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


def start_dag(repo: Path, *args: str, text: bool = True) -> subprocess.Popen[Any]:
    """``python -m dagspec ARGS`` in ``repo`` as a user would start it: its own process,
    our environment, stdout and stderr pipes (not a terminal)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "dagspec", *args],
        cwd=repo,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=text,
    )


@pytest.fixture(autouse=True)
def _isolate(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes to the real HOME, inherits GIT_* variables, colour settings or a
    terminal size (a pytest-xdist worker has ``COLUMNS=80``: piped output was cut there and
    not in a run without ``-n``)."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test\n\temail = test@example.com\n"
        "[init]\n\tdefaultBranch = main\n"
        "[commit]\n\tgpgsign = false\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in list(os.environ):
        if (
            name.startswith(("GIT_", "FAKE_AUTOSPEC_", "AUTOSPEC_"))
            and name != "GIT_CONFIG_NOSYSTEM"
        ):
            monkeypatch.delenv(name)
    for name in (
        "NO_COLOR",
        "FORCE_COLOR",
        "DAGSPEC_AUTOSPEC",
        "XDG_CONFIG_HOME",
        "COLUMNS",
        "LINES",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm")


@pytest.fixture
def own_tmpdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A $TMPDIR of the test's own for every process it starts (a signing git writes
    ``.git_signing_buffer_tmp*`` there, and leaves it when killed), short enough for
    gpg-agent's socket under a GNUPGHOME made there; removed after."""
    place = Path(tempfile.mkdtemp(prefix="dag-t-"))
    monkeypatch.setenv("TMPDIR", str(place))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    try:
        yield place
    finally:
        shutil.rmtree(place, ignore_errors=True)


def signing_leftovers(place: Path) -> list[str]:
    """What a signing git left in ``place``, its $TMPDIR (``.git_signing_buffer_tmp*``)."""
    return sorted(p.name for p in place.iterdir() if p.name.startswith(".git_signing"))


@pytest.fixture
def git_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real repository on branch ``main`` with one commit; the current directory."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("demo\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    monkeypatch.chdir(repo)
    return repo


@pytest.fixture
def crash_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where crash logs go during the test (the temporary directory, made private)."""
    from dagspec import crash

    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setenv("TMPDIR", str(directory))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    monkeypatch.setattr(crash, "_SPEC_LOGS", {})  # the bugs met in specs: none yet
    return directory


@pytest.fixture
def write_dag(git_repo: Path) -> Callable[..., Path]:
    """Write a DAG file (text) into the repository and return its path."""

    def write(text: str, name: str = "dag.yaml") -> Path:
        path = git_repo / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., int]]:
    """Call ``dagspec.cli.main`` in-process, as the user would type the arguments."""
    from dagspec.cli import main

    def run(*args: str | os.PathLike[str]) -> int:
        return main([os.fspath(a) for a in args])

    yield run


@pytest.fixture
def runnable(git_repo: Path, fake_autospec: Any) -> Path:  # noqa: F811 (the fixture, by name)
    """``git_repo`` as ``autospec init`` leaves it, with the stand-in autospec first on
    PATH: what preflight asks of a run (a dry run included)."""
    from tests.fake_autospec_fixture import make_autospec_project

    make_autospec_project(git_repo)
    return git_repo
