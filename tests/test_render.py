"""The pure renderers: tables and summaries compared as strings."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from dagspec import render
from dagspec.lifecycle import RunOptions, RunState, RunStatus, SpecStatus
from tests.run_states import at, run, spec

ANSI = re.compile(r"\x1b\[[0-9;]*m")
REPO = Path("/r")


def mixed(status: RunStatus = RunStatus.RUNNING) -> RunState:
    """One spec in each status."""
    return run(
        REPO,
        "q1",
        spec(
            "a",
            SpecStatus.COMPLETED,
            stage="implement",
            tasks_done=12,
            tasks_total=12,
            started_at=at(0),
            finished_at=at(250),
            merged=True,
            merge_commit="c" * 40,
        ),
        spec(
            "b",
            SpecStatus.RUNNING,
            stage="implement",
            tasks_done=5,
            tasks_total=12,
            started_at=at(10),
        ),
        spec(
            "c",
            SpecStatus.FAILED,
            layer="L1",
            stage="plan",
            started_at=at(300),
            finished_at=at(363),
            error="autospec exited with code 1\nTraceback (most recent call last):",
            exit_code=1,
            depends_on=("a",),
        ),
        spec("d", SpecStatus.BLOCKED, layer="L2", depends_on=("c",), blocked_by=("c",)),
        spec("e", SpecStatus.PENDING, layer="L2", depends_on=("a", "b")),
        spec("f", SpecStatus.INTERRUPTED, layer="L2", started_at=at(3), error="the driver died"),
        status=status,
    )


def test_table_of_every_status() -> None:
    assert render.status_table(mixed(), now=at(400), width=80, color=False) == (
        "SPEC  LAYER  STATUS         STAGE      TASKS           TIME   NOTE\n"
        "a     L0     ✓ completed    implement  12/12 [######]  4m10s  merged\n"
        "b     L0     ▸ running      implement   5/12 [##----]  6m30s\n"
        "c     L1     ✗ failed       plan                       1m03s\n"
        "  ↳ autospec exited with code 1\n"
        "d     L2     ⊘ blocked                                        blocked by c\n"
        "e     L2     ◦ pending                                        waits for b\n"
        "f     L2     ! interrupted                                    the driver died\n"
        "run q1 running\n"
        "  1 running, 1 completed, 1 failed, 1 blocked, 1 interrupted, 1 pending\n"
    )


def test_table_in_colour_paints_only_the_status_words() -> None:
    table = render.status_table(mixed(), now=at(400), width=80, color=True)
    assert table.splitlines()[0] == (
        "\x1b[1mSPEC  LAYER  STATUS         STAGE      TASKS           TIME   NOTE\x1b[0m"
    )
    assert "a     L0     \x1b[32m✓ completed\x1b[0m    implement" in table
    assert "c     L1     \x1b[31m✗ failed\x1b[0m       plan" in table
    assert "d     L2     \x1b[35m⊘ blocked\x1b[0m" in table
    assert "run q1 \x1b[36mrunning\x1b[0m\n" in table
    assert ANSI.sub("", table) == render.status_table(mixed(), now=at(400), width=80, color=False)


def test_a_wide_table_keeps_the_footer_on_one_line() -> None:
    table = render.status_table(mixed(), now=at(400), width=120, color=False)
    assert table.endswith(
        "run q1 running: 1 running, 1 completed, 1 failed, 1 blocked, 1 interrupted, 1 pending\n"
    )
    assert "1m03s  autospec exited with code 1\n" in table


@pytest.mark.parametrize("width", [1, 10, 20, 33, 40, 57, 64, 80, 81, 100, 200])
@pytest.mark.parametrize("color", [False, True])
def test_no_line_is_wider_than_width(width: int, color: bool) -> None:
    long = run(
        REPO,
        "a-run-with-a-rather-long-identifier-20261124-101500",
        *mixed().specs,
        spec("x" * 100, SpecStatus.FAILED, layer="L" * 40, error="e" * 300),
        status=RunStatus.FAILED,
    )
    table = render.status_table(long, now=at(400), width=width, color=color)
    assert max(len(line) for line in ANSI.sub("", table).splitlines()) <= width


def test_long_ids_are_cut_with_an_ellipsis() -> None:
    state = run(
        REPO,
        "r",
        spec("a" * 90, SpecStatus.RUNNING, stage="plan", started_at=at(0)),
        spec("short", layer="a-very-long-layer-name"),
        status=RunStatus.RUNNING,
    )
    lines = render.status_table(state, now=at(5), width=80, color=False).splitlines()
    assert lines[1] == "a" * 36 + "…  L0          ▸ running  plan          5s"
    assert lines[2] == "short" + " " * 34 + "a-very-lo…  ◦ pending"
    assert all(len(line) <= 80 for line in lines)


def test_fifty_specs_read_one_line_each() -> None:
    specs = [
        spec(
            f"{n:03d}-feature-number-{n}",
            SpecStatus.RUNNING if n % 5 == 0 else SpecStatus.COMPLETED,
            layer=f"L{n // 10}",
            stage="implement",
            tasks_done=n % 13,
            tasks_total=12 + n % 3,
            started_at=at(n),
            finished_at=None if n % 5 == 0 else at(n * 10),
        )
        for n in range(50)
    ]
    state = run(REPO, "big", *specs, status=RunStatus.RUNNING)
    lines = render.status_table(state, now=at(1000), width=80, color=False).splitlines()
    assert len(lines) == 1 + 50 + 1
    assert [line.split()[0] for line in lines[1:51]] == [s.id for s in specs]
    assert lines[-1] == "run big running: 10 running, 40 completed"
    assert all(len(line) <= 80 for line in lines)


def test_a_pending_spec_waits_only_for_what_is_not_completed() -> None:
    state = run(
        REPO,
        "r",
        spec("a", SpecStatus.COMPLETED),
        spec("b", SpecStatus.FAILED),
        spec("c", depends_on=("a", "b")),
        spec("d", depends_on=("a",)),
    )
    lines = render.status_table(state, now=at(0), width=80, color=False).splitlines()
    assert lines[3].endswith("◦ pending" + " " * 24 + "waits for b")
    assert lines[4] == "d     L0     ◦ pending"


def test_tasks_bar_and_time_of_a_spec_without_tasks_yet() -> None:
    state = run(
        REPO,
        "r",
        spec("a", SpecStatus.RUNNING, stage="specify", started_at=at(0)),
        spec("b", SpecStatus.RUNNING, stage="implement", tasks_done=0, tasks_total=3),
        status=RunStatus.RUNNING,
    )
    assert render.status_table(state, now=at(3725), width=80, color=False) == (
        "SPEC  LAYER  STATUS     STAGE      TASKS         TIME\n"
        "a     L0     ▸ running  specify                  1h02m\n"
        "b     L0     ▸ running  implement  0/3 [------]\n"
        "run r running: 2 running\n"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.9, "59s"), (60, "1m00s"), (725, "12m05s"), (3600, "1h00m"), (-5, "0s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert render.format_duration(seconds) == text


def test_summary_of_a_failed_run() -> None:
    state = run(
        REPO,
        "q1",
        spec("a", SpecStatus.COMPLETED, merged=True),
        spec("b", SpecStatus.FAILED, error="plan failed\ndetails", log="/logs/b.log"),
        spec("c", SpecStatus.FAILED, exit_code=2),
        spec("d", SpecStatus.BLOCKED, blocked_by=("b",)),
        status=RunStatus.FAILED,
    )
    assert render.summary(state, color=False) == (
        "run q1 failed: 1 completed, 2 failed, 1 blocked\n"
        "  ✗ b: plan failed\n"
        "    log: /logs/b.log\n"
        "  ✗ c: exit code 2\n"
        "    log: /r/.autospec/state/dag-runs/q1/logs/c.log\n"
        "next: dag retry q1 b c\n"
    )
    coloured = render.summary(state, color=True)
    assert coloured.startswith("run q1 \x1b[31mfailed\x1b[0m: ")
    assert "  \x1b[31m✗\x1b[0m b: plan failed\n" in coloured


@pytest.mark.parametrize(
    ("run_status", "statuses", "merged", "expected"),
    [
        (RunStatus.RUNNING, [SpecStatus.FAILED], False, "dag status r"),
        (RunStatus.INTERRUPTED, [SpecStatus.COMPLETED], True, "dag resume r"),
        (RunStatus.FAILED, [SpecStatus.FAILED, SpecStatus.INTERRUPTED], False, "dag resume r"),
        (RunStatus.FAILED, [SpecStatus.FAILED, SpecStatus.PENDING], False, "dag resume r"),
        (RunStatus.FAILED, [SpecStatus.COMPLETED, SpecStatus.FAILED], False, "dag retry r s1"),
        (RunStatus.COMPLETED, [SpecStatus.COMPLETED, SpecStatus.COMPLETED], False, "dag merge r"),
        (RunStatus.COMPLETED, [SpecStatus.COMPLETED], True, None),  # nothing left to do
    ],
)
def test_next_command(
    run_status: RunStatus, statuses: list[SpecStatus], merged: bool, expected: str | None
) -> None:
    specs = [spec(f"s{i}", status, merged=merged) for i, status in enumerate(statuses)]
    state = run(REPO, "r", *specs, status=run_status)
    assert render.next_command(state) == expected
    end = f"next: {expected}" if expected else "nothing left to do: every spec is merged into main"
    assert render.summary(state, color=False).endswith(f"{end}\n")


def test_runs_table() -> None:
    states = [
        mixed(),
        run(
            REPO,
            "older",
            spec("a", SpecStatus.COMPLETED),
            status=RunStatus.COMPLETED,
            started_at=at(-86400),
            finished_at=at(-86400 + 4000),
        ),
    ]
    assert render.runs_table(states, now=at(400), width=140, color=False) == (
        "RUN    DAG       STATUS       STARTED            TIME   SPECS\n"
        "q1     dag.yaml  ▸ running    2026-11-24 10:15Z  6m40s  "
        "1 running, 1 completed, 1 failed, 1 blocked, 1 interrupted, 1 pending\n"
        "older  dag.yaml  ✓ completed  2026-11-23 10:15Z  1h06m  1 completed\n"
    )
    narrow = render.runs_table(states, now=at(400), width=60, color=True)
    assert max(len(line) for line in ANSI.sub("", narrow).splitlines()) <= 60
    assert "\x1b[36m▸ running\x1b[0m" in narrow


def _retried_run() -> RunState:
    """At 200 s: a completed on its second attempt after 61 s on its first and 60 s on
    this one; b running its second attempt, 30 s on its first and 30 s on this one."""
    retried = spec(
        "a", SpecStatus.COMPLETED, attempts=2, earlier_seconds=61.0,
        started_at=at(100), finished_at=at(160),
    )  # fmt: skip
    running = spec("b", SpecStatus.RUNNING, attempts=2, earlier_seconds=30.0, started_at=at(170))
    return run(REPO, "r", retried, running, status=RunStatus.RUNNING)


def test_a_spec_s_time_counts_every_attempt_as_the_report_card_does() -> None:
    """A spec retried once showed 1s in ``dag status`` (its last attempt) and 2s in ``dag
    report`` (every attempt)."""
    from dagspec import report

    state = _retried_run()
    table = render.status_table(state, now=at(200), width=80, color=False).splitlines()
    card = report.render_text(report.card(state, now=at(200))).splitlines()
    assert table[1].split()[-4:] == ["2m01s", "not", "merged", "yet"]  # as the card says
    assert table[2].split()[-3:] == ["1m00s", "attempt", "2"]
    assert " 2m01s " in card[2] and " 1m00s " in card[3], card


def test_the_live_board_times_a_spec_as_status_and_the_report_card_do() -> None:
    """The board (``dag run`` on a terminal, ``dag status --watch``) timed a spec by its
    last attempt: a spec retried after 1m01s read 1m00s on the board, 2m01s in ``dag
    status`` and ``dag report``, for the same run at the same moment."""
    from dagspec import board, report

    state = _retried_run()
    view = board.View(width=100, height=10, now=at(200), columns=board.Columns.of(state))
    frame = board.frame(state, view)
    rows = [next(line for line in frame if f" {spec_id} " in line) for spec_id in "ab"]
    table = render.status_table(state, now=at(200), width=100, color=False).splitlines()
    card = report.render_text(report.card(state, now=at(200))).splitlines()
    assert (rows[0].split()[-1], rows[1].split()[-3]) == ("2m01s", "1m00s"), frame
    assert (table[1].split()[-4], table[2].split()[-3]) == ("2m01s", "1m00s")
    assert " 2m01s " in card[2] and " 1m00s " in card[3], card


def test_a_no_merge_run_to_retry_is_also_told_to_merge_what_completed() -> None:
    """Under ``--no-merge`` a retry (or resume) does not merge at its end either: the
    completed specs, "not on main yet", got no command that takes them."""
    specs = (spec("a", SpecStatus.COMPLETED), spec("b", SpecStatus.FAILED))
    kept = run(REPO, "r", *specs, status=RunStatus.FAILED, options=RunOptions(merge=False))
    expected = "dag retry r b; dag merge r merges what completed"
    assert render.next_command(kept) == expected
    assert render.summary(kept, color=False).endswith(f"next: {expected}\n")
    assert render.next_command(attrs.evolve(kept, options=RunOptions())) == "dag retry r b"


def test_a_stopped_spec_s_note_does_not_repeat_its_status() -> None:
    stopped = spec("a", SpecStatus.INTERRUPTED, stage="plan", error="interrupted")
    state = run(REPO, "r", stopped, status=RunStatus.INTERRUPTED)
    table = render.status_table(state, now=at(0), width=80, color=False)
    assert table.count("interrupted") == 3, table  # the row's, the run's and its count's


@pytest.mark.parametrize(
    ("merged", "commit", "word"),
    [(False, None, "not merged yet"), (True, "c" * 40, "merged"), (True, None, "already merged")],
)
def test_a_completed_spec_s_note_is_the_report_card_s_merge_word(
    merged: bool, commit: str | None, word: str
) -> None:
    """A spec completed but not merged (`dag retry RUN SPEC --no-merge`) had a blank NOTE
    in ``dag status``, a merged one `merged`, while ``dag report`` said `not merged yet`."""
    from dagspec import report

    done = spec("a", SpecStatus.COMPLETED, merged=merged, merge_commit=commit)
    state = run(REPO, "r", done, finished_at=at(200))
    table = render.status_table(state, now=at(200), width=100, color=False).splitlines()
    card = report.render_text(report.card(state, now=at(200))).splitlines()
    assert table[1].endswith(f"  {word}"), table
    assert any(f" {word}" in line for line in card), card
