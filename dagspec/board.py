"""The live board (issue 14): one frame of a run that fits a terminal of any size.

Pure: a frame is a list of lines computed from the run's state, the time, the terminal's
size and the column widths fixed for the run. ``dagspec.screen`` puts frames on a terminal.

What stays in view when the specs do not fit, in order of what is given up first
(``_FOLDS``): completed specs fold into one count, then pending and blocked specs of one
layer into one line each, then all of them into a count, then the specs that just finished,
then the failed ones; running specs are the last to go, and only when even they cannot fit.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from datetime import datetime

import attrs

from dagspec.render import format_duration, truncate
from dagspec.state import RunState, RunStatus, SpecState, SpecStatus

GAP = "  "
ID_MIN = 12  # a spec id is never cut shorter than this (unless the terminal is narrower)
LAYER_MAX = 10
BAR = 6
TIME = 6  # "12m05s"
NOTE_MIN = 20  # the bar goes before a note gets fewer columns than this
JUST_FINISHED = 60.0  # seconds a finished spec keeps its row once space runs out
RECENT = 3  # at most this many of them
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
ASCII_SPINNER = "|/-\\"
SYMBOL = {
    SpecStatus.PENDING: "◦",
    SpecStatus.RUNNING: "▸",
    SpecStatus.COMPLETED: "✓",
    SpecStatus.FAILED: "✗",
    SpecStatus.BLOCKED: "⊘",
    SpecStatus.INTERRUPTED: "!",
}
# Every symbol dagspec prints, and what stands for it where the output cannot encode it
# (the symbols of nox): ``text.translate(ASCII)``.
ASCII = str.maketrans(
    {"◦": "o", "▸": ">", "✓": "+", "✗": "x", "⊘": "-", "…": "~", "↳": ">", "·": "-", "→": "->"}
)
_COLOR = {
    SpecStatus.PENDING: "2",
    SpecStatus.RUNNING: "36",
    SpecStatus.COMPLETED: "32",
    SpecStatus.FAILED: "31",
    SpecStatus.BLOCKED: "35",
    SpecStatus.INTERRUPTED: "33",
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
            spec=max([len("SPEC"), *(len(s.id) for s in state.specs)]),
            layer=min(max([len("LAYER"), *(len(s.layer) for s in state.specs)]), LAYER_MAX),
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
    expected: float | None = None  # seconds a spec is expected to take (None: not known yet)
    ascii: bool = False  # the output cannot encode braille: an ASCII spinner


@attrs.frozen
class _Line:
    """One line of the frame's body: a spec's row, or a fold of several specs."""

    status: SpecStatus
    label: str  # the spec id, or what the fold holds ("16 completed")
    spec: SpecState | None = None
    note: str = ""
    count: int = 1  # how many specs the line stands for
    reason: bool = False  # the note is an error chain, cut from its start (``cut_reason``)


def frame(state: RunState, view: View) -> list[str]:
    """The board: a header, the column titles, then a line per spec or per fold of specs.

    At most ``view.height`` lines (at least the header when the height is smaller), none
    wider than ``view.width`` columns.
    """
    header = [_header(state, view)] + ([view.stopping] if view.stopping else [])
    room = view.height - len(header) - 1
    body = _fit(state, view, room)
    lines = [_cut(line, view.width) for line in header]
    if room >= 1:
        lines.append(_paint(_titles(view), "1", view.color))
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
    left = eta(state, view.now, view.expected) if state.status is RunStatus.RUNNING else None
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


def stopping_line(grace: float, agents: int) -> str:
    """The header's second line after the first Ctrl-C (issue 14)."""
    noun = "agent" if agents == 1 else "agents"
    return (
        f"stopping: waiting up to {grace:g} s for {agents} {noun} (Ctrl-C again to kill them now)"
    )


def eta(state: RunState, now: datetime, expected: float | None = None) -> float | None:
    """Seconds until the run should end, or None before anything is known.

    Each unfinished spec that can still run is expected to take ``expected`` seconds (by
    default the median duration of the run's completed specs); the run ends no sooner than
    its longest chain of such work, nor than all of it shared among the parallel slots.
    """
    typical = expected if expected is not None else _typical(state)
    if typical is None:
        return None
    left = {s.id: _left(s, now, typical) for s in state.specs if _still_to_run(s)}
    if not left:
        return None
    deps_of = {s.id: s.depends_on for s in state.specs}
    chain: dict[str, float] = {}

    def finish(spec_id: str) -> float:
        if spec_id not in chain:
            deps = [finish(d) for d in deps_of[spec_id] if d in left]
            chain[spec_id] = left[spec_id] + max(deps, default=0.0)
        return chain[spec_id]

    slots = state.options.max_parallel if state.options.parallel else 1
    longest = max((finish(spec_id) for spec_id in left), default=0.0)
    return max(longest, sum(left.values()) / max(slots, 1))


def _typical(state: RunState) -> float | None:
    durations = [
        (s.finished_at - s.started_at).total_seconds()
        for s in state.specs
        if s.status is SpecStatus.COMPLETED and s.started_at and s.finished_at
    ]
    return statistics.median(durations) if durations else None


def _still_to_run(spec: SpecState) -> bool:
    return spec.status in (SpecStatus.PENDING, SpecStatus.RUNNING)


def _left(spec: SpecState, now: datetime, typical: float) -> float:
    if spec.status is SpecStatus.RUNNING and spec.started_at is not None:
        return max(typical - (now - spec.started_at).total_seconds(), 1.0)
    return typical


# --- what fits --------------------------------------------------------------------------------


def _fit(state: RunState, view: View, room: int) -> list[_Line]:
    """The first arrangement of the specs that fits in ``room`` lines; running specs last
    to go, cut with a count of those left out only when even they do not fit."""
    facts = _Facts.of(state)
    lines = [_spec_line(s, facts) for s in state.specs]
    for fold in _FOLDS:
        if len(lines) <= room:
            return lines
        lines = fold(lines, state, view)
    if len(lines) <= room:
        return lines
    kept = lines[: max(room - 1, 0)]
    hidden = len(state.specs) - sum(line.count for line in kept)
    more = _Line(SpecStatus.RUNNING, f"… and {hidden} more", count=hidden)
    return [*kept, more] if room > 0 else []


@attrs.frozen
class _Facts:
    """What notes need to know of the whole run, found once per frame."""

    done: frozenset[str]
    layer: dict[str, str]

    @classmethod
    def of(cls, state: RunState) -> _Facts:
        done = frozenset(s.id for s in state.specs if s.status is SpecStatus.COMPLETED)
        return cls(done, {s.id: s.layer for s in state.specs})


def _spec_line(spec: SpecState, facts: _Facts) -> _Line:
    reason = spec.status in (SpecStatus.FAILED, SpecStatus.INTERRUPTED)
    return _Line(spec.status, spec.id, spec, _note(spec, facts), reason=reason)


def _fold_completed(lines: list[_Line], state: RunState, view: View) -> list[_Line]:
    """Completed specs (but those that just finished) into one count, busiest rows first."""
    recent = _recent(lines, view)
    old = [ln for ln in lines if ln.status is SpecStatus.COMPLETED and ln not in recent]
    rest = [ln for ln in lines if ln.status is not SpecStatus.COMPLETED or ln in recent]
    order = (SpecStatus.RUNNING, SpecStatus.FAILED, SpecStatus.INTERRUPTED, SpecStatus.COMPLETED)
    ranked = sorted(rest, key=lambda ln: order.index(ln.status) if ln.status in order else 9)
    return ranked + _count(SpecStatus.COMPLETED, old, "completed")


def _fold_layers(lines: list[_Line], state: RunState, view: View) -> list[_Line]:
    """Pending and blocked specs of one layer into one line each (when there are several)."""
    groups: dict[tuple[SpecStatus, str], list[SpecState]] = {}
    for line in lines:
        if line.spec is not None and line.status in (SpecStatus.PENDING, SpecStatus.BLOCKED):
            groups.setdefault((line.status, line.spec.layer), []).append(line.spec)
    result: list[_Line] = []
    for line in lines:
        group = groups.get((line.status, line.spec.layer)) if line.spec else None
        if group is None or len(group) == 1:
            result.append(line)
        elif group[0] is line.spec:
            result.append(_layer_fold(line.status, group, state))
    return result


def _fold_waiting(lines: list[_Line], state: RunState, view: View) -> list[_Line]:
    """Every pending spec into one count, every blocked spec into another."""
    kinds = (SpecStatus.PENDING, SpecStatus.BLOCKED)
    kept = [ln for ln in lines if ln.status not in kinds]
    for status in kinds:
        specs = [s for s in state.specs if s.status is status]
        kept += _count(status, specs, status.value)
    return kept


def _fold_finished(lines: list[_Line], state: RunState, view: View) -> list[_Line]:
    """The specs that just finished join the count of completed specs."""
    kept = [ln for ln in lines if ln.status is not SpecStatus.COMPLETED]
    done = [s for s in state.specs if s.status is SpecStatus.COMPLETED]
    return _put_last_but_waiting(kept, _count(SpecStatus.COMPLETED, done, "completed"))


def _fold_failed(lines: list[_Line], state: RunState, view: View) -> list[_Line]:
    """Failed and interrupted specs into a count each (``dag status`` has their reasons)."""
    kinds = (SpecStatus.FAILED, SpecStatus.INTERRUPTED)
    kept = [ln for ln in lines if ln.status not in kinds]
    folded: list[_Line] = []
    for status in kinds:
        folded += _count(status, [s for s in state.specs if s.status is status], status.value)
    return _put_last_but_waiting(kept, folded)


_FOLDS: Sequence[Callable[[list[_Line], RunState, View], list[_Line]]] = (
    _fold_completed,
    _fold_layers,
    _fold_waiting,
    _fold_finished,
    _fold_failed,
)


def _put_last_but_waiting(lines: list[_Line], folded: list[_Line]) -> list[_Line]:
    """``folded`` after the rows of running specs, before the counts of waiting ones."""
    waiting = (SpecStatus.PENDING, SpecStatus.BLOCKED, SpecStatus.COMPLETED)
    head = [ln for ln in lines if ln.status not in waiting]
    tail = [ln for ln in lines if ln.status in waiting]
    return head + folded + tail


def _count(status: SpecStatus, specs: Sequence[object], word: str) -> list[_Line]:
    return [_Line(status, f"{len(specs)} {word}", count=len(specs))] if specs else []


def _recent(lines: list[_Line], view: View) -> list[_Line]:
    """The ``RECENT`` completed specs that finished last, less than ``JUST_FINISHED`` ago."""
    done = [
        (ln.spec.finished_at, ln)
        for ln in lines
        if ln.spec is not None and ln.status is SpecStatus.COMPLETED and ln.spec.finished_at
    ]
    done = [(at, ln) for at, ln in done if (view.now - at).total_seconds() < JUST_FINISHED]
    return [ln for _, ln in sorted(done, key=lambda pair: pair[0])[-RECENT:]]


def _layer_fold(status: SpecStatus, specs: list[SpecState], state: RunState) -> _Line:
    """``12 pending in L1`` with what they wait for: ``waits for layer L0: 5 left``."""
    layer = specs[0].layer
    if status is SpecStatus.BLOCKED:
        causes = sorted({c for s in specs for c in s.blocked_by})
        label = f"{len(specs)} blocked in {layer}"
        return _Line(status, label, note=_by(causes), count=len(specs))
    facts = _Facts.of(state)
    waiting = sorted({d for s in specs for d in s.depends_on if d not in facts.done})
    note = _waits(waiting, facts)
    return _Line(status, f"{len(specs)} pending in {layer}", note=note, count=len(specs))


def _note(spec: SpecState, facts: _Facts) -> str:
    if spec.status is SpecStatus.PENDING:
        return _waits([d for d in spec.depends_on if d not in facts.done], facts)
    if spec.status is SpecStatus.BLOCKED:
        return _by(spec.blocked_by)
    if spec.status in (SpecStatus.FAILED, SpecStatus.INTERRUPTED):
        if spec.error:
            return " ".join(spec.error.split())
        return "" if spec.exit_code is None else f"exit code {spec.exit_code}"
    if spec.status is SpecStatus.RUNNING and spec.attempts > 1:
        return f"attempt {spec.attempts}"
    return "merged" if spec.merged else ""


def _waits(ids: Sequence[str], facts: _Facts) -> str:
    """``waits for a, b``, or ``waits for layer L0: 5 left`` when they are many of one layer."""
    if len(ids) <= 2:
        return "waits for " + ", ".join(ids) if ids else ""
    layers = {facts.layer[spec_id] for spec_id in ids}
    if len(layers) == 1:
        return f"waits for layer {layers.pop()}: {len(ids)} left"
    return f"waits for {len(ids)} specs"


def _by(ids: Sequence[str]) -> str:
    return "blocked by " + ", ".join(ids) if ids else ""


# --- one line ---------------------------------------------------------------------------------


@attrs.frozen
class _Shape:
    """Which columns a line has room for at this width, and the spec column's width."""

    spec: int
    layer: bool
    stage: bool
    bar: bool
    fraction: bool


def _shape(view: View) -> _Shape:
    """Give up, as the width shrinks: the bar (when it would leave a note fewer than
    ``NOTE_MIN`` columns), then the layer, the stage, the fraction, and last some of the
    spec id; the symbol, the id, the status and the time stay."""
    cols = view.columns
    parts = {"bar": BAR + 3, "layer": cols.layer + 2, "stage": _STAGE + 2}
    parts["fraction"] = cols.fraction + 2
    fixed = 2 + _STATUS + 2 + TIME + 2  # symbol, status, time, and their gaps
    keep = dict.fromkeys(parts, True)
    spare = {"bar": NOTE_MIN + len(GAP)}
    for name in ("bar", "layer", "stage", "fraction"):
        needed = fixed + cols.spec + sum(parts[n] for n in parts if keep[n]) + spare.get(name, 0)
        if needed <= view.width - 1:
            break
        keep[name] = False
    used = fixed + sum(parts[n] for n in parts if keep[n])
    spec = max(min(cols.spec, view.width - 1 - used), min(ID_MIN, cols.spec))
    return _Shape(spec, keep["layer"], keep["stage"], keep["bar"], keep["fraction"])


def _titles(view: View) -> str:
    shape = _shape(view)
    cells = ["  " + "SPEC".ljust(shape.spec)]
    cells += ["LAYER".ljust(view.columns.layer)] if shape.layer else []
    cells += ["STATUS".ljust(_STATUS)]
    cells += ["STAGE".ljust(_STAGE)] if shape.stage else []
    tasks = _tasks_width(view, shape)
    cells += ["TASKS".ljust(tasks)] if tasks else []
    cells += ["TIME".rjust(TIME)]
    return _cut(GAP.join(cells).rstrip(), view.width)


def _tasks_width(view: View, shape: _Shape) -> int:
    return (view.columns.fraction if shape.fraction else 0) + ((BAR + 3) if shape.bar else 0)


def _row(line: _Line, view: View) -> str:
    """A spec's row, or a fold's: the symbol (a spinner when running), the cells, then the
    note cut to what is left of the line."""
    code = _COLOR[line.status]
    spec = line.spec
    if spec is None:
        segments: list[tuple[str, str | None]] = [(SYMBOL[line.status], code), (" ", None)]
        segments.append((line.label, None))
    else:
        segments = _cells(spec, view)
    used = sum(len(text) for text, _ in segments)
    room = view.width - 1 - used - len(GAP)
    if line.note and room >= 8:
        note = cut_reason(line.note, room) if line.reason else truncate(line.note, room)
        segments.append((GAP + note, None))
    while segments and not segments[-1][0].strip():
        segments.pop()
    segments[-1] = (segments[-1][0].rstrip(), segments[-1][1])
    return "".join(_paint(text, c, view.color) if c else text for text, c in segments)


def _cells(spec: SpecState, view: View) -> list[tuple[str, str | None]]:
    shape = _shape(view)
    code = _COLOR[spec.status]
    stopping = view.stopping and spec.status is SpecStatus.RUNNING
    status = "stopping" if stopping else spec.status.value
    segments: list[tuple[str, str | None]] = [(_symbol(spec, view), code), (" ", None)]
    cells = [truncate(spec.id, shape.spec).ljust(shape.spec)]
    cells += [truncate(spec.layer, view.columns.layer).ljust(view.columns.layer)] * shape.layer
    segments.append((GAP.join(cells) + GAP, None))
    segments += [(status, code), (" " * (_STATUS - len(status)), None)]
    cells = [(spec.stage or "").ljust(_STAGE)] * shape.stage
    cells += [_tasks(spec, view, shape)] if _tasks_width(view, shape) else []
    cells += [_time(spec, view.now).rjust(TIME)]
    segments.append((GAP + GAP.join(cells), None))
    return segments


def _symbol(spec: SpecState, view: View) -> str:
    if spec.status is SpecStatus.RUNNING and not view.stopping:
        frames = ASCII_SPINNER if view.ascii else SPINNER
        return frames[view.tick % len(frames)]
    return SYMBOL[spec.status]


def _tasks(spec: SpecState, view: View, shape: _Shape) -> str:
    fraction = _fraction(spec)
    cells = [fraction.rjust(view.columns.fraction)] if shape.fraction else []
    if shape.bar:
        cells.append(_bar(spec) if fraction else " " * (BAR + 2))
    return " ".join(cells)


def _fraction(spec: SpecState) -> str:
    return f"{spec.tasks_done or 0}/{spec.tasks_total}" if spec.tasks_total else ""


def _bar(spec: SpecState) -> str:
    total = spec.tasks_total or 0
    filled = round(BAR * min(spec.tasks_done or 0, total) / total) if total else 0
    return "[" + "#" * filled + "-" * (BAR - filled) + "]"


def _time(spec: SpecState, now: datetime) -> str:
    """Running: how long so far, ticking; finished: how long it took; else nothing."""
    if spec.started_at is None:
        return ""
    end = now if spec.status is SpecStatus.RUNNING else spec.finished_at
    return "" if end is None else format_duration((end - spec.started_at).total_seconds())


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


def _cut(text: str, width: int) -> str:
    return truncate(text, max(width - 1, 0)) if "\x1b" not in text else text


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color and text else text
