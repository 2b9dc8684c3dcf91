"""The live board (issue 14): drawn on a terminal emulator, as a user would see it."""

from __future__ import annotations

import importlib.util
import io
import itertools
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import pyte
import pytest
import trio

from dagspec import board, estimates, progress, symbols, terminal
from dagspec.board import Columns, View
from dagspec.lifecycle import RunOptions, RunState, RunStatus, SpecStatus
from tests.board_support import (
    FAILS,
    Clock,
    Terminal,
    end_of,
    running_ids,
    spec_id,
    state_at,
)
from tests.conftest import ROOT
from tests.run_states import at, run, save, spec

SIZES = [(80, 24), (100, 30), (40, 20), (200, 60)]
PROMPT = "$ dag run dag.yaml --parallel"


def view(state: RunState, width: int = 100, height: int = 30, **fields: object) -> View:
    return View(width=width, height=height, now=at(fields.pop("seconds", 0)),  # type: ignore[arg-type]
                columns=Columns.of(state), **fields)  # type: ignore[arg-type]  # fmt: skip


def moments(count: int) -> list[float]:
    """The seconds at which the tests look: the first ones, the middle, the end."""
    end = end_of(count)
    middle = end // 2
    return [*range(0, 8), middle, middle + 1, middle + 2, end - 1, end]


def in_view(spec: str, lines: list[str]) -> bool:
    shown = spec[: board.ID_MIN - 1]  # an id may be cut to ID_MIN columns, "…" last
    return any(f" {shown}" in line for line in lines)


# --- the frame ---------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize("count", [6, 45, pytest.param(200, marks=pytest.mark.slow)])
def test_every_frame_fits_and_shows_every_running_spec(width: int, height: int, count: int) -> None:
    for seconds in moments(count):
        state = state_at(count, seconds)
        lines = board.frame(state, view(state, width, height, seconds=seconds))
        assert len(lines) <= height
        assert all(len(line) < width for line in lines), lines
        for running in running_ids(state):
            assert in_view(running, lines), (seconds, running, lines)


def test_a_small_run_shows_every_spec_in_order_with_the_header() -> None:
    state = state_at(6, 4)
    lines = board.frame(state, view(state, seconds=4))
    assert lines[0] == "run big · 4/6 done · 4s · about 2s left"
    assert lines[1].split() == ["SPEC", "LAYER", "STATUS", "STAGE", "TASKS", "TIME"]
    assert [line.split()[1] for line in lines[2:]] == [spec_id(i) for i in range(6)]
    assert lines[6].startswith(f"{board.SPINNER[0]} 104-feature-4")
    assert lines[6].split()[3:] == ["running", "implement", "4/12", "[##----]", "1s"]


def test_when_space_runs_out_completed_specs_fold_and_pending_layers_say_it_once() -> None:
    state = state_at(45, 16)  # layer L0 done, L1 running, L2 waiting
    lines = board.frame(state, view(state, height=20, seconds=16))
    assert lines[-3:] == [
        "◦ 7 pending in L1  ready: waits for a free slot",
        "◦ 15 pending in L2  waits for layer L1: 11 left",
        "✓ 16 completed",
    ]
    assert [line.split()[1] for line in lines[2:9]] == [spec_id(i) for i in range(19, 23)] + [
        spec_id(i)
        for i in range(16, 19)  # the three that finished last
    ]


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (RunOptions(parallel=True, max_parallel=4), "ready"),  # a slot is free: it starts
        (RunOptions(), "ready: waits for a free slot"),  # one at a time, and one runs
    ],
)
def test_a_ready_spec_waits_for_a_slot_only_while_every_slot_is_taken(
    options: RunOptions, said: str
) -> None:
    """A newcomer read "waits for a free slot" with 3 of 4 slots free (the spec's worktree
    being made) as --parallel not working."""
    running = spec("a", SpecStatus.RUNNING, started_at=at(0), stage="plan")
    state = run(Path("/r"), "r", running, spec("b"), status=RunStatus.RUNNING, options=options)
    lines = board.frame(state, view(state, seconds=1))
    assert next(line for line in lines if " b " in line).endswith(f"  {said}")


def test_a_reason_that_only_names_the_status_is_not_said_twice() -> None:
    """A stopped run's specs are interrupted with the reason "interrupted": the row said
    ``! a  L0  interrupted  plan  2s  interrupted``."""
    stopped = spec("a", SpecStatus.INTERRUPTED, stage="plan", error="interrupted")
    gone = spec("b", SpecStatus.INTERRUPTED, stage="plan", error="its driver was killed")
    state = run(Path("/r"), "r", stopped, gone, status=RunStatus.INTERRUPTED)
    lines = board.frame(state, view(state, seconds=2))
    assert next(line for line in lines if " a " in line).count("interrupted") == 1
    assert next(line for line in lines if " b " in line).endswith("its driver was killed")


def test_the_failed_reason_keeps_its_end_and_the_bar_goes_before_the_id() -> None:
    state = state_at(6, end_of(6))
    wide = board.frame(state, view(state, 200, seconds=end_of(6)))
    assert wide[-1].endswith(FAILS)
    narrow = board.frame(state, view(state, 86, seconds=end_of(6)))
    assert "[" not in "".join(narrow[2:])
    assert narrow[-1].startswith("✗ 105-feature-5")
    assert narrow[-1].endswith("  …3 of 10 tests failed")
    assert narrow[0].endswith("failed")


@pytest.mark.parametrize(
    ("text", "width", "cut"),
    [
        ("short", 10, "short"),
        ("a: b: what went wrong", 16, "…what went wrong"),
        ("a: b: what went wrong", 20, "…b: what went wrong"),
        ("a: what went wrong", 8, "what we…"),
    ],
)
def test_reasons_are_cut_at_the_start_of_a_clause(text: str, width: int, cut: str) -> None:
    assert board.cut_reason(text, width) == cut


def test_the_estimate_follows_the_longest_chain_and_the_slots() -> None:
    assert estimates.eta(state_at(6, 0), at(0)) is None  # nothing has finished yet
    # 6 specs of 3 s, 4 at once: after the first 4, 2 run (1 s in) -> 2 s left
    assert estimates.eta(state_at(6, 4), at(4)) == 2.0
    # 41 specs of 3 s left (4 of them started) shared by 4 slots: more than any chain
    assert estimates.eta(state_at(45, 3), at(3)) == (41 * 3 - 4 * 0) / 4
    assert estimates.eta(state_at(6, end_of(6)), at(end_of(6))) is None


def test_the_estimate_uses_earlier_runs_before_anything_has_finished() -> None:
    # The scheduler's expected durations (priority.expected_durations), not a second rule:
    # a spec with a history weighs its median; the others weigh the median of the known.
    first, *others = [spec_id(i) for i in range(6)]
    history = {first: [20.0, 40.0]}  # 30 s; the other five count as 30 s too
    # 4 running, each 1 s in; 2 waiting; 4 slots: 6 x 30 - 4 x 1 s of work, over 4 slots
    assert estimates.eta(state_at(6, 1), at(1), history) == (6 * 30 - 4) / 4
    history |= {other: [3.0] for other in others}  # 30 s for the first, 3 s for the rest
    assert estimates.eta(state_at(6, 1), at(1), history) == 29.0  # the first's own chain


def test_stopping_says_so_in_the_header_and_on_each_running_row() -> None:
    state = state_at(6, 1)
    stopping = board.stopping_line(10.0, 4)
    lines = board.frame(state, view(state, seconds=1, stopping=stopping))
    assert lines[1] == ("stopping: waiting up to 10 s for 4 agents (Ctrl-C again to kill them now)")
    assert [line.split()[3] for line in lines[3:7]] == ["stopping"] * 4


def test_column_widths_are_fixed_by_the_dag_and_only_grow() -> None:
    first = state_at(45, 0)
    columns = Columns.of(first)
    assert columns == Columns(spec=len(spec_id(44)), layer=len("LAYER"), fraction=5)
    many = first.with_spec(spec(spec_id(0), tasks_done=5, tasks_total=120))
    assert columns.widen(many).fraction == len("120/120")
    assert columns.widen(many).widen(first).fraction == len("120/120")


# --- on a terminal --------------------------------------------------------------------------


def start_board(term: Terminal, clock: Clock, count: int) -> terminal.Board:
    """A screen already full of earlier output, then the board's first frame at its bottom."""
    term.write("\n".join([PROMPT] * term.screen.lines) + "\n")
    shown = terminal.Board(term, color=False, size=term.size, clock=clock)
    shown.show(state_at(count, 0))
    return shown


@pytest.mark.slow
@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize("count", [6, 45, 200])
def test_a_run_leaves_at_most_one_screen_in_the_scrollback(
    width: int, height: int, count: int
) -> None:
    term, clock = Terminal(width, height), Clock()
    shown = start_board(term, clock, count)
    before = term.scrolled  # what the first frame pushed up
    for seconds in moments(count):
        clock.seconds = seconds
        state = state_at(count, seconds)
        shown.show(state)
        shown.tick()
        for running in running_ids(state):
            assert in_view(running, term.lines), (seconds, running, term.lines)
    shown.close()
    assert term.scrolled - before <= height
    history = ["".join(c.data for c in line.values()) for line in term.screen.history.top]
    assert sum(line.startswith("run big ·") for line in history) <= 1


@pytest.mark.slow
def test_times_tick_while_agents_are_quiet() -> None:
    term, clock = Terminal(100, 30), Clock()
    shown = start_board(term, clock, 45)
    clock.seconds = 1
    shown.show(state_at(45, 1))
    row = next(line for line in term.lines if spec_id(0) in line)
    clock.seconds = 2  # nothing happened: only the heartbeat
    shown.tick()
    ticked = next(line for line in term.lines if spec_id(0) in line)
    assert row.split()[-1] == "1s" and ticked.split()[-1] == "2s"
    assert row[0] != ticked[0]  # the spinner turned


@pytest.mark.slow
@pytest.mark.parametrize(("before", "after"), [((100, 30), (40, 20)), ((80, 24), (200, 60))])
def test_a_resize_redraws_cleanly_at_the_new_size(
    before: tuple[int, int], after: tuple[int, int]
) -> None:
    term, clock = Terminal(*before), Clock()
    shown = start_board(term, clock, 45)
    clock.seconds = 5
    shown.show(state_at(45, 5))
    term.resize(*after)
    shown.tick()
    assert shown.columns is not None
    expected = board.frame(
        state_at(45, 5),
        View(width=after[0], height=after[1] - 1, now=at(5), columns=shown.columns,
             tick=shown.ticks),
    )  # fmt: skip
    assert term.lines == expected + [""] * (after[1] - len(expected))


def test_the_board_hides_the_cursor_and_shows_it_again_on_close() -> None:
    term, clock = Terminal(80, 24), Clock()
    shown = start_board(term, clock, 6)
    assert term.screen.cursor.hidden
    shown.close()
    assert not term.screen.cursor.hidden
    assert term.lines[term.screen.cursor.y - 1].startswith("◦ 105-feature-5  L0     pending")


def test_after_the_first_ctrl_c_the_board_says_it_is_stopping() -> None:
    term, clock = Terminal(100, 30), Clock()
    shown = start_board(term, clock, 6)
    shown.stopping(state_at(6, 1), 10.0, 4)
    lines = [line for line in term.lines if line]
    start = lines.index("run big · 0/6 done · 0s")
    assert lines[start + 1] == (
        "stopping: waiting up to 10 s for 4 agents (Ctrl-C again to kill them now)"
    )
    assert [line.split()[3] for line in lines[start + 3 : start + 7]] == ["stopping"] * 4


@pytest.mark.parametrize(
    ("width", "said"),
    [
        (60, "stopping 4 agents (up to 10 s); Ctrl-C again kills them"),
        (40, "stopping; Ctrl-C again kills them"),
    ],
)
def test_a_narrow_board_s_stopping_line_keeps_what_a_second_ctrl_c_does(
    width: int, said: str
) -> None:
    """At COLUMNS=60 the line was cut to `stopping: waiting up to 10 s for 2 agents
    (Ctrl-C again to…`, losing the instruction: a shorter wording fits."""
    term, clock = Terminal(width, 30), Clock()
    shown = start_board(term, clock, 6)
    shown.stopping(state_at(6, 1), 10.0, 4)
    assert said in [line.rstrip() for line in term.lines], term.lines


def test_the_stopping_line_names_the_work_being_committed_and_signed(tmp_path: Path) -> None:
    """After a Ctrl-C, a spec whose agent is done still has its work committed (and signed,
    which a signer can make wait): the line said "no agent is running" then."""
    line = board.stopping_line
    assert line(10.0, 0) == "stopping: no agent is running"
    assert line(10.0, 0, committing=1) == "stopping: committing the work of 1 spec"
    assert line(10.0, 0, committing=1, signs=True) == (
        "stopping: committing and signing the work of 1 spec (Ctrl-C again to stop signing now)"
    )
    assert line(10.0, 2, committing=3, signs=True) == (
        "stopping: waiting up to 10 s for 2 agents and committing and signing the work of 3 "
        "specs (Ctrl-C again to kill them and stop signing now)"
    )
    done = spec("a", SpecStatus.RUNNING, agent_done=True)
    others = (spec("b", SpecStatus.RUNNING), spec("c", SpecStatus.COMPLETED, agent_done=False))
    assert board.committing(run(tmp_path, "r", done, *others, status=RunStatus.RUNNING)) == 1


def test_frames_are_in_synchronized_output_brackets() -> None:
    out = io.StringIO()
    shown = terminal.Board(out, color=False, size=lambda: os.terminal_size((80, 24)))
    shown.show(state_at(6, 0))
    shown.tick()
    frames = out.getvalue().split(terminal.SYNC_END)
    assert len(frames) == 3 and frames[-1] == ""
    assert all(f.startswith(terminal.SYNC_START) for f in frames[:2])


# --- plain output, encodings, widths -------------------------------------------------------------


def test_plain_progress_never_moves_the_cursor() -> None:
    out = io.StringIO()
    report = progress.reporter(live=False, color=False, out=out)
    from dagspec.lifecycle import Event

    report(state_at(6, 4), Event(spec_id(3), "completed"))
    report.tick()
    report.close()
    assert out.getvalue().endswith(f"] [4/6] {spec_id(3)}: completed\n")
    assert "\x1b" not in out.getvalue()


def test_ascii_output_gets_the_symbols_of_nox() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")
    assert not symbols.can_encode(stream)
    out = symbols.AsciiFallback(stream)
    out.write("✓ a ◦ b ▸ c ✗ d ⊘ e ! f … ↳ ⠋ · é\n")
    out.flush()
    assert raw.getvalue() == b"+ a o b > c x d - e ! f ~ > | - ?\n"


def test_every_status_symbol_has_an_ascii_stand_in() -> None:
    raw = io.BytesIO()
    out = symbols.AsciiFallback(io.TextIOWrapper(raw, encoding="ascii"))
    out.write("".join(board.SYMBOL.values()))
    out.flush()
    assert b"?" not in raw.getvalue()
    assert len(raw.getvalue()) == len(board.SYMBOL)


def test_a_dumb_terminal_gets_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as tty:
        assert terminal.use_live("auto", tty)
        monkeypatch.setenv("TERM", "dumb")
        assert not terminal.use_live("auto", tty)
        assert terminal.use_live("tty", tty)
    os.close(leader)
    assert not terminal.use_live("plain", sys.stdout)


def test_piped_status_cuts_nothing_unless_columns_asks(
    git_repo: Path,
    run_cli: object,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    long_id = "070-" + "x" * 96
    save(run(git_repo, "r", spec(long_id, SpecStatus.FAILED, error="boom " * 30)))
    monkeypatch.delenv("COLUMNS", raising=False)
    assert run_cli("status") == 0  # type: ignore[operator]
    out = capsys.readouterr().out
    assert long_id in out and ("boom " * 30).strip() in out
    monkeypatch.setenv("COLUMNS", "40")
    assert run_cli("status") == 0  # type: ignore[operator]
    assert all(len(line) <= 40 for line in capsys.readouterr().out.splitlines()[:2])


@pytest.mark.slow
def test_status_in_ascii_prints_the_fallbacks(git_repo: Path) -> None:
    save(
        run(
            git_repo,
            "r",
            spec("a", SpecStatus.COMPLETED, merged=True),
            spec("b", SpecStatus.FAILED),
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "dagspec", "status"],
        cwd=git_repo,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "ascii"},
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b"+ completed" in done.stdout and b"x failed" in done.stdout


# --- the heartbeat ----------------------------------------------------------------------------


async def test_the_heartbeat_ticks_once_a_second(autojump_clock: trio.abc.Clock) -> None:
    ticks: list[float] = []

    class Counting(progress.Lines):
        def tick(self) -> None:
            ticks.append(trio.current_time())

    with trio.move_on_after(3.5):
        await progress.heartbeat(Counting(io.StringIO()))
    assert len(ticks) == 3
    assert [round(b - a, 6) for a, b in itertools.pairwise(ticks)] == [1.0, 1.0]


# --- the real thing ---------------------------------------------------------------------------


@pytest.mark.slow
def test_dag_demo_on_a_100x30_terminal(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dagspec", "demo", "--dir", str(tmp_path / "d"), "--progress",
         "tty"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100", "LINES": "30"},
        capture_output=True,
        check=False,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    term = Terminal(100, 30)
    term.stream = pyte.ByteStream(term.screen)  # type: ignore[assignment]
    term.stream.feed(done.stdout)
    history = ["".join(c.data for c in row.values()).rstrip() for row in term.screen.history.top]
    everything = "\n".join([*history, *term.lines])
    # One copy of the board's header in the whole scrollback: frames were redrawn in place,
    # and what follows them (merge report, report card, summary) scrolls it up only once.
    assert everything.count("run demo · ") == 1
    assert "run demo · 6/6 done" in everything
    assert "run demo completed: 6 completed" in "\n".join(term.lines)
    assert not term.screen.cursor.hidden
    # the README's picture is made from this same output, by docs/make_board_svg.py
    spec_ = importlib.util.spec_from_file_location("make_svg", ROOT / "docs/make_board_svg.py")
    assert spec_ is not None and spec_.loader is not None
    make_svg = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(make_svg)
    picture = ElementTree.fromstring(make_svg.svg(make_svg.busiest_frame(done.stdout)))
    texts = "".join(t.text or "" for t in picture.iter("{http://www.w3.org/2000/svg}text"))
    assert "run demo ·" in texts and "060-user-auth" in texts


@pytest.mark.slow
def test_dag_demo_in_ascii_prints_plain_ascii_lines(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dagspec", "demo", "--dir", str(tmp_path / "d")],
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "ascii"},
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert b"] [6/6] " in done.stdout and b"run demo completed: 6 completed" in done.stdout
    assert done.stdout.isascii() and b"\x1b" not in done.stdout


@pytest.mark.slow
def test_ctrl_c_leaves_watch_with_130_and_the_cursor_shown(git_repo: Path) -> None:
    save(run(git_repo, "r", spec("a", SpecStatus.RUNNING, started_at=at(0)),
             status=RunStatus.RUNNING))  # fmt: skip
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagspec", "status", "--watch"],
        cwd=git_repo,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80", "LINES": "24"},
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 20
        while b"run r" not in seen:  # a watch that never draws fails, not hangs
            left = deadline - time.monotonic()
            assert left > 0 and select.select([leader], [], [], left)[0], seen
            seen += os.read(leader, 1 << 16)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
        while True:
            try:
                chunk = os.read(leader, 1 << 16)
            except OSError:  # the other end is closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
        proc.kill() if proc.poll() is None else None
        assert proc.stderr is not None
        proc.stderr.close()
    assert terminal.HIDE_CURSOR.encode() in seen
    assert seen.rstrip(b"\r\n").endswith(terminal.SHOW_CURSOR.encode() + terminal.SYNC_END.encode())


def test_a_waiting_spec_gets_one_hint_line_saying_how_to_start_it_now() -> None:
    from datetime import timedelta

    until = at(0) + timedelta(days=3)
    waiting = spec("a", SpecStatus.WAITING, waiting_until=until, stage="plan")
    state = run(Path("/r"), "r", waiting, spec("b", SpecStatus.PENDING))
    lines = board.frame(state, view(state))
    hints = [line for line in lines if "starts it now" in line]
    assert hints == [f"a waits for a usage limit until {until:%Y-%m-%d %H:%M}Z: `dag retry r a` "
                     "starts it now"]  # fmt: skip
    assert lines.index(hints[0]) == 1  # under the header, where a Ctrl-C's stopping line goes


def test_a_reason_and_a_hint_say_dag_as_it_was_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """The board and the plain lines showed a join conflict's reason as `` `dag retry r a` ``
    (and the board its hint for a waiting spec) where every other hint says the form that
    works (``console.dag_command``: here ``python -m dagspec``)."""
    from datetime import timedelta

    from dagspec import console
    from dagspec.lifecycle import Event

    monkeypatch.setattr(sys, "argv", ["/somewhere/dagspec/__main__.py", "run"])
    monkeypatch.setattr(console, "_elsewhere", [])  # typed in the repository: no --repo
    monkeypatch.setattr(console, "_first", [])
    reason = "conflicts in x.py: merge by hand and commit, then `dag retry r a`"
    failed = spec("a", SpecStatus.FAILED, error=reason, started_at=at(0), finished_at=at(1))
    waiting = spec("b", SpecStatus.WAITING, waiting_until=at(0) + timedelta(hours=1))
    state = run(Path("/r"), "r", failed, waiting, status=RunStatus.RUNNING)
    term = Terminal(160, 12)
    shown = terminal.Board(term, color=False, size=term.size, clock=lambda: at(2))
    shown.show(state)
    shown.close()
    screen = "\n".join(term.lines)
    assert "-m dagspec retry r a`" in screen and "-m dagspec retry r b`" in screen, screen
    assert "`dag retry" not in screen
    out = io.StringIO()
    progress.reporter(live=False, color=False, out=out)(state, Event("a", "failed", reason))
    assert out.getvalue().endswith("-m dagspec retry r a`\n") and "`dag retry" not in out.getvalue()
