"""execution.copy and execution.setup in real worktrees of real repositories (issue 17)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from dagspec import autospec, procgroup
from dagspec.attempt import Prepared
from dagspec.copies import CHUNK
from dagspec.dagfile import CopyPath, load_dag
from dagspec.setup import SetupError, copy_paths, run_setup, setup_env, user_setup
from tests.conftest import git
from tests.engine_support import dag_text
from tests.run_states import run, spec


@pytest.fixture
def worktree(git_repo: Path) -> Path:
    (git_repo / ".gitignore").write_text(".env\n.vscode/\nnode_modules\ncache/\n")
    git(git_repo, "add", ".gitignore")
    git(git_repo, "commit", "-q", "-m", "ignore")
    path = git_repo.parent / "wt"
    git(git_repo, "worktree", "add", "-q", "-b", "dag/r/a", str(path))
    return path


def _log(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "a.log"


def test_ignored_files_and_directories_are_copied_and_never_committed(
    git_repo: Path, worktree: Path, tmp_path: Path
) -> None:
    (git_repo / ".env").write_text("TOKEN=1\n")
    (git_repo / ".vscode").mkdir()
    (git_repo / ".vscode" / "settings.json").write_text("{}\n")
    copy_paths(git_repo, worktree, [CopyPath(".env"), CopyPath(".vscode")], log=_log(tmp_path))
    assert (worktree / ".env").read_text() == "TOKEN=1\n"
    assert (worktree / ".vscode" / "settings.json").is_file()
    assert git(worktree, "status", "--porcelain") == ""
    assert "copied .vscode (2 new)" in _log(tmp_path).read_text()


def test_what_the_worktree_has_is_never_overwritten(
    git_repo: Path, worktree: Path, tmp_path: Path
) -> None:
    (git_repo / ".env").write_text("main\n")
    (worktree / ".env").write_text("the agent's\n")
    copy_paths(git_repo, worktree, [CopyPath(".env")], log=_log(tmp_path))
    assert (worktree / ".env").read_text() == "the agent's\n"


def test_a_large_directory_is_symlinked(git_repo: Path, worktree: Path, tmp_path: Path) -> None:
    (git_repo / "node_modules" / "left-pad").mkdir(parents=True)
    copy_paths(git_repo, worktree, [CopyPath("node_modules", symlink=True)], log=_log(tmp_path))
    link = worktree / "node_modules"
    assert link.is_symlink()
    assert link.resolve() == (git_repo / "node_modules").resolve()
    assert git(worktree, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("name", "symlink", "what_to_do"),
    [
        ("cache", True, "'cache/' (.gitignore:4) matches only a directory, not a link: drop"),
        ("build", True, "add 'build' to .gitignore, or remove it from execution.copy"),
        ("build", False, "add 'build' to .gitignore, or remove it from execution.copy"),
    ],
)
def test_a_copy_git_does_not_ignore_is_refused_and_removed(
    git_repo: Path, worktree: Path, tmp_path: Path, name: str, symlink: bool, what_to_do: str
) -> None:
    """Only a link that a directory's pattern (``cache/``) misses is told of the trailing
    '/': a copy, or a link no rule names, was told of it too."""
    (git_repo / name).mkdir()
    (git_repo / name / "f").write_text("f\n")
    with pytest.raises(SetupError) as refused:
        copy_paths(git_repo, worktree, [CopyPath(name, symlink=symlink)], log=_log(tmp_path))
    said = str(refused.value)
    assert said.startswith(f"execution.copy: {name} is not ignored by git in the worktree")
    assert said.endswith(what_to_do) or what_to_do + " " in said
    assert ("trailing '/'" in said) == (name == "cache")
    assert not os.path.lexists(worktree / name)


def test_a_path_git_would_commit_is_refused_and_nothing_is_left(
    git_repo: Path, worktree: Path, tmp_path: Path
) -> None:
    (git_repo / "secrets").mkdir()
    (git_repo / "secrets" / "key").write_text("k\n")
    with pytest.raises(SetupError, match=r"secrets/key would be committed"):
        copy_paths(git_repo, worktree, [CopyPath("secrets")], log=_log(tmp_path))
    assert not (worktree / "secrets").exists()


def test_a_missing_path_is_passed_over_with_a_note(
    git_repo: Path, worktree: Path, tmp_path: Path
) -> None:
    copy_paths(git_repo, worktree, [CopyPath(".env")], log=_log(tmp_path))
    assert not (worktree / ".env").exists()
    assert "execution.copy: .env is not in" in _log(tmp_path).read_text()


def _env(git_repo: Path, worktree: Path) -> dict[str, str]:
    return setup_env(repo=git_repo, run_id="r", spec_id="a", worktree=worktree, branch="dag/r/a")


def test_setup_runs_once_in_the_worktree_with_the_spec_in_its_environment(
    git_repo: Path, worktree: Path, tmp_path: Path
) -> None:
    command = 'echo "$DAG_RUN_ID $DAG_SPEC_ID $DAG_BRANCH" > .env; pwd; echo to stderr >&2'
    log = _log(tmp_path)
    assert run_setup(command, worktree=worktree, env=_env(git_repo, worktree), log=log)
    assert (worktree / ".env").read_text() == "r a dag/r/a\n"
    text = log.read_text()
    assert f"=== dagspec: setup: {command}\n{worktree.resolve()}\nto stderr\n" in text
    assert not run_setup(command, worktree=worktree, env={}, log=log)
    assert log.read_text() == text
    assert git(worktree, "status", "--porcelain") == ""


def test_a_failing_setup_ends_with_its_last_lines_and_runs_again_next_time(
    git_repo: Path, worktree: Path, tmp_path: Path
) -> None:
    command = "for i in 1 2 3 4 5 6 7; do echo line $i; done; exit 3"
    with pytest.raises(SetupError) as caught:
        run_setup(command, worktree=worktree, env={}, log=_log(tmp_path))
    message = str(caught.value)
    assert message.startswith("execution.setup failed with exit code 3:\n")
    assert message.endswith("    line 3\n    line 4\n    line 5\n    line 6\n    line 7")
    assert run_setup("true", worktree=worktree, env={}, log=_log(tmp_path))


def test_a_failing_setups_last_lines_are_printable_and_short(
    git_repo: Path, worktree: Path, tmp_path: Path
) -> None:
    """They become the spec's reason, shown on terminals and kept in the state file."""
    huge = "head -c 3000000 /dev/zero | tr '\\0' x; echo"
    command = huge + r'; printf "before\000after\033[2J\007\n"; exit 1'
    with pytest.raises(SetupError) as caught:
        run_setup(command, worktree=worktree, env={}, log=_log(tmp_path))
    first, second = str(caught.value).splitlines()[1:]
    assert first == "    " + "x" * 200
    assert second == "    before?after?[2J?"


@pytest.mark.slow
def test_a_hanging_setup_is_ended_with_its_process_group(
    git_repo: Path, worktree: Path, tmp_path: Path
) -> None:
    groups: list[int] = []
    with pytest.raises(SetupError, match=r"execution.setup timed out after 0s \(no output\)"):
        run_setup(
            "sleep 60 & sleep 60",
            worktree=worktree,
            env={},
            log=_log(tmp_path),
            timeout=0.2,
            on_start=groups.append,
        )
    assert _group_gone(groups[0])


def _group_gone(pgid: int) -> bool:
    """Whether group ``pgid`` has no live member (SIGKILL takes a moment to land)."""
    deadline = time.monotonic() + 5
    while procgroup.members(pgid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not procgroup.members(pgid)


class _Stopped(BaseException):
    """What a stop raises in a copy's thread (``trio.Cancelled`` is a ``BaseException`` too)."""


def test_a_copy_ended_midway_leaves_no_torn_file_and_the_next_copy_is_whole(
    git_repo: Path, worktree: Path, tmp_path: Path
) -> None:
    """execution.copy ended between two chunks of a file (a stop, a timeout: its check
    raises): the file is removed, not left torn, since the next attempt never overwrites
    what the worktree has; that attempt copies it whole."""
    (git_repo / "cache").mkdir()
    content = os.urandom(1024) * (2 * CHUNK // 1024 + 1)
    (git_repo / "cache" / "big").write_bytes(content)
    checks: list[None] = []

    def stop_at_the_second_chunk() -> None:
        checks.append(None)
        if len(checks) == 2:
            raise _Stopped

    with pytest.raises(_Stopped):
        copy_paths(
            git_repo,
            worktree,
            [CopyPath("cache")],
            log=_log(tmp_path),
            check=stop_at_the_second_chunk,
        )
    assert not (worktree / "cache" / "big").exists()
    copy_paths(git_repo, worktree, [CopyPath("cache")], log=_log(tmp_path))
    assert (worktree / "cache" / "big").read_bytes() == content


@pytest.mark.slow
async def test_a_stop_during_execution_copy_ends_it_with_no_file_half_copied(
    git_repo: Path, worktree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drive stops while a large file is copied into a new worktree: the copy ends
    within a chunk and removes it, before the stop goes on (not left copying in the
    background, where the driver's exit tears it). A gate in the copy's own ``check``
    holds its thread with one chunk written until the stop has come, so the stop always
    meets the copy midway."""
    (git_repo / "cache").mkdir()
    source = git_repo / "cache" / "big"
    source.write_bytes(b"x" * (3 * CHUNK))
    dag_file = tmp_path / "dag.yaml"
    dag_file.write_text(dag_text("a", extra='execution:\n  copy: ["cache"]'))
    call = autospec.Invocation(("autospec",), {}, "specify")
    ready = Prepared(worktree, "dag/r/a", call, {}, None, 0)
    target = worktree / "cache" / "big"
    midway, stopped = trio.Event(), threading.Event()
    checks: list[int] = []  # the target's size at each check

    def gated_copy(*args: Any, check: Callable[[], None], **kwargs: Any) -> None:
        def gate() -> None:  # in the copy's thread, before each chunk
            checks.append(target.stat().st_size)
            if len(checks) == 2:  # one chunk written: let the test stop the drive
                trio.from_thread.run_sync(midway.set)
                assert stopped.wait(30), "the test never stopped the copy"
            check()

        copy_paths(*args, check=gate, **kwargs)

    monkeypatch.setattr("dagspec.setup.copy_paths", gated_copy)
    finished: list[bool] = []
    async with trio.open_nursery() as nursery:
        copying = trio.CancelScope()

        async def copy() -> None:
            with copying:
                await user_setup(run(git_repo, "r", spec("a")), load_dag(dag_file), "a", ready, 1.0)
                finished.append(True)
            midway.set()  # a copy that never reached the gate must not hang the test

        nursery.start_soon(copy)
        await midway.wait()
        copying.cancel()
        stopped.set()
    assert finished == [] and copying.cancelled_caught
    assert checks == [0, CHUNK]  # no chunk copied after the stop
    assert not target.exists()
