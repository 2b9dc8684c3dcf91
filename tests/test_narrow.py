"""Every line fits, however narrow the terminal (issue 14's leftovers): the live board on a
terminal emulator at every width from 10 to 200 columns, and ``dag status``'s table, which
gives up its columns in the same order (``fit.GIVE_UP``): the bar first, the time never."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from dagspec import board, fit, render, terminal
from dagspec.board import Columns, View
from dagspec.lifecycle import RunState, RunStatus, SpecStatus
from tests.board_support import Clock, Terminal, end_of, spec_id, state_at
from tests.run_states import at, run, save, spec

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# An agent's last words: wide characters, a combining accent, an escape sequence and a bell.
WILD = "error: 构建失败：测试未通过 e\u0301 \x1b[31mred\x1b[0m \x07 " * 3


def wild(count: int, seconds: float) -> RunState:
    """The simulated run, its first spec failed with a note that is hard to fit."""
    state = state_at(count, seconds)
    first = attrs.evolve(state.specs[0], status=SpecStatus.FAILED, error=WILD, exit_code=1)
    return state.with_spec(first)


def moments(count: int) -> list[float]:
    end = end_of(count)
    return [1, end // 2, end]


@pytest.mark.parametrize("count", [6, pytest.param(45, marks=pytest.mark.slow)])
def test_no_frame_line_reaches_the_last_column_at_any_width(count: int) -> None:
    for width in range(1, 201):
        for seconds in moments(count):
            state = wild(count, seconds)
            stopping = board.stopping_line(10.0, 4) if seconds == 1 else None
            shown = View(width=width, height=12, now=at(seconds), columns=Columns.of(state),
                         color=width % 2 == 0, stopping=stopping)  # fmt: skip
            lines = board.frame(state, shown)
            assert len(lines) <= 12
            for line in lines:
                plain = ANSI.sub("", line)
                assert fit.width_of(plain) <= max(width - 1, 0), (width, line)
                assert "\x07" not in plain and "\x1b" not in plain


def _nfc(lines: list[str]) -> list[str]:
    return [unicodedata.normalize("NFC", line) for line in lines]


@pytest.mark.parametrize(
    "widths",
    [range(10, 41), pytest.param(range(41, 201), marks=pytest.mark.slow)],
    ids=["10-40", "41-200"],
)
def test_the_board_never_wraps_on_a_terminal_10_to_200_columns_wide(widths: range) -> None:
    """A wrapped line would push the frame's lines apart and the redraw, which moves the
    cursor up by the lines it drew, would land a line low: after every frame the screen
    must show exactly that frame, and the scrollback grow by less than one screen."""
    for width in widths:
        term, clock = Terminal(width, 14), Clock()
        term.write("$\n" * 14)
        shown = terminal.Board(term, color=True, size=term.size, clock=clock)
        first = term.scrolled
        for seconds in moments(45):
            clock.seconds = seconds
            state = wild(45, seconds)
            shown.show(state)
            assert shown.columns is not None
            view = View(width=width, height=13, now=at(seconds), columns=shown.columns,
                        tick=shown.ticks)  # fmt: skip
            expected = _nfc([ANSI.sub("", line) for line in board.frame(state, view)])
            lines = _nfc(term.lines)
            start = lines.index(expected[0])
            assert lines[start : start + len(expected)] == expected, (width, seconds)
        assert term.scrolled - first < 14, width


def test_a_row_cut_by_the_width_ends_in_an_ellipsis() -> None:
    state = state_at(6, 5)
    lines = board.frame(state, View(width=12, height=12, now=at(5), columns=Columns.of(state)))
    assert lines[0] == "4/6 done ·…"
    assert all(len(line) <= 11 for line in lines)
    assert any(line.endswith("…") for line in lines[2:])


# --- dag status: the same order of giving up ---------------------------------------------------


def _finished(state: RunState, repo: Path) -> RunState:
    """``state`` stopped at 5 s, its running specs interrupted: times that do not tick."""
    for one in state.specs:
        if one.status is SpecStatus.RUNNING:
            stopped = attrs.evolve(one, status=SpecStatus.INTERRUPTED, finished_at=at(5))
            state = state.with_spec(stopped)
    return attrs.evolve(state, repo=str(repo), status=RunStatus.INTERRUPTED, finished_at=at(5))


def _status(run_cli: Callable[..., int], capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert run_cli("status", "big") == 1
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("columns", [50, 44, 40, 36])
def test_narrow_status_gives_up_the_bar_and_keeps_the_time(
    git_repo: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    columns: int,
) -> None:
    save(_finished(state_at(6, 4), git_repo))
    monkeypatch.setenv("COLUMNS", str(columns))
    lines = _status(run_cli, capsys)
    assert lines[0].split()[-1] == "TIME"
    running = next(line for line in lines if line.startswith(spec_id(4)[:4]))
    assert "[" not in running and "interrupted" in running
    assert running.split()[-1] == "2s"
    assert ("4/12" in running) == (columns >= 40)  # the fraction goes after the bar
    assert all(len(line) <= columns for line in lines)


def test_status_keeps_the_time_at_every_width_from_10_to_200(
    git_repo: Path,
    run_cli: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = _finished(wild(6, 4), git_repo)
    save(state)
    for columns in range(10, 201):
        monkeypatch.setenv("COLUMNS", str(columns))
        lines = _status(run_cli, capsys)
        table = [line for line in lines if not line.startswith("next: ")]  # a command: whole
        assert all(fit.width_of(line) <= columns for line in table), (columns, lines)
        times = [line.split()[-1] for line in lines if line.startswith(spec_id(4)[:3])]
        if columns >= 20:  # room for an id cut to SPEC_LEAST, the symbol and the time
            assert times == ["2s"], (columns, lines)
        wide = render.status_table(state, now=at(9), width=columns, color=False)
        assert "[####" not in wide or columns >= 60


def test_a_very_narrow_table_keeps_the_symbol_of_each_status() -> None:
    state = run(Path("/r"), "r", spec("a-rather-long-spec-id", SpecStatus.COMPLETED),
                spec("b", SpecStatus.FAILED, error="boom"))  # fmt: skip
    lines = render.status_table(state, now=at(9), width=22, color=False).splitlines()
    assert lines[1].startswith("a-rather-lon…  ✓")
    assert lines[2].startswith("b") and "✗" in lines[2]
