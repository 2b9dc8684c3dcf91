"""What stays in view when a run's specs do not fit the screen (issue 14). Pure.

The board gives up, in this order (``_FOLDS``), until the lines fit: completed specs fold
into one count (but the ``RECENT`` that just finished), then pending and blocked specs of
one layer into one line each ("15 pending in L2  waits for layer L1: 7 left"), then all of
them into a count each, then the specs that just finished, then the failed ones; running
specs are the last to go, and only when even they cannot fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import attrs

from dagspec import unattended
from dagspec.lifecycle import RunState, SpecState, SpecStatus
from dagspec.render import merge_word
from dagspec.words import counted

JUST_FINISHED = 60.0  # seconds a finished spec keeps its row once space runs out
RECENT = 3  # at most this many of them


@attrs.frozen
class Line:
    """One line of the frame's body: a spec's row, or a fold of several specs."""

    status: SpecStatus
    label: str  # the spec id, or what the fold holds ("16 completed")
    spec: SpecState | None = None
    note: str = ""
    count: int = 1  # how many specs the line stands for
    reason: bool = False  # the note is an error chain, cut from its start (``cut_reason``)


def fit(state: RunState, now: datetime, room: int) -> list[Line]:
    """The first arrangement of the specs that fits in ``room`` lines; running specs last
    to go, cut with a count of those left out only when even they do not fit."""
    facts = _Facts.of(state)
    lines = [_spec_line(s, facts) for s in state.specs]
    for fold in _FOLDS:
        if len(lines) <= room:
            return lines
        lines = fold(lines, state, now)
    if len(lines) <= room:
        return lines
    kept = lines[: max(room - 1, 0)]
    hidden = len(state.specs) - sum(line.count for line in kept)
    more = Line(SpecStatus.RUNNING, f"… and {hidden} more", count=hidden)
    return [*kept, more] if room > 0 else []


@attrs.frozen
class _Facts:
    """What notes need to know of the whole run, found once per frame."""

    done: frozenset[str]
    layer: dict[str, str]
    slots_taken: bool  # as many specs running as the run may run at once

    @classmethod
    def of(cls, state: RunState) -> _Facts:
        done = frozenset(s.id for s in state.specs if s.status is SpecStatus.COMPLETED)
        slots = state.options.max_parallel if state.options.parallel else 1
        running = sum(s.status is SpecStatus.RUNNING for s in state.specs)
        return cls(done, {s.id: s.layer for s in state.specs}, running >= slots)


def _spec_line(spec: SpecState, facts: _Facts) -> Line:
    reason = spec.status in (SpecStatus.FAILED, SpecStatus.INTERRUPTED)
    return Line(spec.status, spec.id, spec, _note(spec, facts), reason=reason)


def _fold_completed(lines: list[Line], state: RunState, now: datetime) -> list[Line]:
    """Completed specs (but those that just finished) into one count, busiest rows first."""
    recent = _recent(lines, now)
    old = [ln for ln in lines if ln.status is SpecStatus.COMPLETED and ln not in recent]
    rest = [ln for ln in lines if ln.status is not SpecStatus.COMPLETED or ln in recent]
    order = (
        SpecStatus.RUNNING,
        SpecStatus.WAITING,
        SpecStatus.FAILED,
        SpecStatus.INTERRUPTED,
        SpecStatus.COMPLETED,
    )
    ranked = sorted(rest, key=lambda ln: order.index(ln.status) if ln.status in order else 9)
    return ranked + _count(SpecStatus.COMPLETED, old, "completed")


def _fold_layers(lines: list[Line], state: RunState, now: datetime) -> list[Line]:
    """Pending and blocked specs of one layer into one line each (when there are several)."""
    groups: dict[tuple[SpecStatus, str], list[SpecState]] = {}
    for line in lines:
        if line.spec is not None and line.status in (SpecStatus.PENDING, SpecStatus.BLOCKED):
            groups.setdefault((line.status, line.spec.layer), []).append(line.spec)
    result: list[Line] = []
    for line in lines:
        group = groups.get((line.status, line.spec.layer)) if line.spec else None
        if group is None or len(group) == 1:
            result.append(line)
        elif group[0] is line.spec:
            result.append(_layer_fold(line.status, group, state))
    return result


def _fold_waiting(lines: list[Line], state: RunState, now: datetime) -> list[Line]:
    """Every pending spec into one count, every blocked spec into another."""
    kinds = (SpecStatus.PENDING, SpecStatus.BLOCKED)
    kept = [ln for ln in lines if ln.status not in kinds]
    for status in kinds:
        specs = [s for s in state.specs if s.status is status]
        kept += _count(status, specs, status.value)
    return kept


def _fold_finished(lines: list[Line], state: RunState, now: datetime) -> list[Line]:
    """The specs that just finished join the count of completed specs."""
    kept = [ln for ln in lines if ln.status is not SpecStatus.COMPLETED]
    done = [s for s in state.specs if s.status is SpecStatus.COMPLETED]
    return _put_last_but_waiting(kept, _count(SpecStatus.COMPLETED, done, "completed"))


def _fold_failed(lines: list[Line], state: RunState, now: datetime) -> list[Line]:
    """Failed and interrupted specs into a count each (``dag status`` has their reasons)."""
    kinds = (SpecStatus.FAILED, SpecStatus.INTERRUPTED)
    kept = [ln for ln in lines if ln.status not in kinds]
    folded: list[Line] = []
    for status in kinds:
        folded += _count(status, [s for s in state.specs if s.status is status], status.value)
    return _put_last_but_waiting(kept, folded)


_FOLDS: Sequence[Callable[[list[Line], RunState, datetime], list[Line]]] = (
    _fold_completed,
    _fold_layers,
    _fold_waiting,
    _fold_finished,
    _fold_failed,
)


def _put_last_but_waiting(lines: list[Line], folded: list[Line]) -> list[Line]:
    """``folded`` after the rows of running specs, before the counts of waiting ones."""
    waiting = (SpecStatus.PENDING, SpecStatus.BLOCKED, SpecStatus.COMPLETED)
    head = [ln for ln in lines if ln.status not in waiting]
    tail = [ln for ln in lines if ln.status in waiting]
    return head + folded + tail


def _count(status: SpecStatus, specs: Sequence[object], word: str) -> list[Line]:
    return [Line(status, f"{len(specs)} {word}", count=len(specs))] if specs else []


def _recent(lines: list[Line], now: datetime) -> list[Line]:
    """The ``RECENT`` completed specs that finished last, less than ``JUST_FINISHED`` ago."""
    done = [
        (ln.spec.finished_at, ln)
        for ln in lines
        if ln.spec is not None and ln.status is SpecStatus.COMPLETED and ln.spec.finished_at
    ]
    done = [(at, ln) for at, ln in done if (now - at).total_seconds() < JUST_FINISHED]
    return [ln for _, ln in sorted(done, key=lambda pair: pair[0])[-RECENT:]]


def _layer_fold(status: SpecStatus, specs: list[SpecState], state: RunState) -> Line:
    """``12 pending in L1`` with what they wait for: ``waits for layer L0: 5 left``."""
    layer = specs[0].layer
    if status is SpecStatus.BLOCKED:
        causes = sorted({c for s in specs for c in s.blocked_by})
        label = f"{len(specs)} blocked in {layer}"
        return Line(status, label, note=_by(causes), count=len(specs))
    facts = _Facts.of(state)
    waiting = sorted({d for s in specs for d in s.depends_on if d not in facts.done})
    note = _waits(waiting, facts)
    return Line(status, f"{len(specs)} pending in {layer}", note=note, count=len(specs))


def _note(spec: SpecState, facts: _Facts) -> str:
    if (condition := unattended.note(spec)) is not None:
        return condition
    if spec.status is SpecStatus.PENDING:
        return _waits([d for d in spec.depends_on if d not in facts.done], facts)
    if spec.status is SpecStatus.BLOCKED:
        return _by(spec.blocked_by)
    if spec.status in (SpecStatus.FAILED, SpecStatus.INTERRUPTED):
        if spec.error == spec.status.value:  # "interrupted": the status says it already
            return ""
        if spec.error:
            return " ".join(spec.error.split())
        return "" if spec.exit_code is None else f"exit code {spec.exit_code}"
    if spec.status is SpecStatus.RUNNING and spec.attempts > 1:
        return f"attempt {spec.attempts}"
    return merge_word(spec) if spec.merged else ""


def _waits(ids: Sequence[str], facts: _Facts) -> str:
    """``waits for a, b``, or ``waits for layer L0: 5 left`` when they are many of one layer;
    with nothing left to wait for, a spec waits for one of the parallel slots while they are
    all taken, and is only ``ready`` while one is free (its worktree being made, or the slot
    kept for a spec with a longer chain of work behind it)."""
    if not ids:
        return "ready: waits for a free slot" if facts.slots_taken else "ready"
    if len(ids) <= 2:
        return "waits for " + ", ".join(ids)
    layers = {facts.layer[spec_id] for spec_id in ids}
    if len(layers) == 1:
        return f"waits for layer {layers.pop()}: {len(ids)} left"
    return f"waits for {counted(len(ids), 'spec')}"


def _by(ids: Sequence[str]) -> str:
    return "blocked by " + ", ".join(ids) if ids else ""
