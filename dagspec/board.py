"""The live board (issue 14): one frame of a run that fits a terminal of any size.

Pure: a frame is a list of lines computed from the run's state, the time, the terminal's
size and the column widths fixed for the run. What stays in view when the specs do not fit
is ``dagspec.fold``'s; the estimate, ``dagspec.estimates``'s; ``dagspec.terminal`` puts
frames on a terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import attrs

from dagspec import estimates, fit, fold, unattended
from dagspec.fit import truncate
from dagspec.lifecycle import RunState, RunStatus, SpecState, SpecStatus
from dagspec.render import format_duration, spec_time
from dagspec.symbols import ASCII_SPINNER, SPINNER
from dagspec.words import counted

GAP = "  "
ID_MIN = fit.SPEC_MIN  # a spec id is cut shorter only when nothing else is left to give up
LAYER_MAX = 10
BAR = 6
TIME = 6  # "12m05s"
NOTE_MIN = 20  # the bar goes before a note gets fewer columns than this
SYMBOL = {
    SpecStatus.PENDING: "◦",
    SpecStatus.RUNNING: "▸",
    SpecStatus.COMPLETED: "✓",
    SpecStatus.FAILED: "✗",
    SpecStatus.BLOCKED: "⊘",
    SpecStatus.INTERRUPTED: "!",
    SpecStatus.WAITING: "◷",
}
_COLOR = {
    SpecStatus.PENDING: "2",
    SpecStatus.RUNNING: "36",
    SpecStatus.COMPLETED: "32",
    SpecStatus.FAILED: "31",
    SpecStatus.BLOCKED: "35",
    SpecStatus.INTERRUPTED: "33",
    SpecStatus.WAITING: "33",
}
_STATUS = len("interrupted")
_STAGE = len("implement")
_FRACTION = len("99/99")


@attrs.frozen
class Columns:
    """Column widths fixed for a whole run (from its DAG), so rows do not jump between frames.

    ``widen`` only ever grows them (a spec reporting 120 tasks widens the task column once).
    """

    spec: int
    layer: int
    fraction: int = _FRACTION

    @classmethod
    def of(cls, state: RunState) -> Columns:
        """The widths every spec of ``state`` fits in."""
        return cls(
            spec=max([len("SPEC"), *(fit.width_of(s.id) for s in state.specs)]),
            layer=min(
                max([len("LAYER"), *(fit.width_of(s.layer) for s in state.specs)]), LAYER_MAX
            ),
        ).widen(state)

    def widen(self, state: RunState) -> Columns:
        fractions = [2 * len(str(s.tasks_total)) + 1 for s in state.specs if s.tasks_total]
        return attrs.evolve(self, fraction=max([self.fraction, *fractions]))


@attrs.frozen
class View:
    """How a frame is drawn, besides the state: the screen, the time, what the run is doing."""

    width: int  # columns; no line of the frame is wider
    height: int  # the most lines the frame may have
    now: datetime
    columns: Columns
    color: bool = False
    tick: int = 0  # which frame of the spinner
    stopping: str | None = None  # the header's stopping line, once the run is stopping
    # seconds each spec id took in earlier runs, for the estimate (``estimates.eta``)
    history: Mapping[str, Sequence[float]] = attrs.field(factory=dict)
    ascii: bool = False  # the output cannot encode braille: an ASCII spinner
    dag: str = "dag"  # how the user calls dagspec, for the hint's command (``console.dag_command``)


def frame(state: RunState, view: View) -> list[str]:
    """The board: a header, the column titles, then a line per spec or per fold of specs.

    At most ``view.height`` lines (at least the header when the height is smaller), none
    wider than ``view.width`` columns.
    """
    hint = view.stopping or unattended.early_start_hint(state, dag=view.dag)  # how to go on
    header = [_header(state, view)] + ([hint] if hint else [])
    room = view.height - len(header) - 1
    body = fold.fit(state, view.now, room)
    lines = [_cut(line, view.width) for line in header]
    if room >= 1:
        lines.append(_cut(_titles(view), view.width, color=view.color, bold=True))
    lines += [_row(line, view) for line in body]
    return lines[: max(view.height, 1)]


# --- the header -----------------------------------------------------------------------------


def _header(state: RunState, view: View) -> str:
    """``run demo · 3/6 done · 1 failed · 4m12s · about 2m05s left``; on a narrow screen
    the run id goes first, then the counts of failures, then the estimate."""
    counts = state.counts()
    done = f"{counts.get('completed', 0)}/{len(state.specs)} done"
    failures = [f"{counts[s]} {s}" for s in ("failed", "blocked", "interrupted") if counts.get(s)]
    end = view.now if state.status is RunStatus.RUNNING else state.finished_at or view.now
    elapsed = format_duration((end - state.started_at).total_seconds())
    running = state.status is RunStatus.RUNNING
    left = estimates.eta(state, view.now, view.history) if running else None
    last = [f"about {format_duration(left)} left"] if left is not None else []
    if state.status is not RunStatus.RUNNING:
        last = [state.status.value]
    for parts in (
        [f"run {state.run_id}", done, *failures, elapsed, *last],
        [done, *failures, elapsed, *last],
        [done, elapsed, *last],
    ):
        text = " · ".join(parts)
        if len(text) < view.width:
            break
    return text


def stopping_line(
    grace: float, agents: int, *, committing: int = 0, signs: bool = False, width: int = 0
) -> str:
    """The header's second line after the first Ctrl-C (issue 14): the agents waited for,
    the specs whose work is being committed (``committing``: their agents are done; with
    ``signs``, a signer may keep each waiting up to ``git_commit.signing_wait``), what a
    second Ctrl-C ends; with neither, there is nothing to wait for. Given the board's
    ``width``, a shorter wording when the full one would be cut: what a second Ctrl-C does
    stays, the details go first."""
    doing, brief, again, does = [], [], [], []
    if agents:
        doing.append(f"waiting up to {grace:g} s for {counted(agents, 'agent')}")
        brief.append(f"{counted(agents, 'agent')} (up to {grace:g} s)")
        again.append(f"kill {'it' if agents == 1 else 'them'}")
        does.append(f"kills {'it' if agents == 1 else 'them'}")
    if committing:
        how = "committing and signing" if signs else "committing"
        doing.append(f"{how} the work of {counted(committing, 'spec')}")
        brief.append(f"{how} {counted(committing, 'spec')}")
        again += ["stop signing"] if signs else []
        does += ["stops signing"] if signs else []
    if not doing:
        return "stopping: no agent is running"
    later = f" (Ctrl-C again to {' and '.join(again)} now)" if again else ""
    full = f"stopping: {' and '.join(doing)}{later}"
    then = f"; Ctrl-C again {' and '.join(does)}" if does else ""
    shorter = (f"stopping {', '.join(brief)}{then}", f"stopping{then}")
    # a board line never reaches the last column (``_cut``)
    return next((t for t in (full, *shorter) if len(t) < width), full if not width else shorter[-1])


def committing(state: RunState) -> int:
    """How many specs of ``state`` have their work committed now: running, agent done."""
    return sum(s.status is SpecStatus.RUNNING and s.agent_done for s in state.specs)


# --- one line ---------------------------------------------------------------------------------


def _shape(view: View) -> dict[str, int]:
    """The width each column keeps at this width, in ``fit.GIVE_UP``'s order (the bar first,
    when it would leave a note fewer than ``NOTE_MIN`` columns; the symbol and the time stay)."""
    cols = view.columns
    columns = {
        "symbol": fit.Column(1, 0),
        "spec": fit.Column(cols.spec, 1),
        "layer": fit.Column(cols.layer),
        "status": fit.Column(_STATUS),
        "stage": fit.Column(_STAGE),
        "fraction": fit.Column(cols.fraction),
        "bar": fit.Column(BAR + 2, 1),
        "time": fit.Column(TIME),
        "note": fit.Column(NOTE_MIN),
    }
    return fit.widths(columns, view.width - 1)


def _titles(view: View) -> str:
    shape = _shape(view)
    cells = ["  " + "SPEC".ljust(shape["spec"])]
    cells += ["LAYER".ljust(shape["layer"])] if shape["layer"] else []
    cells += ["STATUS".ljust(_STATUS)] if shape["status"] else []
    cells += ["STAGE".ljust(_STAGE)] if shape["stage"] else []
    tasks = _tasks_width(shape)
    cells += ["TASKS".ljust(tasks)] if tasks else []
    cells += ["TIME".rjust(TIME)]
    return GAP.join(cells).rstrip()


def _tasks_width(shape: dict[str, int]) -> int:
    return shape["fraction"] + ((shape["bar"] + 1) if shape["bar"] else 0)


def _row(line: fold.Line, view: View) -> str:
    """A spec's row, or a fold's: the symbol (a spinner when running), the cells, then the
    note cut to what is left of the line; cut to the width whatever is left."""
    code = _COLOR[line.status]
    spec = line.spec
    if spec is None:
        segments: list[tuple[str, str | None]] = [(SYMBOL[line.status], code), (" ", None)]
        segments.append((line.label, None))
    else:
        segments = _cells(spec, view)
    used = sum(fit.width_of(text) for text, _ in segments)
    room = view.width - 1 - used - len(GAP)
    if line.note and room >= 8:
        note = cut_reason(line.note, room) if line.reason else truncate(line.note, room)
        segments.append((GAP + note, None))
    return fit.line(segments, view.width - 1, view.color)


def _cells(spec: SpecState, view: View) -> list[tuple[str, str | None]]:
    shape = _shape(view)
    stopping = view.stopping and spec.status is SpecStatus.RUNNING
    status = "stopping" if stopping else spec.shown_status  # "stalled" (issue 17)
    code = _COLOR[SpecStatus.INTERRUPTED] if status == "stalled" else _COLOR[spec.status]
    segments: list[tuple[str, str | None]] = [(_symbol(spec, view), code), (" ", None)]
    cells = [fit.pad(spec.id, shape["spec"])]
    if shape["layer"]:
        cells.append(fit.pad(spec.layer, shape["layer"]))
    segments.append((GAP.join(cells), None))
    if shape["status"]:
        segments += [(GAP, None), (status, code), (" " * (_STATUS - len(status)), None)]
    cells = [(spec.stage or "").ljust(_STAGE)] * bool(shape["stage"])
    cells += [_tasks(spec, view, shape)] if _tasks_width(shape) else []
    cells += [spec_time(spec, view.now).rjust(TIME)]
    segments.append((GAP + GAP.join(cells), None))
    return segments


def _symbol(spec: SpecState, view: View) -> str:
    if spec.status is SpecStatus.RUNNING and not view.stopping:
        frames = ASCII_SPINNER if view.ascii else SPINNER
        return frames[view.tick % len(frames)]
    return SYMBOL[spec.status]


def _tasks(spec: SpecState, view: View, shape: dict[str, int]) -> str:
    fraction = _fraction(spec)
    cells = [fraction.rjust(view.columns.fraction)] if shape["fraction"] else []
    if shape["bar"]:
        cells.append(_bar(spec) if fraction else " " * (BAR + 2))
    return " ".join(cells)


def _fraction(spec: SpecState) -> str:
    return f"{spec.tasks_done or 0}/{spec.tasks_total}" if spec.tasks_total else ""


def _bar(spec: SpecState) -> str:
    total = spec.tasks_total or 0
    filled = round(BAR * min(spec.tasks_done or 0, total) / total) if total else 0
    return "[" + "#" * filled + "-" * (BAR - filled) + "]"


def cut_reason(text: str, width: int) -> str:
    """``text`` in ``width`` columns, keeping its end: the last clauses of an error chain
    (``a: b: what went wrong``) usually say what went wrong, so the start goes first.

    >>> cut_reason("autospec exited with 1 during plan: ERROR: no spec.yaml", 24)
    '…ERROR: no spec.yaml'
    """
    if len(text) <= width:
        return text
    clauses = text.split(": ")
    for start in range(1, len(clauses)):
        tail = ": ".join(clauses[start:])
        if len(tail) + 1 <= width:
            return "…" + tail
    return truncate(clauses[-1], width)


def _cut(text: str, width: int, *, color: bool = False, bold: bool = False) -> str:
    """A line of the board: never reaching the last column (where a terminal may wrap)."""
    return fit.line([(text, None)], max(width - 1, 0), color, bold=bold)
