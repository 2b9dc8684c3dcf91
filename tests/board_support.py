"""For the tests of the live board: a simulated run, and a terminal emulator (pyte) to draw
it on, so that the tests assert what a user sees, scrollback included."""

from __future__ import annotations

import io
import math
import os
from datetime import datetime
from pathlib import Path

import pyte

from dagspec.lifecycle import RunOptions, RunState, RunStatus, SpecState, SpecStatus
from tests.run_states import at, run, spec

LAYER = 15  # specs per layer; each layer waits for the whole layer before it
SLOTS = 4
TAKES = 3  # seconds each spec runs
FAILS = "error: autospec exited with 1 during implement: ERROR: 3 of 10 tests failed"


def spec_id(index: int) -> str:
    return f"{100 + index:03d}-feature-{index}"


def _times(index: int) -> tuple[float, float]:
    """When spec ``index`` starts and ends: a layer starts once the one before has ended."""
    layer, place = divmod(index, LAYER)
    layer_takes = math.ceil(LAYER / SLOTS) * TAKES
    start = layer * layer_takes + place // SLOTS * TAKES
    return start, start + TAKES


def end_of(count: int) -> float:
    return max(_times(i)[1] for i in range(count))


def state_at(count: int, seconds: float) -> RunState:
    """The run of ``count`` specs ``seconds`` after it started (the last spec fails)."""
    specs = [_spec_at(i, count, seconds) for i in range(count)]
    done = seconds >= end_of(count)
    return run(
        Path("/r"),
        "big",
        *specs,
        status=RunStatus.FAILED if done else RunStatus.RUNNING,
        finished_at=at(end_of(count)) if done else None,
        options=RunOptions(parallel=True, max_parallel=SLOTS),
    )


def _spec_at(index: int, count: int, seconds: float) -> SpecState:
    layer = index // LAYER
    deps = tuple(spec_id(i) for i in range((layer - 1) * LAYER, layer * LAYER)) if layer else ()
    start, end = _times(index)
    base = spec(spec_id(index), layer=f"L{layer}", depends_on=deps)
    if seconds < start:
        return base
    if seconds < end:
        stage = "plan" if seconds - start < 1 else "implement"
        return _with(base, SpecStatus.RUNNING, started_at=at(start), stage=stage,
                     tasks_done=int(seconds - start) * 4, tasks_total=12)  # fmt: skip
    if index == count - 1:
        return _with(base, SpecStatus.FAILED, started_at=at(start), finished_at=at(end),
                     error=FAILS, exit_code=1)  # fmt: skip
    return _with(base, SpecStatus.COMPLETED, started_at=at(start), finished_at=at(end),
                 tasks_done=12, tasks_total=12)  # fmt: skip


def _with(base: SpecState, status: SpecStatus, **fields: object) -> SpecState:
    import attrs

    return attrs.evolve(base, status=status, **fields)


def running_ids(state: RunState) -> list[str]:
    return [s.id for s in state.specs if s.status is SpecStatus.RUNNING]


class Terminal(io.StringIO):
    """A terminal of ``columns`` x ``rows`` that keeps what scrolls off its top: a text
    stream to write to, and the size function the board asks."""

    def __init__(self, columns: int, rows: int) -> None:
        super().__init__()
        self.screen = pyte.HistoryScreen(columns, rows, history=100_000)
        self.screen.set_mode(pyte.modes.LNM)  # a newline returns the carriage, as a tty does
        self.stream = pyte.Stream(self.screen)

    def write(self, text: str) -> int:
        self.stream.feed(text)
        return len(text)

    def isatty(self) -> bool:
        return True

    def size(self) -> os.terminal_size:
        return os.terminal_size((self.screen.columns, self.screen.lines))

    def resize(self, columns: int, rows: int) -> None:
        self.screen.resize(rows, columns)

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    @property
    def scrolled(self) -> int:
        """How many lines went into the scrollback."""
        return len(self.screen.history.top)


class Clock:
    """The board's clock, moved by the test."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> datetime:
        return at(self.seconds)
