"""Notifications: a real shell command gets the event in its environment and as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from dagspec import notify
from dagspec.lifecycle import RunState, RunStatus, SpecStatus
from dagspec.limits import parse_limit
from tests.run_states import T0, at, run, spec

# Writes what it was told, environment and stdin, to a file per call.
RECORDER = (
    'n=$(ls "$OUT" | grep -c "env$"); '
    'printf "%s|%s|%s|%s|%s\\n" "$DAG_EVENT" "$DAG_RUN_ID" "$DAG_SPEC_ID" "$DAG_STATUS" '
    '"$DAG_SUMMARY" > "$OUT/$n.env"; cat > "$OUT/$n.json"'
)


FIFTEEN = "2026-11-24T15:00:00Z"


def _finished(tmp_path: Path) -> RunState:
    return run(
        tmp_path,
        "r1",
        spec("a", SpecStatus.COMPLETED),
        spec("b", SpecStatus.FAILED, error="autospec exited with 1 during plan\nmore"),
        status=RunStatus.FAILED,
        finished_at=at(3725),
    )


def test_the_command_gets_event_run_spec_and_summary_in_env_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("OUT", str(out))
    notice = notify.spec_failed(_finished(tmp_path), "b")
    warning = notify.notify(RECORDER, notice, cwd=tmp_path, log=tmp_path / "notify.log")
    assert warning is None
    summary = "b failed: autospec exited with 1 during plan"
    assert (out / "0.env").read_text() == f"spec-failed|r1|b|failed|{summary}\n"
    assert json.loads((out / "0.json").read_text()) == {
        "event": "spec-failed",
        "run_id": "r1",
        "spec_id": "b",
        "summary": summary,
        "status": "failed",
    }


def test_the_four_notices_of_a_run(tmp_path: Path) -> None:
    finished = _finished(tmp_path)
    hit = parse_limit("You've hit your limit · resets 3pm (UTC)", now=T0)
    assert hit is not None and hit.reset_at is not None
    notices = [
        notify.run_finished(finished),
        notify.spec_failed(finished, "b"),
        notify.spec_stalled(finished, "a", 1800),
        notify.spec_waiting(finished, "a", hit, hit.reset_at),
    ]
    assert [(n.event, n.spec_id, n.status, n.summary) for n in notices] == [
        ("run-finished", None, "failed", "run r1 failed in 1h02m: 1 completed, 1 failed"),
        ("spec-failed", "b", "failed", "b failed: autospec exited with 1 during plan"),
        ("spec-stalled", "a", "stalled", "a made no progress for 30m00s"),
        ("spec-waiting", "a", "waiting", f"a hit a claude limit; waiting until {FIFTEEN}"),
    ]
    assert json.loads(notify.notice_json(notices[0]))["spec_id"] is None


def test_an_unknown_event_is_a_bug() -> None:
    with pytest.raises(ValueError, match="unknown notification event 'stage-done'"):
        notify.Notice("stage-done", "r", "a", "x", "running")


def test_run_finished_says_when_completed_work_is_not_on_the_base_branch(tmp_path: Path) -> None:
    """The run completed, but exits 1: its result waits on dag/<run>/_merged."""
    waiting = run(tmp_path, "r1", spec("a", SpecStatus.COMPLETED), finished_at=at(60))
    assert notify.run_finished(waiting).summary == (
        "run r1 completed in 1m00s: 1 completed; 1 spec not merged into main yet"
    )
    merged = run(tmp_path, "r1", spec("a", SpecStatus.COMPLETED, merged=True), finished_at=at(60))
    assert notify.run_finished(merged).summary == "run r1 completed in 1m00s: 1 completed"


def test_a_failing_notifier_is_a_warning_with_its_output_in_the_log(tmp_path: Path) -> None:
    notice = notify.run_finished(_finished(tmp_path))
    log = tmp_path / "notify.log"
    warning = notify.notify("echo no mail today; exit 4", notice, cwd=tmp_path, log=log)
    assert warning == f"the notify command exited with 4 (its output: {log})"
    assert log.read_text().endswith("no mail today\n")


@pytest.mark.slow
def test_a_hanging_notifier_is_ended(tmp_path: Path) -> None:
    notice = notify.run_finished(_finished(tmp_path))
    warning = notify.notify("sleep 60", notice, cwd=tmp_path, log=tmp_path / "n.log", timeout=0.2)
    assert warning == "the notify command took over 0s and was ended"


@pytest.mark.parametrize(
    ("seconds", "terminal", "bell"),
    [(61, True, True), (59, True, False), (3600, False, False)],
)
def test_the_bell_rings_on_a_terminal_after_a_long_run(
    tmp_path: Path, seconds: int, terminal: bool, bell: bool
) -> None:
    finished = run(tmp_path, "r", status=RunStatus.COMPLETED, finished_at=at(seconds))
    assert notify.wants_bell(finished, terminal=terminal) is bell


def test_a_running_run_never_rings(tmp_path: Path) -> None:
    running = run(tmp_path, "r", status=RunStatus.RUNNING, started_at=datetime.now(UTC))
    assert not notify.wants_bell(running, terminal=True)


@pytest.mark.parametrize("command", ["run", "resume", "retry"])
def test_notify_is_in_the_help_of_every_run_command(
    command: str, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(command, "--help") == 0
    assert "--notify CMD" in capsys.readouterr().out


@attrs.frozen
class _Event:
    spec_id: str
    kind: str
    detail: str = ""


@pytest.mark.slow  # four notifier processes, one after the other
def test_the_notifier_sends_exactly_the_events_worth_a_notice_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("OUT", str(out))
    seen: list[str] = []
    notifier = notify.Notifier(RECORDER, cwd=tmp_path, log=tmp_path / "notify.log")
    report = notifier.wrap(lambda run, event: seen.append(event.kind))
    finished = _finished(tmp_path)
    for event in [
        _Event("a", "started", "attempt 1"),
        _Event("a", "stage", "plan"),
        _Event("a", "tasks", "1/6"),
        _Event("a", "stalled", "no progress for 30m00s"),
        _Event("a", "waiting", "claude limit; until 15:00Z"),
        _Event("a", "completed"),
        _Event("b", "failed", "exit 1"),
        _Event("c", "blocked"),
    ]:
        report(finished, event)
    assert notifier.finish(finished) == []
    assert len(seen) == 8
    lines = [(out / f"{n}.env").read_text() for n in range(len(list(out.glob("*.env"))))]
    assert lines == [
        "spec-stalled|r1|a|stalled|a: no progress for 30m00s\n",
        "spec-waiting|r1|a|waiting|a: claude limit; until 15:00Z\n",
        "spec-failed|r1|b|failed|b failed: autospec exited with 1 during plan\n",
        f"run-finished|r1||failed|{notify.run_finished(finished).summary}\n",
    ]


def test_without_a_command_nothing_is_sent(tmp_path: Path) -> None:
    notifier = notify.Notifier(None, cwd=tmp_path, log=tmp_path / "notify.log")
    notifier.wrap(lambda run, event: None)(_finished(tmp_path), _Event("b", "failed"))
    assert notifier.finish(_finished(tmp_path)) == []
    assert not (tmp_path / "notify.log").exists()


def test_a_summary_is_one_printable_line_of_bounded_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An environment variable cannot hold a NUL, and 20 MB would not fit the kernel's
    limit: either way the notice was lost (issue 17)."""
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("OUT", str(out))
    reason = "setup failed: before\x00after\x1b[2J\x07\n" + "x" * 20_000_000
    notice = notify.Notice("spec-failed", "r1", "a", reason, "failed")
    assert notify.notify(RECORDER, notice, cwd=tmp_path, log=tmp_path / "n.log") is None
    said = (out / "0.env").read_text().split("|")[4]
    assert (
        said.startswith("setup failed: before?after?[2J?") and len(said) <= notify.MAX_SUMMARY + 1
    )


@pytest.mark.slow
def test_the_end_of_a_run_waits_for_a_hanging_notifier_once_not_per_notice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "NOTIFY_TIMEOUT", 0.5)
    notifier = notify.Notifier("sleep 60", cwd=tmp_path, log=tmp_path / "notify.log")
    report = notifier.wrap(lambda run, event: None)
    for kind, spec_id in [("failed", "a"), ("failed", "b"), ("stalled", "a")]:
        report(_finished(tmp_path), _Event(spec_id, kind, "exit 1"))
    warnings = notifier.finish(_finished(tmp_path))
    # said once: not also "exited with -9" for the notifier it ended
    assert warnings == ["gave up 4 notices after 0s: the notify command is too slow"]


@pytest.mark.slow
def test_run_finished_is_sent_though_spec_notices_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spec notices queued at the end have half the end's budget: the one hanging is
    ended and the rest dropped, and run-finished still goes out, last."""
    monkeypatch.setattr(notify, "NOTIFY_TIMEOUT", 1.0)
    got = tmp_path / "got"
    hang = f'case "$DAG_EVENT" in run-finished) cat >> "{got}";; *) exec sleep 60;; esac'
    notifier = notify.Notifier(hang, cwd=tmp_path, log=tmp_path / "notify.log")
    report = notifier.wrap(lambda run, event: None)
    for kind, spec_id in [("failed", "a"), ("failed", "b"), ("stalled", "a")]:
        report(_finished(tmp_path), _Event(spec_id, kind, "exit 1"))
    warnings = notifier.finish(_finished(tmp_path))
    assert json.loads(got.read_text())["event"] == "run-finished"
    assert warnings == ["gave up 3 notices after 1s: the notify command is too slow"]


@pytest.mark.parametrize(
    ("signum", "name"),
    [(9, "SIGKILL"), (40, "signal 40")],  # 40: a real-time signal Python has no name for
)
def test_a_notifier_killed_by_a_signal_is_said_so(tmp_path: Path, signum: int, name: str) -> None:
    notice = notify.run_finished(_finished(tmp_path))
    command = f"kill -{signum} $$"
    warning = notify.notify(command, notice, cwd=tmp_path, log=tmp_path / "n.log")
    assert warning == f"the notify command was killed by {name} (its output: {tmp_path}/n.log)"
