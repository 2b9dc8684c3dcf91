"""Pure renderers of runs: the status table, the final summary, the list of runs.

Only commands print. Every function here takes what it shows (``now``, ``width``,
``color``) as arguments and returns a string, so tests compare strings.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from dagspec.lifecycle import RunState, RunStatus, SpecState, SpecStatus
from dagspec.records import format_duration as format_duration
from dagspec.workspace import RunPaths

GAP = "  "
SPEC_MIN = 12  # a spec id is never cut shorter than this (unless the terminal is)
LAYER_MAX = 10
DAG_MAX = 24
BAR = 6

# A symbol of one column (no East Asian "ambiguous" width) and an ANSI colour per status.
_LOOK: dict[str, tuple[str, str]] = {
    "pending": ("◦", "2"),
    "running": ("▸", "36"),
    "completed": ("✓", "32"),
    "failed": ("✗", "31"),
    "blocked": ("⊘", "35"),
    "interrupted": ("!", "33"),
}
_COUNT_ORDER = ("running", "completed", "failed", "blocked", "interrupted", "pending")
_HEADER = ("SPEC", "LAYER", "STATUS", "STAGE", "TASKS", "TIME")
# Notes that are nice to have ("merged", "attempt 2") never take a line of their own.
_INLINE_ONLY = (SpecStatus.COMPLETED, SpecStatus.RUNNING)
# Specs that only ``resume`` starts again (it restarts the failed ones too).
_RESUMABLE = {SpecStatus.INTERRUPTED, SpecStatus.PENDING}
_STATUS_COLUMN = 2  # in both tables: SPEC LAYER STATUS, RUN DAG STATUS

Segment = tuple[str, str | None]  # text and the ANSI code it is painted with


class _Row(NamedTuple):
    cells: Sequence[str]
    status: str  # paints the status column
    note: str  # the last, free-width column
    note_may_wrap: bool = True


def status_table(state: RunState, *, now: datetime, width: int, color: bool) -> str:
    """Every spec of the run, one row each, then the counts and the run's state.

    Columns: spec, layer, status, stage, tasks (``5/12`` and a small bar), elapsed or
    duration, and what it waits for or why it failed. No line is wider than ``width``:
    long ids are cut with an ellipsis, and a note too long for the room left at the end of
    its row goes on a line of its own under it (unless it only says "merged" or "attempt N").
    """
    cells = _spec_cells(state, now)
    rows = [
        _Row(row, spec.status.value, _note(spec, state), spec.status not in _INLINE_ONLY)
        for spec, row in zip(state.specs, cells, strict=True)
    ]
    lines = _grid(_HEADER, "NOTE", rows, _layout(_HEADER, cells, width), width, color)
    lines += [_line(segments, width, color) for segments in _footer_lines(state, width)]
    return "\n".join(lines) + "\n"


def summary(state: RunState, *, color: bool, dag: str = "dag") -> str:
    """The end of a run: counts, failures with their reasons, and the next command to type
    (``dag`` is how the user calls dagspec: ``console.dag_command()``)."""
    lines = ["".join(_paint(text, code, color) for text, code in _footer(state))]
    for spec in state.specs:
        if spec.status is SpecStatus.FAILED:
            reason = _first_line(spec.error) or _exit_reason(spec) or "failed"
            lines.append(f"  {_paint('✗', '31', color)} {spec.id}: {reason}")
            lines.append(f"    log: {spec.log or _log_path(state, spec)}")
    lines.append(f"next: {next_command(state, dag=dag)}")
    return "\n".join(lines) + "\n"


def next_command(state: RunState, *, dag: str = "dag") -> str:
    """What to type next: look at a running run, resume, retry failures, merge, or look."""
    return _next_command(state).replace("dag", dag, 1)


def _next_command(state: RunState) -> str:
    statuses = {spec.status for spec in state.specs}
    failed = [spec.id for spec in state.specs if spec.status is SpecStatus.FAILED]
    unmerged = any(s.status is SpecStatus.COMPLETED and not s.merged for s in state.specs)
    if state.status is RunStatus.RUNNING:
        return f"dag status {state.run_id}"
    if state.status is RunStatus.INTERRUPTED or statuses & _RESUMABLE:
        return f"dag resume {state.run_id}"
    if failed:
        return f"dag retry {state.run_id} {' '.join(failed)}"
    if unmerged:
        return f"dag merge {state.run_id}"
    return f"dag status {state.run_id}"


def runs_table(states: Sequence[RunState], *, now: datetime, width: int, color: bool) -> str:
    """``dag list``: one row per run (id, DAG file, status, start, duration, counts)."""
    header = ("RUN", "DAG", "STATUS", "STARTED", "TIME")
    cells = [
        (
            s.run_id,
            truncate(s.dag_file, DAG_MAX),
            _status_text(s.status.value),
            s.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") + "Z",
            _run_time(s, now),
        )
        for s in states
    ]
    rows = [_Row(row, s.status.value, count_text(s)) for s, row in zip(states, cells, strict=True)]
    return (
        "\n".join(_grid(header, "SPECS", rows, _layout(header, cells, width), width, color)) + "\n"
    )


def count_text(state: RunState) -> str:
    """``2 running, 1 completed, 3 pending``: the busiest statuses first."""
    counts = state.counts()
    return ", ".join(f"{counts[s]} {s}" for s in _COUNT_ORDER if s in counts) or "no specs"


def truncate(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns, its last one an ellipsis when something was cut."""
    if len(text) <= width:
        return text
    if len(text.rstrip()) <= width:
        return text[:width]
    return text[: width - 1] + "…" if width > 0 else ""


# --- the cells of a row -------------------------------------------------------------------


def _spec_cells(state: RunState, now: datetime) -> list[tuple[str, ...]]:
    fractions = [
        f"{s.tasks_done or 0}/{s.tasks_total}" if s.tasks_total else "" for s in state.specs
    ]
    frac_width = max((len(f) for f in fractions), default=0)
    return [
        (
            spec.id,
            truncate(spec.layer, LAYER_MAX),
            _status_text(spec.status.value),
            spec.stage or "",
            f"{fraction:>{frac_width}} {_bar(spec)}" if fraction else "",
            _spec_time(spec, now),
        )
        for spec, fraction in zip(state.specs, fractions, strict=True)
    ]


def _status_text(status: str) -> str:
    return f"{_LOOK[status][0]} {status}"


def _bar(spec: SpecState) -> str:
    done = min(spec.tasks_done or 0, spec.tasks_total or 0)
    filled = round(BAR * done / spec.tasks_total) if spec.tasks_total else 0
    return "[" + "#" * filled + "-" * (BAR - filled) + "]"


def _spec_time(spec: SpecState, now: datetime) -> str:
    """Running: how long so far; finished: how long it took; otherwise nothing."""
    if spec.started_at is None:
        return ""
    if spec.status is SpecStatus.RUNNING:
        return format_duration((now - spec.started_at).total_seconds())
    if spec.finished_at is None:
        return ""
    return format_duration((spec.finished_at - spec.started_at).total_seconds())


def _run_time(state: RunState, now: datetime) -> str:
    end = now if state.status is RunStatus.RUNNING else state.finished_at
    return "" if end is None else format_duration((end - state.started_at).total_seconds())


def _note(spec: SpecState, state: RunState) -> str:
    """What a pending spec waits for, what blocks a blocked one, why one failed."""
    if spec.status is SpecStatus.PENDING:
        done = {s.id for s in state.specs if s.status is SpecStatus.COMPLETED}
        waiting = [dep for dep in spec.depends_on if dep not in done]
        return f"waits for {', '.join(waiting)}" if waiting else ""
    if spec.status is SpecStatus.BLOCKED:
        return "blocked by " + ", ".join(spec.blocked_by) if spec.blocked_by else ""
    if spec.status in (SpecStatus.FAILED, SpecStatus.INTERRUPTED):
        return _first_line(spec.error) or _exit_reason(spec)
    if spec.status is SpecStatus.RUNNING and spec.attempts > 1:
        return f"attempt {spec.attempts}"
    return "merged" if spec.merged else ""


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0].strip()


def _exit_reason(spec: SpecState) -> str:
    return "" if spec.exit_code is None else f"exit code {spec.exit_code}"


def _log_path(state: RunState, spec: SpecState) -> str:
    return str(RunPaths(Path(state.repo), state.run_id).log_file(spec.id))


def _footer(state: RunState) -> list[Segment]:
    """``run ID STATUS: counts``, the status word painted like the specs' statuses."""
    code = _LOOK[state.status.value][1]
    return [
        (f"run {state.run_id} ", None),
        (state.status.value, code),
        (f": {count_text(state)}", None),
    ]


# --- laying out and painting --------------------------------------------------------------


def _footer_lines(state: RunState, width: int) -> list[list[Segment]]:
    """The footer on one line, or the counts on a line of their own when it is too long."""
    footer = _footer(state)
    if sum(len(text) for text, _ in footer) <= width:
        return [footer]
    return [footer[:2], [("  " + count_text(state), None)]]


def _layout(header: Sequence[str], cells: Sequence[Sequence[str]], width: int) -> list[int]:
    """The width of each column: its widest cell, but the first column takes only what the
    others leave (never less than ``SPEC_MIN``)."""
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    room = width - sum(widths[1:]) - len(GAP) * (len(widths) - 1)
    widths[0] = min(widths[0], max(room, SPEC_MIN))
    return widths


def _grid(
    header: Sequence[str],
    note_title: str,
    rows: Sequence[_Row],
    widths: Sequence[int],
    width: int,
    color: bool,
) -> list[str]:
    """The header and a line per row. A row's note ends its line when it fits there, else
    it goes on a line of its own under the row (when the row allows it)."""
    room = width - sum(widths) - len(GAP) * len(widths)
    title = [note_title] if any(0 < len(row.note) <= room for row in rows) else []
    lines = [_line(_cells([*header, *title], widths, None), width, color, bold=True)]
    for row in rows:
        inline = len(row.note) <= room
        cells = [*row.cells, row.note] if inline else row.cells
        lines.append(_line(_cells(cells, widths, row.status), width, color))
        if row.note and not inline and row.note_may_wrap:
            lines.append(_line([("  ↳ " + row.note, None)], width, color))
    return lines


def _cells(cells: Sequence[str], widths: Sequence[int], status: str | None) -> list[Segment]:
    """Cells padded to ``widths`` (a cell past them, the note, is left as it is) and the gaps
    between them; the status cell is painted in the colour of ``status``."""
    segments: list[Segment] = []
    for index, text in enumerate(cells):
        cell = truncate(text, widths[index]) if index < len(widths) else text
        code = _LOOK[status][1] if status and index == _STATUS_COLUMN else None
        pad = widths[index] - len(cell) if index < len(widths) else 0
        segments += [(GAP, None)] if segments else []
        segments += [(cell, code), (" " * pad, None)]
    return segments


def _line(segments: Sequence[Segment], width: int, color: bool, *, bold: bool = False) -> str:
    """Join segments, cut at ``width`` columns, trailing blanks dropped, colour if asked."""
    kept: list[Segment] = []
    used = 0
    for text, code in segments:
        piece = truncate(text, width - used)
        kept.append((piece, code))
        used += len(piece)
        if len(piece) < len(text):
            break
    while kept and not kept[-1][0].strip():
        kept.pop()
    if kept:
        kept[-1] = (kept[-1][0].rstrip(), kept[-1][1])
    line = "".join(_paint(text, code, color) for text, code in kept)
    return _paint(line, "1", color) if bold and line else line


def _paint(text: str, code: str | None, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color and code and text else text


def terminal_width() -> int:
    """``COLUMNS`` when set, else the terminal's width; a pipe or a file has no limit."""
    from dagspec import terminal

    return terminal.width(sys.stdout)
