"""``dag logs``: a spec's output as it is, and followed while the spec runs."""

from __future__ import annotations

import io
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import attrs
import pytest

from dagspec.cli import main
from dagspec.commands import logs as logs_command
from dagspec.lifecycle import RunStatus, SpecStatus
from dagspec.workspace import RunPaths
from tests.run_states import Output, run, save, spec, start_dag
from tests.run_states import _drive as hold_lock

Cli = Callable[..., int]


def write_log(repo: Path, run_id: str, spec_id: str, data: bytes, mode: str = "wb") -> Path:
    log = RunPaths(repo, run_id).log_file(spec_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open(mode) as file:
        file.write(data)
    return log


def test_logs_prints_the_bytes_as_they_are(
    git_repo: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    save(run(git_repo, "r", spec("a", SpecStatus.FAILED)))
    data = b"\xe2\x86\x92 Executing: claude\n\x1b[31mred\x1b[0m \xff not utf-8\nno newline"
    write_log(git_repo, "r", "a", data)
    assert main(["logs", "r", "a"]) == 0
    assert capsysbinary.readouterr().out == data


def test_an_unknown_spec_lists_the_run_s_specs(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    save(run(git_repo, "r", spec("a"), spec("b")))
    assert run_cli("logs", "r", "zz") == 1
    assert capsys.readouterr().err == ("dag: error: run 'r' has no spec 'zz': its specs are a, b\n")
    assert run_cli("logs", "nope", "a") == 1
    assert "no run 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("follow", [[], ["-f"]])
def test_a_spec_without_output_says_so(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], follow: list[str]
) -> None:
    save(run(git_repo, "r", spec("a", SpecStatus.BLOCKED)))
    assert run_cli("logs", "r", "a", *follow) == 0
    said = capsys.readouterr()
    assert said.out == "spec 'a' has no output yet (it is blocked)\n"
    assert said.err == (
        "note: run r is not running (completed): nothing more will come\n" if follow else ""
    )


def test_follow_of_a_finished_spec_prints_the_log_and_returns(
    git_repo: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED)))
    write_log(git_repo, "r", "a", b"all done\n")
    assert main(["logs", "r", "a", "--follow"]) == 0
    said = capsysbinary.readouterr()
    assert said.out == b"all done\n"
    assert said.err == b"note: run r is not running (completed): nothing more will come\n"


@pytest.mark.parametrize("status", [RunStatus.INTERRUPTED, RunStatus.FAILED])
@pytest.mark.parametrize("spec_id", [["a"], []])
def test_follow_of_a_run_that_is_not_running_says_so_and_how_to_go_on(
    git_repo: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    status: RunStatus,
    spec_id: list[str],
) -> None:
    """Stopped by Ctrl-C (or failed), its lines were printed and -f ended, exit 0, with no
    word that nothing would come, as `dag logs -f` says of a run whose driver died."""
    save(run(git_repo, "r", spec("a", SpecStatus.INTERRUPTED), status=status))
    write_log(git_repo, "r", "a", b"half way\n")
    assert main(["logs", "r", *spec_id, "-f"]) == 1
    said = capsysbinary.readouterr()
    assert said.out == (b"half way\n" if spec_id else b"a | half way\n")
    assert said.err.decode() == (
        f"dag: error: run r is not running ({status.value}): nothing more will come until "
        "`dag resume r` goes on with it\n"
    )


def test_follow_copies_what_was_written_before_the_spec_finished(tmp_path: Path) -> None:
    """The writer appends, then says it finished; the last round still copies it all."""
    log = tmp_path / "a.log"
    out = io.BytesIO()
    script: Iterator[tuple[bytes, bool]] = iter(
        [(b"one\n", True), (b"", True), (b"two\n", True), (b"three\n", False)]
    )
    pauses: list[int] = []

    def live() -> bool:
        data, still = next(script)
        with log.open("ab") as file:
            file.write(data)
        return still

    logs_command.follow_log(log, out, live, lambda: pauses.append(len(out.getvalue())))
    assert out.getvalue() == b"one\ntwo\nthree\n"
    assert pauses == [4, 4, 8]


def test_follow_starts_over_when_the_log_is_rewritten(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"attempt 1: a long line of output\n")
    out = io.BytesIO()
    offset = logs_command.copy_new(log, 0, out)
    log.write_bytes(b"attempt 2\n")
    assert logs_command.copy_new(log, offset, out) == len(b"attempt 2\n")
    assert out.getvalue() == b"attempt 1: a long line of output\nattempt 2\n"
    assert logs_command.copy_new(tmp_path / "missing.log", 7, out) == 7


@pytest.mark.parametrize(
    ("run_status", "spec_status", "live"),
    [
        (RunStatus.RUNNING, SpecStatus.RUNNING, True),
        (RunStatus.RUNNING, SpecStatus.PENDING, True),
        (RunStatus.RUNNING, SpecStatus.COMPLETED, False),
        (RunStatus.FAILED, SpecStatus.PENDING, False),
        (RunStatus.INTERRUPTED, SpecStatus.INTERRUPTED, False),
    ],
)
def test_is_live(run_status: RunStatus, spec_status: SpecStatus, live: bool) -> None:
    state = run(Path("/r"), "r", spec("a", spec_status), status=run_status)
    assert logs_command.is_live(state, "a") is live


@pytest.mark.slow
def test_follow_ends_when_the_spec_completes(git_repo: Path) -> None:
    state = run(git_repo, "r", spec("a", SpecStatus.RUNNING), status=RunStatus.RUNNING)
    save(state)
    log = write_log(git_repo, "r", "a", b"line 1\n")
    with start_dag(git_repo, "logs", "r", "a", "-f") as proc:
        out = Output(proc)
        out.wait_for(b"line 1\n")
        write_log(git_repo, "r", "a", b"line 2\n", "ab")
        out.wait_for(b"line 2\n")
        write_log(git_repo, "r", "a", b"line 3, written just before the end\n", "ab")
        save(attrs.evolve(state.with_spec(spec("a", SpecStatus.COMPLETED)),
                          status=RunStatus.COMPLETED))  # fmt: skip
        assert out.finish() == 0
        assert out.data == log.read_bytes()
        assert proc.stderr is not None and proc.stderr.read() == b""


@pytest.mark.slow
def test_follow_ends_when_the_driver_dies_and_on_ctrl_c(git_repo: Path) -> None:
    state = run(git_repo, "r", spec("a", SpecStatus.RUNNING), status=RunStatus.RUNNING)
    save(state)
    write_log(git_repo, "r", "a", b"working\n")
    with start_dag(git_repo, "logs", "r", "a", "-f") as proc:
        out = Output(proc)
        out.wait_for(b"working\n")
        save(attrs.evolve(state, driver_pid=-1))
        assert out.finish() == 1  # as `dag status` exits: it needs you
        assert proc.stderr is not None
        said = proc.stderr.read().decode()
        assert said.startswith("dag: error: the driver of run r is gone (killed, or the ")
        assert said.endswith(" resume r` goes on with it\n") and said.count("\n") == 1
    save(state)  # driven again
    with start_dag(git_repo, "logs", "r", "a", "-f") as proc:
        out = Output(proc)
        out.wait_for(b"working\n")
        proc.send_signal(signal.SIGINT)
        assert out.finish() == 130
        assert proc.stderr is not None and proc.stderr.read() == b""


def test_every_spec_s_lines_are_interleaved_with_a_prefix(tmp_path: Path) -> None:
    """Complete lines as they come, each under its spec's name; a last unterminated line
    once the run has finished."""
    logs = {"a": tmp_path / "a.log", "long-id": tmp_path / "long-id.log"}
    out = io.BytesIO()
    script: Iterator[tuple[str, bytes, bool]] = iter(
        [("a", b"one\ntw", True), ("long-id", b"x\n", True), ("a", b"o\nend", False)]
    )

    def live() -> bool:
        spec_id, data, still = next(script)
        with logs[spec_id].open("ab") as file:
            file.write(data)
        return still

    logs_command.follow_logs(logs, out, live, lambda: None)
    assert out.getvalue().decode().splitlines() == [
        "a       | one",
        "long-id | x",
        "a       | two",
        "a       | end",
    ]


def test_logs_of_a_whole_run_without_a_spec(
    git_repo: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    save(run(git_repo, "r", spec("a", SpecStatus.COMPLETED), spec("b", SpecStatus.FAILED)))
    write_log(git_repo, "r", "a", b"built a\n")
    write_log(git_repo, "r", "b", b"b broke\n\xff raw\n")
    assert main(["logs", "r"]) == 0
    assert capsysbinary.readouterr().out == b"a | built a\nb | b broke\nb | \xff raw\n"


@pytest.mark.slow
def test_follow_waits_for_a_pending_spec_to_start(git_repo: Path) -> None:
    state = run(git_repo, "r", spec("a", SpecStatus.PENDING), status=RunStatus.RUNNING)
    save(state)
    with start_dag(git_repo, "logs", "a", "-f") as proc:
        assert proc.stderr is not None
        err = Output(cast("subprocess.Popen[bytes]", SimpleNamespace(stdout=proc.stderr)))
        err.wait_for(b"note: waiting for spec 'a' to start (it is pending)\n")
        write_log(git_repo, "r", "a", b"started\n")
        save(attrs.evolve(state.with_spec(spec("a", SpecStatus.COMPLETED)),
                          status=RunStatus.COMPLETED))  # fmt: skip
        out = Output(proc)
        assert out.finish() == 0
        assert out.data == b"started\n"


def test_follow_started_just_before_a_resume_drives_it_follows_the_new_attempt(
    git_repo: Path,
) -> None:
    """``dag logs -f r a`` while ``dag resume r`` holds the run's lock but has not yet
    recorded it running (it asks autospec its version first; the test holds the lock for
    it): following ended at once with "not running", missing the attempt the resume
    started. It waits for the driver, then follows that attempt to its end."""
    stopped = run(git_repo, "r", spec("a", SpecStatus.INTERRUPTED), status=RunStatus.INTERRUPTED)
    paths = save(stopped)
    write_log(git_repo, "r", "a", b"the first attempt\n")
    hold_lock(paths.run_dir)  # as `dag resume` does before it records the run running
    with start_dag(git_repo, "logs", "r", "a", "-f") as proc:
        assert proc.stderr is not None
        err = Output(cast("subprocess.Popen[bytes]", SimpleNamespace(stdout=proc.stderr)))
        err.wait_for(b"note: waiting for pid ")
        running = run(git_repo, "r", spec("a", SpecStatus.RUNNING), status=RunStatus.RUNNING)
        save(running)
        write_log(git_repo, "r", "a", b"the resumed attempt\n")  # a new attempt's log
        out = Output(proc)
        out.wait_for(b"the resumed attempt\n")
        save(attrs.evolve(running.with_spec(spec("a", SpecStatus.COMPLETED)),
                          status=RunStatus.COMPLETED))  # fmt: skip
        assert out.finish() == 0
        assert b"not running" not in err.data + proc.stderr.read()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["r", "api-servr"], "run 'r' has no spec 'api-servr' (did you mean 'api-server'?)"),
        (["api-servr"], "a spec of the newest run r (did you mean 'api-server'?)"),
        (
            ["r", "API-SERVER", "-f"],
            "run 'r' has no spec 'API-SERVER' (did you mean 'api-server'?)",
        ),
        (["r", "zz"], "run 'r' has no spec 'zz': its specs are api-server, db-schema"),
    ],
)
def test_an_unknown_spec_gets_a_did_you_mean(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    save(run(git_repo, "r", spec("api-server"), spec("db-schema")))
    assert run_cli("logs", *args) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("dag: error: ") and error in err


def test_retry_of_an_unknown_spec_says_the_same(
    git_repo: Path, run_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    save(run(git_repo, "r", spec("api-server", SpecStatus.FAILED), status=RunStatus.FAILED))
    assert run_cli("retry", "r", "api-servr") == 1
    err = capsys.readouterr().err
    assert err == "dag: error: run 'r' has no spec 'api-servr' (did you mean 'api-server'?)\n"
