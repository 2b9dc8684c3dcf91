"""A bug in dagspec itself: exit 3, one ``dag: error:`` line naming the crash log, and a log
that holds what a bug report needs (README, Commands)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from dagspec import __version__, crash, git
from dagspec.commands import list_runs
from dagspec.errors import EXIT_BUG

RunCli = Callable[..., int]
CRASH_LINE = re.compile(
    r"dag: error: a bug in dagspec \(RuntimeError: the bug\): "
    r"please report it with its crash log, (?P<log>\S+dag-crash-\S+\.log)\n"
)


def _bug(*args: object, **kwargs: object) -> int:
    raise RuntimeError("the bug\nand a second line that stays in the log")


@pytest.fixture
def crash_log(
    git_repo: Path,
    crash_dir: Path,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., str]:
    """``crash_log(*args)``: run ``dag list ARGS`` with a bug in it; check the exit code and
    the one line on stderr; return the text of the log that line names."""
    monkeypatch.setattr(list_runs, "list_runs", _bug)

    def run(*args: str) -> str:
        assert run_cli("list", *args) == EXIT_BUG == 3
        out, err = capsys.readouterr()
        assert out == ""
        match = CRASH_LINE.fullmatch(err)
        assert match, err
        log = Path(match["log"])
        assert log.parent == crash_dir
        return log.read_text()

    return run


def test_a_bug_exits_3_with_one_line_naming_the_crash_log(
    crash_log: Callable[..., str], git_repo: Path
) -> None:
    text = crash_log("--json")
    assert text.startswith(f"dag: {__version__}\n")
    assert f"python: {platform.python_version()} ({sys.executable})\n" in text
    assert f"platform: {platform.platform()}\n" in text
    assert f"git: {git.run(git_repo, '--version').strip()}\n" in text
    assert f"argv: {['list', '--json']!r}\n" in text
    assert f"cwd: {git_repo}\n" in text
    assert "Traceback (most recent call last):" in text
    assert text.endswith("RuntimeError: the bug\nand a second line that stays in the log\n")


def test_without_git_the_log_still_says_so(
    crash_log: Callable[..., str], crash_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug_after_git_went(*args: object, **kwargs: object) -> int:
        monkeypatch.setenv("PATH", str(crash_dir))  # the repository was found; now no git
        return _bug()

    monkeypatch.setattr(list_runs, "list_runs", bug_after_git_went)
    text = crash_log()
    assert "\ngit: unknown (DagspecError: git is not installed or not on PATH" in text


def test_when_no_log_can_be_written_the_traceback_goes_to_stderr(
    git_repo: Path,
    tmp_path: Path,
    run_cli: RunCli,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(list_runs, "list_runs", _bug)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    assert run_cli("list") == 3
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):\n")
    last = err.splitlines()[-1]
    assert last.startswith(
        "dag: error: a bug in dagspec (RuntimeError: the bug): please report it with "
        "the traceback above (no crash log: [Errno 2] No such file or directory:"
    )


@pytest.mark.slow
def test_a_bug_inside_the_built_archive_writes_its_log(
    pyz: Path, git_repo: Path, tmp_path: Path
) -> None:
    # The archive's own code, with one command replaced by a bug, as `python dag.pyz` runs it.
    program = (
        "import sys\n"
        f"sys.path.insert(0, {str(pyz)!r})\n"
        "from dagspec.commands import list_runs\n"
        "def bug(*args, **kwargs):\n"
        "    raise RuntimeError('the bug')\n"
        "list_runs.list_runs = bug\n"
        "from dagspec.cli import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    crash_dir = tmp_path / "tmp"
    crash_dir.mkdir()
    argv = [sys.executable, "-I", "-S", "-c", program, "list"]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TMPDIR": str(crash_dir)}
    done = subprocess.run(argv, cwd=git_repo, env=env, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (3, ""), done.stderr
    match = CRASH_LINE.fullmatch(done.stderr)
    assert match, done.stderr
    text = Path(match["log"]).read_text()
    assert text.startswith(f"dag: {__version__}\npython: ")
    assert "\ngit: git version " in text
    assert 'File "dag.pyz/dagspec/cli.py"' in text  # the archive's code, its source shown
    assert "    return _dispatch(commands, args)\n" in text


def test_help_lists_exit_3(run_cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--help") == 0
    assert "3 a bug in dagspec" in " ".join(capsys.readouterr().out.split())


def _raise(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as raised:
        return raised


def _raise_elsewhere(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as raised:
        return raised


def test_a_bug_met_in_specs_has_one_log_per_distinct_bug(crash_dir: Path) -> None:
    """The same type raised along the same lines is one bug, whatever its message; another
    type, or the same type from another line, is another."""
    first = crash.spec_log(*[_raise(KeyError("a"))] * 2, "spec 'a' of run r")
    assert crash.spec_log(*[_raise(KeyError("b"))] * 2, "spec 'b' of run r") == first
    other_type = crash.spec_log(*[_raise(TypeError("a"))] * 2, "spec 'c' of run r")
    other_line = crash.spec_log(*[_raise_elsewhere(KeyError("a"))] * 2, "spec 'd' of run r")
    assert len({first, other_type, other_line}) == 3
    assert sorted(crash_dir.iterdir()) == sorted([first, other_type, other_line])
    text = first.read_text()
    assert "\nspec: spec 'a' of run r\n\nTraceback (most recent call last):\n" in text
    assert text.endswith("KeyError: 'a'\n")
