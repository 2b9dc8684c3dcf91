"""Pure renderers of runs: the status table, the final summary, the list of runs.

Only commands print. Every function here takes what it shows (``now``, ``width``,
``color``) as arguments and returns a string, so tests compare strings.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import attrs

from dagspec import fit, unattended
from dagspec.durations import format_duration as format_duration
from dagspec.errors import as_typed
from dagspec.fit import truncate as truncate
from dagspec.lifecycle import RunState, RunStatus, SpecState, SpecStatus
from dagspec.workspace import RunPaths

GAP = "  "
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
    "waiting": ("◷", "33"),  # for a usage limit's reset (issue 17)
    "stalled": ("▸", "33"),  # running, without progress for the stall timeout
}
_COUNT_ORDER = ("running", "waiting", "completed", "failed", "blocked", "interrupted", "pending")
# Notes that are nice to have ("merged", "attempt 2") never take a line of their own.
_INLINE_ONLY = (SpecStatus.COMPLETED, SpecStatus.RUNNING)
# Specs that only ``resume`` starts again (it restarts the failed ones too).
_RESUMABLE = {SpecStatus.INTERRUPTED, SpecStatus.PENDING, SpecStatus.WAITING}

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
    parts = [_spec_parts(spec, now) for spec in state.specs]
    fraction = max((len(p["fraction"]) for p in parts), default=0)
    kept = fit.widths(_columns(parts, fraction), width)
    rows = [
        _Row(
            _fitted(p, kept, fraction),
            s.shown_status,
            unattended.note(s) or _note(s, state),  # until when it waits, since when stalled
            s.status not in _INLINE_ONLY,
        )
        for s, p in zip(state.specs, parts, strict=True)
    ]
    header = _fitted(_HEADER_PARTS, kept, fraction)
    widths = _fitted_widths(kept)
    lines = _grid(header, "NOTE", rows, widths, width, color, paint=1 + bool(kept["layer"]))
    lines += [fit.line(segments, width, color) for segments in _footer_lines(state, width)]
    return "\n".join(lines) + "\n"


def summary(
    state: RunState,
    *,
    color: bool,
    dag: str = "dag",
    after: str | None = None,
    lost: Mapping[str, str] | None = None,
    branches_left: bool = False,
) -> str:
    """The end of a run: counts, failures with their reasons, and the next command to type
    (``dag`` is how the user calls dagspec: ``console.dag_command()``; ``after``: the
    command just run, never suggested again; ``lost``: ``lost_note``; ``branches_left``:
    merged specs' branches git did not delete, ``left_behind``)."""
    lines = ["".join(_paint(text, code, color) for text, code in _footer(state))]
    for spec in state.specs:
        if spec.status is SpecStatus.FAILED:
            reason = _first_line(spec.error) or _exit_reason(spec) or "failed"
            lines.append(f"  {_paint('✗', '31', color)} {spec.id}: {reason}")
            lines.append(f"    log: {spec.log or _log_path(state, spec)}")
    waiting = [s.id for s in state.specs if s.status is SpecStatus.COMPLETED and not s.merged]
    if waiting and state.status is not RunStatus.RUNNING:  # why `dag status` exits 1
        shown = ", ".join(waiting[:5]) + (f" and {len(waiting) - 5} more" if waiting[5:] else "")
        lines.append(f"  completed, not merged into {state.base_branch} yet: {shown}")
    if lost:
        lines.append(lost_note(state, lost, dag=dag))
    lines.append(next_line(state, dag=dag, after=after, lost=lost, branches_left=branches_left))
    return "\n".join(lines) + "\n"


def lost_note(state: RunState, lost: Mapping[str, str], *, dag: str = "dag") -> str:
    """What ``lost`` (spec id: the commit its branch points at, which the repository no
    longer has: ``driving.lost_branches``) means, and the way out, a line per spec."""
    return "\n".join(
        f"note: the branch of spec {spec_id} points at commit {commit[:12]}, which the "
        "repository no longer has (pruned by `git gc` after a reset?): the files of its "
        f"worktree are all that is left of its work; `{dag} cleanup {state.run_id} --force` "
        "removes them and the branch, so that it can start afresh (or fetch that commit "
        "back from a clone that has it)"
        for spec_id, commit in lost.items()
    )


def next_line(
    state: RunState,
    *,
    dag: str = "dag",
    after: str | None = None,
    lost: Mapping[str, str] | None = None,
    branches_left: bool = False,
) -> str:
    """``next: <command>`` (``next_command``), or that nothing is left to do: no ``next:``
    that only sends the user round to a view already shown."""
    command = next_command(state, dag=dag, after=after, lost=lost, branches_left=branches_left)
    if command is None:
        return f"nothing left to do: every spec is merged into {state.base_branch}"
    return f"next: {command}"


def next_command(
    state: RunState,
    *,
    dag: str = "dag",
    after: str | None = None,
    lost: Mapping[str, str] | None = None,
    branches_left: bool = False,
) -> str | None:
    """What to type next: look at a running run, resume, retry failures, merge, remove
    worktrees left; never ``dag <after>``, the command just run (``status``: a finished
    run's next look is its report card). None when nothing is left to do: every spec
    completed and merged, no worktree left. A run under ``--no-merge`` that resume or
    retry would continue gets ``dag merge`` too, for its completed specs. A resume or
    retry that would refuse a spec whose branch lost its commit (``lost``) comes after the
    ``dag cleanup --force`` that lets it start that spec afresh. ``branches_left``: merged
    specs' branches git did not delete (``left_behind``): ``dag cleanup`` then, not nothing."""
    command = _next_command(state, branches_left)
    if command is None:
        return None
    if after and command.startswith(f"dag {after} "):
        command = (
            f"dag report {state.run_id}" if after == "status" else f"dag status {state.run_id}"
        )
    takes_up = command.startswith(("dag resume", "dag retry"))
    unmerged = any(s.status is SpecStatus.COMPLETED and not s.merged for s in state.specs)
    if unmerged and not state.options.merge and takes_up:
        command += f"; {dag} merge {state.run_id} merges what completed"
    if lost and takes_up:
        command = f"dag cleanup {state.run_id} --force, then {dag}{command[3:]}"
    return command.replace("dag", dag, 1)


def _next_command(state: RunState, branches_left: bool = False) -> str | None:
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
    if any(spec.worktree for spec in state.specs) or branches_left:  # kept: --keep-worktrees
        return f"dag cleanup {state.run_id}"
    if all(s.status is SpecStatus.COMPLETED and s.merged for s in state.specs):
        return None  # nothing left to do
    return f"dag status {state.run_id}"


def as_typed_run(state: RunState) -> RunState:
    """``state`` with its specs' messages in the form of ``dag`` the user types
    (``errors.as_typed``): a failure's reason may say what to type (`` `dag retry r b` ``)
    and the hints beside it do (``summary``'s ``next:``, ``console.dag_command``), so both
    must say it alike. For the edges that show a run as text, before it is fitted to a
    width; ``--json`` keeps each message as it was recorded."""
    specs = tuple(
        attrs.evolve(s, error=as_typed(s.error)) if s.error and "`dag " in s.error else s
        for s in state.specs
    )
    return state if specs == state.specs else attrs.evolve(state, specs=specs)


_RUN_COLUMNS = ("run", "dag", "status", "started", "time")
# What ``dag list`` gives up as the width shrinks, whole columns first: the run id and its
# status stay (the counts go under the row when they do not fit beside it).
RUNS_GIVE_UP = (
    fit.Give("dag"),  # the run id starts with the DAG's name
    fit.Give("started"),  # and ends with when it started
    fit.Give("time"),
    fit.Give("run", fit.SPEC_MIN, as_needed=True),
)


def runs_table(states: Sequence[RunState], *, now: datetime, width: int, color: bool) -> str:
    """``dag list``: one row per run (id, DAG file, status, start, duration, counts); the
    columns that do not fit go whole, in ``RUNS_GIVE_UP``'s order."""
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
    kept = fit.column_widths(_RUN_COLUMNS, [header, *cells], width, RUNS_GIVE_UP)
    shown = [index for index, name in enumerate(_RUN_COLUMNS) if kept[name]]

    def only(row: Sequence[str]) -> list[str]:
        return [row[index] for index in shown]

    rows = [
        _Row(only(row), s.status.value, count_text(s)) for s, row in zip(states, cells, strict=True)
    ]
    widths = [kept[_RUN_COLUMNS[index]] for index in shown]
    paint = shown.index(_RUN_COLUMNS.index("status"))
    lines = _grid(only(header), "SPECS", rows, widths, width, color, paint=paint)
    return "\n".join(lines) + "\n"


def count_text(state: RunState) -> str:
    """``2 running, 1 completed, 3 pending``: the busiest statuses first."""
    counts = state.counts()
    return ", ".join(f"{counts[s]} {s}" for s in _COUNT_ORDER if s in counts) or "no specs"


# --- the cells of a row -------------------------------------------------------------------


def _spec_parts(spec: SpecState, now: datetime) -> dict[str, str]:
    """The parts of a spec's row, by ``fit`` column name."""
    fraction = f"{spec.tasks_done or 0}/{spec.tasks_total}" if spec.tasks_total else ""
    return {
        "spec": spec.id,
        "layer": truncate(spec.layer, LAYER_MAX),
        "symbol": _LOOK[spec.shown_status][0],
        "status": spec.shown_status,
        "stage": spec.stage or "",
        "fraction": fraction,
        "bar": _bar(spec) if fraction else "",
        "time": spec_time(spec, now),
    }


# The header's parts: "STATUS" stands over the symbol and the status word, "TASKS" over the
# fraction and the bar; without the word (a very narrow table) the column has no title.
_HEADER_PARTS = {"spec": "SPEC", "layer": "LAYER", "symbol": "STATUS", "status": "",
                 "stage": "STAGE", "fraction": "TASKS", "bar": "", "time": "TIME"}  # fmt: skip


def _columns(parts: Sequence[dict[str, str]], fraction: int) -> dict[str, fit.Column]:
    """The table's columns at their natural widths (their widest cell or title), in parts
    that ``fit.widths`` can give up one by one: the symbol and the word of the status, the
    fraction and the bar of the tasks."""

    def widest(name: str, least: int) -> int:
        return max([least, *(fit.width_of(p[name]) for p in parts)])

    tasks = max(len("TASKS"), fraction)
    with_bar = max(len("TASKS"), fraction + 1 + BAR + 2) if fraction else tasks
    return {
        "spec": fit.Column(widest("spec", len("SPEC")), 0),
        "layer": fit.Column(widest("layer", len("LAYER"))),
        "symbol": fit.Column(1),
        "status": fit.Column(widest("status", len("STATUS") - 2), 1),
        "stage": fit.Column(widest("stage", len("STAGE"))),
        "fraction": fit.Column(tasks),
        "bar": fit.Column(with_bar - tasks, 0),
        "time": fit.Column(widest("time", len("TIME"))),
    }


def _fitted(parts: dict[str, str], kept: dict[str, int], fraction: int) -> list[str]:
    """The cells of a row (or of the header) with the columns ``kept`` has room for."""
    status = parts["symbol"] + (" " + parts["status"] if kept["status"] else "")
    if parts is _HEADER_PARTS:
        status = "STATUS" if kept["status"] else ""
    tasks = parts["fraction"]
    if parts is not _HEADER_PARTS and tasks:
        tasks = tasks.rjust(fraction) + (" " + parts["bar"] if kept["bar"] else "")
    cells = [parts["spec"]] + [parts["layer"]] * bool(kept["layer"]) + [status]
    cells += [parts["stage"]] * bool(kept["stage"]) + [tasks] * bool(kept["fraction"])
    return [*cells, parts["time"]]


def _fitted_widths(kept: dict[str, int]) -> list[int]:
    status = 1 + (1 + kept["status"] if kept["status"] else 0)
    widths = [kept["spec"]] + [kept["layer"]] * bool(kept["layer"]) + [status]
    widths += [kept["stage"]] * bool(kept["stage"])
    widths += [kept["fraction"] + kept["bar"]] * bool(kept["fraction"])
    return [*widths, kept["time"]]


def merge_word(spec: SpecState) -> str:
    """Where a spec's work stands against the base branch, in the one vocabulary of every
    table and message (README, Merging): ``merged`` (a merge commit brought it there),
    ``already merged`` (its changes were there without a merge of its branch: a squash, a
    rebase, a cherry-pick), ``not merged yet`` (completed, not there); else ``""``."""
    if spec.merged:
        return "merged" if spec.merge_commit else "already merged"
    return "not merged yet" if spec.status is SpecStatus.COMPLETED else ""


def _status_text(status: str) -> str:
    return f"{_LOOK[status][0]} {status}"


def _bar(spec: SpecState) -> str:
    done = min(spec.tasks_done or 0, spec.tasks_total or 0)
    filled = round(BAR * done / spec.tasks_total) if spec.tasks_total else 0
    return "[" + "#" * filled + "-" * (BAR - filled) + "]"


def spec_time(spec: SpecState, now: datetime) -> str:
    """A spec's time, the one of ``dag status``, the live board and the report card: every
    attempt's (``SpecState.agent_seconds``; running: so far), so the three agree and the
    report's column adds up to its total; nothing before an attempt has a time."""
    if spec.attempt_seconds(now) is None and not spec.earlier_seconds:
        return ""
    return format_duration(spec.agent_seconds(now))


def _run_time(state: RunState, now: datetime) -> str:
    end = now if state.status is RunStatus.RUNNING else state.finished_at
    return "" if end is None else format_duration((end - state.started_at).total_seconds())


def _note(spec: SpecState, state: RunState) -> str:
    """What a pending spec waits for, what blocks a blocked one, why one failed, where a
    completed one's work stands against the base branch (``merge_word``)."""
    if spec.status is SpecStatus.PENDING:
        done = {s.id for s in state.specs if s.status is SpecStatus.COMPLETED}
        waiting = [dep for dep in spec.depends_on if dep not in done]
        return f"waits for {', '.join(waiting)}" if waiting else ""
    if spec.status is SpecStatus.BLOCKED:
        return "blocked by " + ", ".join(spec.blocked_by) if spec.blocked_by else ""
    if spec.status in (SpecStatus.FAILED, SpecStatus.INTERRUPTED):  # never its status again
        note = _first_line(spec.error) or _exit_reason(spec)
        return "" if note == spec.status.value else note
    if spec.status is SpecStatus.RUNNING and spec.attempts > 1:
        return f"attempt {spec.attempts}"
    return merge_word(spec)  # merged, already merged, not merged yet: as the report says


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
    if sum(fit.width_of(text) for text, _ in footer) <= width:
        return [footer]
    return [footer[:2], [("  " + count_text(state), None)]]


def _grid(
    header: Sequence[str],
    note_title: str,
    rows: Sequence[_Row],
    widths: Sequence[int],
    width: int,
    color: bool,
    *,
    paint: int,
) -> list[str]:
    """The header and a line per row, the cells at index ``paint`` painted in the colour of
    the row's status. A row's note ends its line when it fits there, else it goes on a line
    of its own under the row (when the row allows it)."""
    room = width - sum(widths) - len(GAP) * len(widths)
    title = [note_title] if any(0 < fit.width_of(row.note) <= room for row in rows) else []
    lines = [fit.line(_cells([*header, *title], widths, None, paint), width, color, bold=True)]
    for row in rows:
        inline = fit.width_of(row.note) <= room
        cells = [*row.cells, row.note] if inline else row.cells
        lines.append(fit.line(_cells(cells, widths, row.status, paint), width, color))
        if row.note and not inline and row.note_may_wrap:
            lines.append(fit.line([("  ↳ " + row.note, None)], width, color))
    return lines


def _cells(
    cells: Sequence[str], widths: Sequence[int], status: str | None, paint: int
) -> list[Segment]:
    """Cells padded to ``widths`` (a cell past them, the note, is left as it is) and the gaps
    between them; the cell at ``paint`` is painted in the colour of ``status``."""
    segments: list[Segment] = []
    for index, text in enumerate(cells):
        cell = truncate(text, widths[index]) if index < len(widths) else text
        code = _LOOK[status][1] if status and index == paint else None
        pad = widths[index] - fit.width_of(cell) if index < len(widths) else 0
        segments += [(GAP, None)] if segments else []
        segments += [(cell, code), (" " * pad, None)]
    return segments


_paint = fit.paint


def terminal_width() -> int:
    """``COLUMNS`` when set, else the terminal's width; a pipe or a file has no limit."""
    from dagspec import terminal

    return terminal.width(sys.stdout)
