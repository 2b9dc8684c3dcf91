"""Fault isolation (issue 11): a spec's fault is that spec's failure; a fault of the run
stops the run in order; output is not a lifeline. The boundary with the policy fakes here;
real faults (exec errors, E2BIG, a NUL byte, ENOSPC, EMFILE, SIGHUP, a broken pipe) end to
end in ``test_faults_real.py``."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from dagspec import arguments, errors, faults, state
from dagspec.attempt import Prepared
from dagspec.errors import DagspecError, GitError
from dagspec.lifecycle import Event, RunState, RunStatus
from dagspec.records import EventKind
from dagspec.workspace import RunPaths
from tests.test_policy import Behaviour, Drive, FakeAgents, FakeWorkspace, new_run, statuses


@dataclass
class FaultyAgents(FakeAgents):
    """``FakeAgents`` whose door raises ``faults[spec]`` from inside a nursery, as
    ``trio.run_process`` does when an executable cannot be started (so it comes wrapped)."""

    faults: Mapping[str, Exception] = field(default_factory=dict)
    on_start_of: Mapping[str, Any] = field(default_factory=dict)

    async def __call__(self, argv: Sequence[str], *, cwd: Path, **kwargs: Any) -> int:
        if cwd.name in self.on_start_of:
            await self.on_start_of[cwd.name]()
        if cwd.name in self.faults:
            async with trio.open_nursery():
                raise self.faults[cwd.name]
        return await super().__call__(argv, cwd=cwd, **kwargs)


def crash_logs(directory: Path) -> list[Path]:
    """The crash logs written in ``directory`` (the ``crash_dir`` of the test)."""
    return sorted(directory.iterdir())


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (
            ValueError("embedded null byte"),
            "a bug in dagspec (ValueError: embedded null byte): please report it with its "
            "crash log, {log}; `dag retry` starts the spec again",
        ),
        (
            OSError(7, "Argument list too long"),
            "Argument list too long (E2BIG): put that right, then `dag retry`",
        ),
        (
            FileExistsError(17, "File exists", "/r.worktrees/run"),
            "File exists at /r.worktrees/run (EEXIST): put that right, then `dag retry`",
        ),
        (
            OSError(24, "Too many open files"),
            "too many open files while opening a file or pipe for it (EMFILE): raise the "
            "open-file limit (ulimit -n) or lower --max-parallel, then `dag retry`",
        ),
        (
            RuntimeError("anything\nat all"),
            "a bug in dagspec (RuntimeError: anything at all): please report it with its "
            "crash log, {log}; `dag retry` starts the spec again",
        ),
    ],
)
async def test_any_fault_of_a_running_spec_fails_that_spec_only(
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
    crash_dir: Path,
    fault: Exception,
    reason: str,
) -> None:
    agents = FaultyAgents(faults={"a": fault})
    drive = Drive(tmp_path, ["a", ("b", ["a"]), "c"], agents)
    final = await drive()
    logs = crash_logs(crash_dir)
    assert len(logs) == ("{log}" in reason)  # a crash log for a bug only
    reason = reason.format(log=logs[0] if logs else None)
    assert statuses(final) == {"a": "failed", "b": "blocked", "c": "completed"}
    assert final.spec("a").error == reason
    assert final.status is RunStatus.FAILED
    assert Event("a", EventKind.FAILED, reason) in drive.events


async def test_a_bug_met_by_several_specs_writes_one_crash_log_each_reason_names(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, crash_dir: Path
) -> None:
    """Three specs meet the same bug (one type, raised along the same lines, whatever its
    message); a fourth meets another: two logs, each with the traceback and the first spec
    that met it."""
    bugs: dict[str, Exception] = {s: KeyError(s) for s in ("a", "b", "c")}
    bugs["d"] = TypeError("another bug")
    drive = Drive(tmp_path, ["a", "b", "c", "d", "e"], FaultyAgents(faults=bugs))
    final = await drive(max_parallel=5)
    assert statuses(final) == {**dict.fromkeys("abcd", "failed"), "e": "completed"}
    said = {s: final.spec(s).error or "" for s in "abcd"}
    logs = crash_logs(crash_dir)
    assert len(logs) == 2
    named = {s: next(log for log in logs if f"crash log, {log};" in said[s]) for s in said}
    assert named["a"] == named["b"] == named["c"] != named["d"]
    assert said["b"] == (
        f"a bug in dagspec (KeyError: 'b'): please report it with its crash log, "
        f"{named['b']}; `dag retry` starts the spec again"
    )
    first = named["a"].read_text()
    met = first.split("\nspec: spec '", 1)[1][0]  # whichever of a, b, c got there first
    assert f"\nspec: spec '{met}' of run r\n" in first and f"KeyError: '{met}'\n" in first
    assert "Traceback (most recent call last)" in first
    other = named["d"].read_text()
    assert "\nspec: spec 'd' of run r\n" in other and "TypeError: another bug\n" in other


async def test_a_bug_whose_crash_log_cannot_be_written_still_says_so(
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
    crash_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    final = await Drive(tmp_path, ["a"], FaultyAgents(faults={"a": RuntimeError("x")}))()
    error = final.spec("a").error or ""
    assert error.startswith(
        "a bug in dagspec (RuntimeError: x): please report it with what it says (no crash "
        "log could be written: [Errno 2] No such file or directory: "
    )
    assert error.endswith("; `dag retry` starts the spec again") and "\n" not in error


@pytest.mark.parametrize(
    "fault",
    [
        PermissionError(13, "Permission denied"),
        GitError(["git", "worktree", "add"], 128, "", "fatal: one\nfatal: two"),
    ],
)
async def test_a_fault_while_preparing_fails_that_spec_in_one_line(
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    fault: Exception,
) -> None:
    prepare = FakeWorkspace.prepare

    async def failing(self: FakeWorkspace, run: RunState, spec_id: str, floor: int) -> Prepared:
        if spec_id == "a":
            raise fault
        return await prepare(self, run, spec_id, floor)

    monkeypatch.setattr(FakeWorkspace, "prepare", failing)
    final = await Drive(tmp_path, ["a", ("b", ["a"]), "c"])()
    assert statuses(final) == {"a": "failed", "b": "blocked", "c": "completed"}
    error = final.spec("a").error
    assert error is not None and "\n" not in error


async def test_a_state_that_cannot_be_saved_stops_the_run_in_order(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    state_dir = RunPaths(tmp_path, "r").state_file.parent

    async def break_the_state_directory() -> None:
        while "b" not in agents.spans:  # b runs first (trio starts tasks in any order)
            await trio.lowlevel.checkpoint()
        shutil.rmtree(state_dir)
        state_dir.write_text("not a directory")  # every later save fails

    agents = FaultyAgents(
        {"b": Behaviour(seconds=100)}, on_start_of={"a": break_the_state_directory}
    )
    drive = Drive(tmp_path, ["b", "a", "c"], agents)
    with pytest.raises(faults.RunFault, match=r"cannot save the state of run r .*dag resume r"):
        await drive(max_parallel=2)
    assert agents.spans["b"][1] < 100  # the running agent was ended, not waited for
    assert "c" not in agents.spans  # nothing more started
    state_dir.unlink()


@dataclass
class FailingAsStopped(FakeAgents):
    """``FakeAgents`` whose door, stopped while running ``spec``, fails writing its log (the
    last of its output to a full disk) as the stop's ``Cancelled`` reaches the attempt."""

    spec: str = ""

    async def __call__(self, argv: Sequence[str], *, cwd: Path, **kwargs: Any) -> int:
        try:
            return await super().__call__(argv, cwd=cwd, **kwargs)
        except trio.Cancelled:
            if cwd.name != self.spec:
                raise
            raise OSError(errno.ENOSPC, "No space left on device", str(kwargs["log"])) from None


async def test_a_fault_as_the_drive_stops_is_the_specs_failure_not_a_crash(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The fault comes out of the attempt's nursery grouped with the stop's ``Cancelled`` (its
    watcher's): that group is no ``Exception``, and the run crashed with "a bug in dagspec"."""
    plan = {"a": Behaviour(seconds=1, code=1), "b": Behaviour(seconds=100)}
    agents = FailingAsStopped(plan, spec="b")
    final = await Drive(tmp_path, ["a", "b", "c"], agents)(max_parallel=2, fail_fast=True)
    assert statuses(final) == {"a": "failed", "b": "failed", "c": "pending"}
    log = RunPaths(tmp_path, "r").log_file("b")
    assert final.spec("b").error == (
        f"autospec was stopped: No space left on device at {log} (ENOSPC): put that right, "
        "then `dag retry`"
    )


def test_a_write_that_names_no_file_is_told_with_the_file_it_was_for(tmp_path: Path) -> None:
    log = tmp_path / "b.log"
    with pytest.raises(OSError) as caught, errors.naming(log):
        raise OSError(errno.EFBIG, "File too large")
    assert faults.spec_reason(caught.value) == (
        f"{log} reached the file size limit (ulimit -f; EFBIG): raise the limit, or move the "
        "file away, then `dag retry`"
    )
    with pytest.raises(OSError) as caught, errors.naming(log):
        raise OSError(errno.ENOENT, "No such file or directory", "/elsewhere")
    assert caught.value.filename == "/elsewhere"  # named by the system call: kept


# --- pure pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Build a", None),
        ("x" * arguments.MAX_TEXT, None),  # exactly 127 KiB: what the message says it can be
        ("x" * (arguments.MAX_TEXT + 1), "is 130049 bytes, over the 127 KiB (130048 bytes) it"),
        ("a\0b", "NUL"),
    ],
)
def test_argument_problem(text: str, problem: str | None) -> None:
    found = arguments.argument_problem(text)
    assert found == problem if problem is None else problem in (found or "")


def test_spec_reason_unwraps_groups_and_keeps_user_messages() -> None:
    nested = BaseExceptionGroup("x", [ExceptionGroup("y", [DagspecError("wt-a\nis taken")])])
    assert faults.spec_reason(nested) == "wt-a is taken"


@pytest.mark.slow  # strictyaml takes a while over a 128 KiB line
def test_a_description_the_kernel_cannot_pass_is_refused_by_validate(
    git_repo: Path, run_cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    big = "x" * (arguments.MAX_ARGUMENT - 1)  # one argument, but not with a merge line around it
    (git_repo / "dag.yaml").write_text(
        "layers:\n  - id: L0\n    features:\n"
        '      - id: a\n        description: "a\\0b"\n'
        f"      - id: b\n        description: {big}\n"
        "      - id: c\n        description: fine\n"
    )
    assert run_cli("validate", git_repo / "dag.yaml", "--repo", git_repo) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith(f"dag: error: {git_repo / 'dag.yaml'}:5: ")
    assert "feature 'a'" in err[0] and "U+0000" in err[0]
    assert "feature 'b'" in err[1] and "127 KiB" in err[1]
    assert run_cli("run", git_repo / "dag.yaml", "--repo", git_repo) == 1
    assert not (git_repo / ".autospec" / "state").exists()


def test_save_reports_a_failure_instead_of_raising(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    run = new_run(tmp_path, {"a": ()})
    message = faults.save(run, tmp_path / "file" / "r.yaml")
    assert message is not None and "\n" not in message and "`dag resume r`" in message
    assert faults.save(run, RunPaths(tmp_path, "r").state_file) is None
    assert state.load(RunPaths(tmp_path, "r")) == run


# --- identity of runs and locks ------------------------------------------------------------------


def test_a_state_file_copied_under_another_name_is_not_that_run(tmp_path: Path) -> None:
    original = RunPaths(tmp_path, "r")
    state.save(new_run(tmp_path, {"a": ()}), original.state_file)
    copy = RunPaths(tmp_path, "copy")
    copy.state_file.write_bytes(original.state_file.read_bytes())
    with pytest.raises(DagspecError, match=r"records run 'r', not 'copy'"):
        state.load(copy)
    runs, problems = state.list_runs(tmp_path)
    assert [r.run_id for r in runs] == ["r"] and len(problems) == 1


def test_the_lock_stays_exclusive_when_its_file_is_deleted(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path, "r")
    with state.run_lock(paths):
        paths.lock_file.unlink()
        with pytest.raises(DagspecError, match="is being driven by process"), state.run_lock(paths):
            pass
    with state.run_lock(paths):
        pass


@pytest.mark.slow
def test_a_recorded_driver_pid_is_believed_only_while_it_holds_the_run(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path, "r")
    paths.run_dir.mkdir(parents=True)
    holds = (
        "import fcntl, os, sys; fcntl.flock(os.open(sys.argv[1], os.O_RDONLY), fcntl.LOCK_EX); "
        "print(flush=True); input()"
    )
    driver = subprocess.Popen(
        [sys.executable, "-c", holds, str(paths.run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    stranger = subprocess.Popen(["sleep", "60"])  # a live pid that is no driver (a reused pid)
    try:
        assert driver.stdout is not None and driver.stdout.readline() == b"\n"
        run = attrs.evolve(new_run(tmp_path, {"a": ()}), driver_pid=driver.pid)
        assert state.settled(run).status is RunStatus.RUNNING
        reused = attrs.evolve(run, driver_pid=stranger.pid)
        assert state.settled(reused).status is RunStatus.INTERRUPTED
    finally:
        stranger.kill()
        driver.kill()
        stranger.wait()
        driver.communicate()


# --- signals around the merge ----------------------------------------------------------------


def test_signals_during_a_merge_step_wait_for_its_end_then_interrupt(git_repo: Path) -> None:
    from dagspec import git

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), faults.signals_deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        assert git.run(git_repo, "rev-parse", "HEAD")  # runs to its end regardless
        finished = True
    assert finished
    assert signal.getsignal(signal.SIGTERM) is before
    with faults.signals_deferred():
        pass  # no signal: no interrupt


def test_git_runs_in_its_own_process_group(git_repo: Path) -> None:
    """So a terminal's Ctrl-C, sent to dagspec's group, cannot kill git mid-checkout."""
    from dagspec import git

    out = git.run(git_repo, "-c", "alias.pgid=!cut -d' ' -f5 /proc/self/stat", "pgid")
    assert int(out) != os.getpgrp()


def test_a_run_directory_moved_while_driven_stops_the_saves(tmp_path: Path) -> None:
    """Renaming (or deleting) the locked directory would let a second driver lock a new one:
    the first one's next save fails instead, and the run stops in order (issue 11)."""
    paths = RunPaths(tmp_path, "r")
    run = new_run(tmp_path, {"a": []})
    with state.run_lock(paths):
        state.save(run, paths.state_file)  # the lock is this directory's: saves go on
        paths.run_dir.rename(paths.run_dir.with_name("r.moved"))
        with pytest.raises(OSError, match="moved or deleted while the run was driven"):
            state.save(run, paths.state_file)
        assert faults.save(run, paths.state_file) is not None  # a message, not a raise


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (OSError(errno.EMFILE, "Too many open files"), "opening a file or pipe for it (EMFILE)"),
        (OSError(errno.EMFILE, "Too many open files", "/r/a.log"), "opening /r/a.log (EMFILE)"),
    ],
)
def test_too_many_open_files_says_what_to_do(exc: OSError, said: str) -> None:
    reason = faults.spec_reason(ExceptionGroup("nursery", [exc]))
    assert reason.startswith("too many open files while " + said)
    assert "raise the open-file limit (ulimit -n) or lower --max-parallel" in reason


EVERY_DESCRIPTOR_TAKEN = """
import os, resource, sys
from dagspec import console, faults
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
said = console.dag_command(sys.argv[1])
faults.silence_stdout()
print("dropped")
os.write(2, f"{said}|{type(sys.stdout).__name__}".encode())
"""


def test_with_every_descriptor_taken_hints_and_going_quiet_raise_nothing(tmp_path: Path) -> None:
    """12 specs at once under ``ulimit -n 22``: a progress line's `dag ...` hint imported
    zipfile, which could not open its file (EMFILE); the reporter went quiet, and opening
    /dev/null for stdout failed the same way: "a bug in dagspec" (seen in CI)."""
    archive = tmp_path / "dag.pyz"
    archive.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip archive
    done = subprocess.run(
        [sys.executable, "-c", EVERY_DESCRIPTOR_TAKEN, str(archive)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    assert done.stderr == "dag|_Discard"
