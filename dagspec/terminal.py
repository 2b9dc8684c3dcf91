"""The terminal edge (issue 14): frames drawn in place and sizes.

``Screen`` puts frames on a terminal without ever scrolling one into its history; ``Board``
is the live board of a run on a ``Screen``, shared by ``dag run`` and ``dag status --watch``.
Neither imports trio.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import TextIO

from dagspec import board, fit, render
from dagspec.console import dag_command
from dagspec.lifecycle import RunState
from dagspec.state import utcnow

SYNC_START = "\x1b[?2026h"  # synchronized output: terminals without it ignore the mode
SYNC_END = "\x1b[?2026l"
HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"
CLEAR_TO_END_OF_LINE = "\x1b[K"
CLEAR_BELOW = "\x1b[J"
HOME_AND_CLEAR = "\x1b[H\x1b[2J"
UNLIMITED = fit.UNLIMITED  # the width of a pipe: nothing is cut unless COLUMNS says so
MIN_INTERVAL = 0.1  # seconds between two frames drawn for progress alone

Size = Callable[[], os.terminal_size]


def width(stream: TextIO) -> int:
    """The columns output may use: ``COLUMNS`` when set, else the terminal's width, else
    (a pipe, a file) no limit."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return shutil.get_terminal_size().columns if stream.isatty() else UNLIMITED


class Screen:
    """Frames drawn in place at the cursor, line by line (overwrite, clear to end of line),
    inside synchronized-output brackets, with the cursor hidden until ``close``.

    A frame never has more lines than the screen has rows less one, and the area drawn never
    shrinks (a shorter frame is padded with blank lines), so after the first frame nothing
    scrolls into the terminal's history. After a resize the screen is cleared and the frame
    drawn from its top: a terminal that reflows its lines leaves no fragments either.
    """

    def __init__(self, out: TextIO, size: Size = shutil.get_terminal_size) -> None:
        self.out = out
        self.size = size
        self.drawn = 0  # lines of the area drawn so far
        self.shown_at: tuple[int, int] | None = None  # the size of the last frame's screen

    def draw(self, make: Callable[[int, int], list[str]], *, final: bool = False) -> None:
        """Draw ``make(columns, rows)``; the last one (``final``) unpadded, cursor shown."""
        columns, rows = self.size()
        parts = [SYNC_START]
        if self.shown_at is None:
            parts.append(HIDE_CURSOR)
        elif (columns, rows) != self.shown_at:
            parts.append(HOME_AND_CLEAR)
            self.drawn = 0
        elif self.drawn:
            parts.append("\r" + (f"\x1b[{self.drawn - 1}A" if self.drawn > 1 else ""))
        lines = make(columns, rows)[: max(rows - 1, 1)]
        if not final:
            lines += [""] * (self.drawn - len(lines))
        parts.append("\r\n".join(line + CLEAR_TO_END_OF_LINE for line in lines))
        parts.append(CLEAR_BELOW + "\r\n" + SHOW_CURSOR if final else "")
        parts.append(SYNC_END)
        self.out.write("".join(parts))
        self.out.flush()
        self.drawn = len(lines)
        self.shown_at = (columns, rows)


class Board:
    """The live board of one run on a ``Screen``: ``show`` on every change, ``tick`` once a
    second (the times and the spinner move while agents are quiet), ``stopping`` after the
    first Ctrl-C, ``close`` on every way out (it draws the last frame and shows the cursor).
    """

    def __init__(
        self,
        out: TextIO,
        *,
        color: bool,
        size: Size = shutil.get_terminal_size,
        clock: Callable[[], datetime] = utcnow,
        history: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.screen = Screen(out, size)
        self.history = history or {}
        self.color = color
        self.clock = clock
        self.state: RunState | None = None
        self.columns: board.Columns | None = None
        self.ticks = 0
        self.stopping_text: Callable[..., str] | None = None  # the line, given width=
        self.drawn_at = -MIN_INTERVAL
        self.dag = dag_command()  # the hint's form of dag, found once (it asks PATH)

    def show(self, state: RunState, *, urgent: bool = True) -> None:
        """Draw ``state`` now, or soon if it is only progress (``urgent=False``); a reason's
        `dag ...` as the user types dag, as the hint beside it (``render.as_typed_run``)."""
        self.state = render.as_typed_run(state)
        self.columns = (self.columns or board.Columns.of(state)).widen(state)
        if urgent or time.monotonic() - self.drawn_at >= MIN_INTERVAL:
            self._draw()

    def tick(self) -> None:
        """The heartbeat: redraw the last state at the current time, the spinner turned."""
        self.ticks += 1
        if self.state is not None:
            self._draw()

    def stopping(self, state: RunState, grace: float, agents: int, *, signs: bool = False) -> None:
        """The run is stopping: say so in the header, and on each running row."""
        at_work = board.committing(state)
        self.stopping_text = partial(
            board.stopping_line, grace, agents, committing=at_work, signs=signs
        )
        self.show(state)

    def close(self) -> None:
        if self.state is not None:
            self._draw(final=True)

    def _draw(self, *, final: bool = False) -> None:
        assert self.state is not None and self.columns is not None
        state, columns, now = self.state, self.columns, self.clock()
        stopping = self.stopping_text if state.status.value == "running" else None

        def make(width: int, height: int) -> list[str]:
            view = board.View(
                width=width,
                height=height - 1,
                now=now,
                columns=columns,
                color=self.color,
                tick=self.ticks,
                stopping=stopping(width=width) if stopping else None,
                history=self.history,
                dag=self.dag,
            )
            return board.frame(state, view)

        self.screen.draw(make, final=final)
        self.drawn_at = time.monotonic()


def use_live(choice: str, stream: TextIO = sys.stdout) -> bool:
    """``--progress``: ``tty`` the board, ``plain`` a line per event, ``auto`` the board on a
    terminal that can move its cursor (not ``TERM=dumb``)."""
    if choice != "auto":
        return choice == "tty"
    return stream.isatty() and os.environ.get("TERM") != "dumb"
