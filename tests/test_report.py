"""The report card: numbers from the state file, rendered as text, Markdown and JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from dagspec import report, state
from dagspec.lifecycle import RunState, RunStatus, SpecStatus
from dagspec.usage import AgentUsage, read_usage
from tests.run_states import T0, at, run, save, spec

MERGE = "c" * 40


def _finished(repo: Path) -> RunState:
    return run(
        repo,
        "q1-20261124",
        spec(
            "050-errors",
            SpecStatus.COMPLETED,
            tasks_done=6,
            tasks_total=6,
            attempts=1,
            started_at=T0,
            finished_at=at(754),
            merged=True,
            merge_commit=MERGE,
        ),
        spec(
            "051-config",
            SpecStatus.COMPLETED,
            tasks_done=4,
            tasks_total=4,
            attempts=2,
            started_at=at(100),
            finished_at=at(400),
            merged=True,
        ),
        spec(
            "052-logging",
            SpecStatus.FAILED,
            stage="plan",
            attempts=1,
            started_at=at(800),
            finished_at=at(860),
            error="autospec exited with 1 during plan: plan stage failed\nmore",
        ),
        spec("060-auth", SpecStatus.BLOCKED, blocked_by=("052-logging",)),
        spec(
            "061-rate",
            SpecStatus.COMPLETED,
            tasks_done=3,
            tasks_total=3,
            attempts=1,
            started_at=at(900),
            finished_at=at(960),
        ),
        status=RunStatus.FAILED,
        finished_at=at(3725),
    )


def test_the_numbers_come_from_the_state(tmp_path: Path) -> None:
    card = report.card(_finished(tmp_path), now=at(9999))
    assert [(s.id, s.duration, s.attempts, s.merge) for s in card.specs] == [
        ("050-errors", 754, 1, "merged"),
        ("051-config", 300, 2, "already-merged"),
        ("052-logging", 60, 1, ""),
        ("060-auth", None, 0, ""),
        ("061-rate", 60, 1, "not-merged-yet"),
    ]
    assert card.totals == report.Totals(
        specs=5,
        counts={"completed": 3, "failed": 1, "blocked": 1},
        merged=2,
        tasks_done=13,
        tasks_total=13,
        attempts=5,
        duration=3725,
        agent_time=754 + 300 + 60 + 60,
    )


def test_agent_time_counts_every_attempt_of_every_spec(tmp_path: Path) -> None:
    """The state keeps the seconds of the attempts before the last (``earlier_seconds``);
    the card's agent time is those and the last attempt's, per spec and in all."""
    finished = _finished(tmp_path)
    config = attrs.evolve(finished.spec("051-config"), earlier_seconds=120.0)
    card = report.card(finished.with_spec(config), now=at(9999))
    assert [(s.id, s.duration, s.agent_time) for s in card.specs][1] == ("051-config", 300, 420)
    assert card.totals.agent_time == 754 + 420 + 60 + 60
    data = json.loads(report.render_json(card))
    assert data["specs"][1]["agent_seconds"] == 420
    assert data["totals"]["agent_seconds"] == 754 + 420 + 60 + 60


def test_each_new_attempt_adds_the_last_ones_time() -> None:
    """``lifecycle.start`` banks the attempt that ended: two attempts of 300 s and 60 s, with
    a wait between them that is nobody's agent time."""
    from dagspec import lifecycle

    one = run(Path("/r"), "r", spec("a", SpecStatus.PENDING))
    where = {"worktree": "/w", "branch": "b", "spec_dir": None, "stage": "plan", "log": "l"}
    one, _ = lifecycle.start(one, "a", now=at(0), **where)
    one, _ = lifecycle.fail(one, {"a": ()}, "a", now=at(300), reason="x")
    one = lifecycle.prepare_retry(one, ["a"], one.options)
    one, _ = lifecycle.start(one, "a", now=at(1000), **where)
    assert one.spec("a").earlier_seconds == 300
    assert report.card(one, now=at(1060)).totals.agent_time == 360
    assert state.load_text(state.dump(one), "state").spec("a").earlier_seconds == 300


def test_an_attempt_that_never_ran_keeps_the_last_ones_time() -> None:
    """``lifecycle.fail_to_start`` (its worktree could not be made) banks the attempt
    before it, as ``start`` does: it is neither lost from the total nor from the row."""
    from dagspec import lifecycle

    one = run(Path("/r"), "r", spec("a", SpecStatus.PENDING))
    where = {"worktree": "/w", "branch": "b", "spec_dir": None, "stage": "plan", "log": "l"}
    one, _ = lifecycle.start(one, "a", now=at(0), **where)
    one, _ = lifecycle.fail(one, {"a": ()}, "a", now=at(300), reason="x")
    one = lifecycle.prepare_retry(one, ["a"], one.options)
    one, _ = lifecycle.fail_to_start(one, {"a": ()}, "a", now=at(1000), reason="y", log="l")
    card = report.card(one, now=at(2000))
    assert (card.specs[0].agent_time, card.totals.agent_time) == (300, 300)
    assert "  5m00s  2\n" in report.render_text(card)


def test_the_time_column_is_each_spec_s_agent_time_and_adds_up_to_the_total(
    tmp_path: Path,
) -> None:
    """TIME follows the totals' rule: every attempt of the spec (a killed driver's, to its
    log's last write, banked in ``earlier_seconds`` by ``resume``), not only its last one
    (which ``--json`` keeps as ``duration_seconds``)."""
    finished = _finished(tmp_path)
    config = attrs.evolve(finished.spec("051-config"), earlier_seconds=2400.0)
    card = report.card(finished.with_spec(config), now=at(0))
    text = report.render_text(card)
    assert "051-config   completed  done   4/4    45m00s  2         already merged" in text
    times = re.findall(r"  (\d+m\d\ds) +\d+(?:  |$)", text, re.MULTILINE)
    assert times == ["12m34s", "45m00s", "1m00s", "1m00s"]
    assert text.rstrip().endswith(", 59m34s agent time")  # 12m34s + 45m + 1m + 1m
    assert json.loads(report.render_json(card))["specs"][1]["duration_seconds"] == 300


def test_a_running_spec_is_timed_until_now(tmp_path: Path) -> None:
    running = run(
        tmp_path,
        "r",
        spec("a", SpecStatus.RUNNING, stage="implement", attempts=1, started_at=at(10)),
        status=RunStatus.RUNNING,
    )
    card = report.card(running, now=at(70))
    assert card.specs[0].duration == 60
    assert card.totals.duration == 70


TEXT = """\
report of run q1-20261124: failed
SPEC         STATUS     STAGE  TASKS  TIME    ATTEMPTS  MERGE
050-errors   completed  done   6/6    12m34s  1         merged cccccccccc
051-config   completed  done   4/4    5m00s   2         already merged
052-logging  failed     plan          1m00s   1
  ↳ autospec exited with 1 during plan: plan stage failed
060-auth     blocked                          0
061-rate     completed  done   3/3    1m00s   1         not merged yet
total: 5 specs (3 completed, 1 failed, 1 blocked), 1 merged, 1 already merged, tasks 13/13 of 3 \
specs, 5 attempts, \
1h02m wall, 19m34s agent time
"""


def test_text(tmp_path: Path) -> None:
    assert report.render_text(report.card(_finished(tmp_path), now=at(0))) == TEXT


def test_markdown(tmp_path: Path) -> None:
    text = report.render_markdown(report.card(_finished(tmp_path), now=at(0)))
    lines = text.splitlines()
    assert lines[0] == "### dag run `q1-20261124`: failed"
    assert lines[2] == "| Spec | Status | Stage | Tasks | Time | Attempts | Merge | Note |"
    assert lines[6] == (
        "| `052-logging` | failed | plan |  | 1m00s | 1 |  | "
        "autospec exited with 1 during plan: plan stage failed |"
    )
    assert lines[-1].startswith("**total: 5 specs (3 completed, 1 failed, 1 blocked)")


def test_markdown_shows_a_reason_as_it_reads_in_one_cell(tmp_path: Path) -> None:
    """A reason quoting a setup's output: its pipes (escaped or not) stay in the cell, its
    HTML is text, its Markdown is not applied."""
    finished = _finished(tmp_path)
    why = "setup failed:    a|b c\\|d <img src=x onerror=alert(1)> *no* _em_ `x` [l](u) &amp;"
    logging = attrs.evolve(finished.spec("052-logging"), error=why)
    text = report.render_markdown(report.card(finished.with_spec(logging), now=at(0)))
    row = text.splitlines()[6]
    assert row.endswith(
        " | setup failed:    a\\|b c\\\\\\|d &lt;img src=x onerror=alert(1)&gt; \\*no\\* "
        "\\_em\\_ \\`x\\` \\[l\\](u) &amp;amp; |"
    )
    assert row.startswith("| `052-logging` | failed |")
    unescaped = re.findall(r"(?<!\\)(?:\\\\)*\|", row)  # pipes after an even run of \
    assert len(unescaped) == 9  # 8 cells


def test_json_against_the_state(tmp_path: Path) -> None:
    data = json.loads(report.render_json(report.card(_finished(tmp_path), now=at(0))))
    assert data["format"] == 1
    assert data["finished_at"] == "2026-11-24T11:17:05Z"
    assert data["specs"][0] == {
        "id": "050-errors",
        "status": "completed",
        "stage": None,
        "tasks_done": 6,
        "tasks_total": 6,
        "duration_seconds": 754,
        "agent_seconds": 754,
        "attempts": 1,
        "merge": "merged",
        "merge_commit": MERGE,
        "error": None,
        "tokens_in": None,
        "tokens_out": None,
        "cost_usd": None,
    }
    assert data["totals"]["agent_seconds"] == 1174
    assert data["totals"]["duration_seconds"] == 3725


def test_dag_report_reads_the_newest_run_by_default(
    git_repo: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # piped: nothing cut, the totals on one line
    save(run(git_repo, "older", spec("a", SpecStatus.COMPLETED), started_at=at(-60)))
    save(_finished(git_repo))
    assert run_cli("report") == 0
    assert capsys.readouterr().out == TEXT
    assert run_cli("report", "older", "--json") == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == "older"
    assert run_cli("report", "q1-20261124", "--markdown") == 0
    assert capsys.readouterr().out.startswith("### dag run `q1-20261124`")


def test_dag_report_of_an_unknown_run_is_one_error_line(
    git_repo: Path, run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("report", "nope") == 1
    err = capsys.readouterr().err
    assert err.startswith("dag: error: ") and err.count("\n") == 1


def test_json_and_markdown_do_not_go_together(run_cli: Callable[..., int]) -> None:
    assert run_cli("report", "--json", "--markdown") == 2


def test_reported_usage_gets_its_columns_and_totals(tmp_path: Path) -> None:
    usage = {
        "050-errors": AgentUsage(1000, 200, 0.5),
        "051-config": AgentUsage(10, 2, None),
    }
    card = report.card(_finished(tmp_path), now=at(0), usage=usage)
    text = report.render_text(card)
    assert text.splitlines()[1].endswith("MERGE              TOKENS           COST")
    assert "merged cccccccccc  1000 in/200 out  $0.5000" in text
    assert text.rstrip().endswith("19m34s agent time, tokens 1010 in/202 out, $0.5000")
    data = report.to_json_data(card)
    assert data["totals"]["tokens_in"] == 1010
    assert data["totals"]["cost_usd"] == 0.5
    assert data["specs"][1]["cost_usd"] is None
    assert data["specs"][2]["tokens_in"] is None


def test_usage_is_read_from_claudes_result_lines_in_a_log(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(
        "=== dagspec: attempt 1\n"
        "┌─ RESULT: SUCCESS\n│ Turns: 3\n│ Cost: $0.1046\n│\n"
        "│ Tokens: in=2 out=9 cache_read=13368 cache_create=7924\n└─\n"
        "RESULT: SUCCESS\n  Cost: $0.2000\n  Tokens: in=100 out=50\n"
        "the agent wrote: Cost: $5 in a README\n"
    )
    assert read_usage(log) == AgentUsage(102, 59, 0.3046)
    log.write_text("[Stage 1/4] specify...\n")
    assert read_usage(log) is None
    assert read_usage(tmp_path / "missing.log") is None


def test_one_line_of_many_megabytes_is_read_past_in_bounded_memory(tmp_path: Path) -> None:
    """A setup's output with no newline (`head -c 1G /dev/zero | tr '\\0' y`, a progress bar
    of its own) is one line of gigabytes in the spec's log: the report card reads past it,
    holding at most a chunk, and still finds the usage after it."""
    import tracemalloc

    log = tmp_path / "a.log"
    with log.open("wb") as file:
        file.write(b"=== dagspec: setup: npm ci\n")
        for _ in range(40):
            file.write(b"y" * 1024 * 1024)  # 40 MiB, no newline
        file.write(b"\nRESULT: SUCCESS\n  Cost: $0.2000\n  Tokens: in=100 out=50\n")
    tracemalloc.start()
    try:
        usage = read_usage(log)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert usage == AgentUsage(100, 50, 0.2)
    assert peak < 1024 * 1024  # bytes: the 40 MiB line is never held


def test_the_tasks_total_says_how_many_specs_made_tasks(tmp_path: Path) -> None:
    """A failed spec and one blocked behind it never made tasks: "tasks 4/4" read as if
    everything was done. Every spec with its tasks: no "of N specs"."""
    done = spec("a", SpecStatus.COMPLETED, tasks_done=2, tasks_total=2, attempts=1)
    failed = spec("b", SpecStatus.FAILED, stage="plan", attempts=1)
    unfinished = run(tmp_path, "r", done, failed, status=RunStatus.FAILED)
    assert ", tasks 2/2 of 1 spec, " in report.totals_line(report.card(unfinished, now=at(0)))
    alone = run(tmp_path, "s", done, status=RunStatus.COMPLETED)
    assert ", tasks 2/2, " in report.totals_line(report.card(alone, now=at(0)))


def test_a_stopped_spec_is_said_interrupted_once(tmp_path: Path) -> None:
    """After a Ctrl-C the row said "interrupted" and the line under it "↳ interrupted"
    (its error is the status's word); another reason stays."""
    stopped = spec("a", SpecStatus.INTERRUPTED, stage="plan", attempts=1, error="interrupted")
    died = spec("b", SpecStatus.INTERRUPTED, stage="plan", attempts=1, error="the driver died")
    card = report.card(run(tmp_path, "r", stopped, died, status=RunStatus.INTERRUPTED), now=at(0))
    text = report.render_text(card)
    assert text.count("interrupted") == 4, text  # the run's, each row's, the totals'
    assert "  ↳ the driver died\n" in text and ", no tasks yet, " in text
    assert report.render_markdown(card).count("interrupted") == 4


@pytest.mark.parametrize("columns", [None, "300", "50"])
def test_a_long_reason_is_cut_only_where_columns_asks(
    git_repo: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    columns: str | None,
) -> None:
    """The reason under a failed spec was cut at 60 columns whatever the width: piped (no
    limit) and at COLUMNS=300 the newcomer read "Error: executing s…", as README says
    nothing is cut unless COLUMNS asks."""
    why = "autospec exited with 1 during implement: " + "Error: executing step 3 " * 5
    failed = spec("a", SpecStatus.FAILED, stage="implement", attempts=1, error=why.strip())
    save(run(git_repo, "r", failed, status=RunStatus.FAILED))
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert run_cli("report", "r") == 0
    note = next(line for line in capsys.readouterr().out.splitlines() if "↳" in line)
    if columns == "50":
        assert len(note) == 50 and note.endswith("…"), note
    else:
        assert note == f"  ↳ {why.strip()}"
