"""The report card of a run (issue 17): per spec its status, stage, tasks, duration,
attempts and merge result, and one line of totals. Pure: ``card`` decides, the ``render_*``
functions format; ``dag report`` and the end of ``run``/``resume``/``retry`` print them.

Tokens and cost come from the specs' logs (``dagspec.usage``) where the agent reports them
(Claude Code does; Codex and OpenCode do not); a spec without them shows none, and the
columns appear only when some spec has them. They are never guessed.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from dagspec import fit
from dagspec.lifecycle import RunState, SpecState, SpecStatus
from dagspec.render import format_duration, merge_word, spec_time
from dagspec.state import format_time
from dagspec.usage import AgentUsage
from dagspec.words import counted

FORMAT = 1
_HEADER = ("SPEC", "STATUS", "STAGE", "TASKS", "TIME", "ATTEMPTS", "MERGE")
# The text table's columns: MERGE is the merge's word, then its commit (``merged abc123``).
_NAMES = ("spec", "status", "stage", "tasks", "time", "attempts", "merge", "commit")
# What the text table gives up as the width shrinks (``fit.table``), as ``dag status`` does:
# a long id is cut first, then whole columns go; the spec, its status and its merge's word
# stay, and what still does not fit is cut at the end of the line.
GIVE_UP = (
    fit.Give("spec", fit.SPEC_MIN, as_needed=True),
    fit.Give("tokens"),
    fit.Give("commit"),  # the word before it says merged
    fit.Give("attempts"),
    fit.Give("stage"),
    fit.Give("tasks"),
    fit.Give("cost"),
    fit.Give("time"),
    fit.Give("spec", fit.SPEC_LEAST, as_needed=True),
)


@attrs.frozen
class SpecLine:
    """One spec's row. ``duration`` is of its last attempt, ``agent_time`` of all its
    attempts (``SpecState.agent_seconds``), in seconds (running: so far); ``time`` is the
    TIME cell, as ``dag status`` and the live board show it (``render.spec_time``)."""

    id: str
    status: str
    stage: str | None
    tasks_done: int | None
    tasks_total: int | None
    duration: float | None
    attempts: int
    merge: str  # merged, already-merged, not-merged-yet (``render.merge_word``), or ""
    merge_commit: str | None
    error: str | None
    usage: AgentUsage | None = None  # tokens and cost, where the agent reported them
    agent_time: float = 0.0
    time: str = ""


@attrs.frozen
class Totals:
    specs: int
    counts: dict[str, int]
    merged: int
    tasks_done: int
    tasks_total: int
    attempts: int
    duration: float | None  # the run's wall-clock time, in seconds
    agent_time: float  # every attempt of every spec, in seconds
    usage: AgentUsage | None = None  # the sum over the specs that reported usage


@attrs.frozen
class Card:
    run_id: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    specs: tuple[SpecLine, ...]
    totals: Totals


def card(run: RunState, *, now: datetime, usage: Mapping[str, AgentUsage] | None = None) -> Card:
    """The report card of ``run``; ``now`` times what is still running; ``usage`` is what
    the agents reported, by spec id (``usage.usage_of``)."""
    reported = usage or {}
    lines = tuple(_spec_line(spec, now, reported.get(spec.id)) for spec in run.specs)
    end = run.finished_at or now
    totals = Totals(
        specs=len(lines),
        counts=run.counts(),
        merged=sum(1 for line in lines if line.merge in ("merged", "already-merged")),
        tasks_done=sum(line.tasks_done or 0 for line in lines),
        tasks_total=sum(line.tasks_total or 0 for line in lines),
        attempts=sum(line.attempts for line in lines),
        duration=(end - run.started_at).total_seconds(),
        agent_time=sum(line.agent_time for line in lines),
        usage=_sum(list(reported.values())),
    )
    return Card(run.run_id, run.status.value, run.started_at, run.finished_at, lines, totals)


def _sum(usages: list[AgentUsage]) -> AgentUsage | None:
    if not usages:
        return None
    costs = [u.cost_usd for u in usages if u.cost_usd is not None]
    return AgentUsage(
        sum(u.tokens_in for u in usages),
        sum(u.tokens_out for u in usages),
        sum(costs) if costs else None,
    )


def _spec_line(spec: SpecState, now: datetime, usage: AgentUsage | None) -> SpecLine:
    return SpecLine(
        id=spec.id,
        status=spec.status.value,
        stage=spec.stage,
        tasks_done=spec.tasks_done,
        tasks_total=spec.tasks_total,
        duration=spec.attempt_seconds(now),
        agent_time=spec.agent_seconds(now),
        time=spec_time(spec, now),
        attempts=spec.attempts,
        merge=_merge_result(spec),
        merge_commit=spec.merge_commit,
        error=(spec.error or "").strip().split("\n", 1)[0] or None,
        usage=usage,
    )


def _merge_result(spec: SpecState) -> str:
    """The merge's word (``render.merge_word``) as one JSON token: ``already-merged``."""
    return merge_word(spec).replace(" ", "-")


# --- rendering ------------------------------------------------------------------------------


def totals_line(c: Card) -> str:
    """``5 specs (3 completed, 2 failed), 3 merged, tasks 30/36 of 4 specs, 7 attempts,
    1h02m wall, 2h10m agent time``: the tasks are those of the specs that made their list,
    and ``of N specs`` says so when not every spec did."""
    return "total: " + ", ".join(_totals(c))


def _merged(c: Card) -> list[str]:
    """``3 merged``, as many as the rows say ``merged``; and ``2 already merged`` when rows
    say that, in the rows' words (README, Merging): a run of a DAG run before, whose specs
    brought nothing new, ends ``2 already merged``, not ``2 merged``."""
    already = sum(1 for line in c.specs if line.merge == "already-merged")
    merged = c.totals.merged - already
    if not already:
        return [f"{merged} merged"]
    return ([f"{merged} merged"] if merged else []) + [f"{already} already merged"]


def _totals(c: Card) -> list[str]:
    """The parts of ``totals_line``."""
    t = c.totals
    listed = sum(1 for line in c.specs if line.tasks_total)
    of = f" of {counted(listed, 'spec')}" if listed < t.specs else ""
    parts = [
        f"{counted(t.specs, 'spec')} ({count_text_of(t.counts)})",
        *_merged(c),
        f"tasks {t.tasks_done}/{t.tasks_total}{of}" if listed else "no tasks yet",
        counted(t.attempts, "attempt"),
    ]
    if t.duration is not None:
        parts.append(f"{format_duration(t.duration)} wall")
    parts.append(f"{format_duration(t.agent_time)} agent time")
    if t.usage is not None:
        parts.append(f"tokens {_tokens(t.usage)}")
        if t.usage.cost_usd is not None:
            parts.append(_cost(t.usage))
    return parts


def _tokens(usage: AgentUsage | None) -> str:
    return "" if usage is None else f"{usage.tokens_in} in/{usage.tokens_out} out"


def _cost(usage: AgentUsage | None) -> str:
    return "" if usage is None or usage.cost_usd is None else f"${usage.cost_usd:.4f}"


def _header(c: Card) -> tuple[str, ...]:
    """The columns: TOKENS and COST only when some spec reported them."""
    return (*_HEADER, "TOKENS", "COST") if c.totals.usage is not None else _HEADER


def _names(c: Card) -> tuple[str, ...]:
    """The text table's column names: ``_header``'s, with MERGE's commit a column of its own."""
    return (*_NAMES, "tokens", "cost") if c.totals.usage is not None else _NAMES


def count_text_of(counts: dict[str, int]) -> str:
    """``3 completed, 2 failed``, statuses in their usual order."""
    return ", ".join(f"{counts[s.value]} {s.value}" for s in SpecStatus if s.value in counts)


def _cells(line: SpecLine, c: Card) -> tuple[str, ...]:
    """The row's cells by ``_names``: the merge's word and its commit apart."""
    cells = (
        line.id,
        line.status,
        "done" if line.status == "completed" else line.stage or "",
        f"{line.tasks_done or 0}/{line.tasks_total}" if line.tasks_total else "",
        line.time,
        str(line.attempts),
        line.merge.replace("-", " "),
        (line.merge_commit or "")[:10] if line.merge == "merged" else "",
    )
    if c.totals.usage is None:
        return cells
    return (*cells, _tokens(line.usage), _cost(line.usage))


def _joined_cells(line: SpecLine, c: Card) -> tuple[str, ...]:
    """The row's cells by ``_header``: the merge's word and its commit in one (Markdown)."""
    cells = _cells(line, c)
    merge = " ".join(cell for cell in cells[6:8] if cell)
    return (*cells[:6], merge, *cells[8:])


def render_text(c: Card, *, width: int = fit.UNLIMITED) -> str:
    """An aligned table (a failed spec's reason under its row), then the totals line. No
    row is wider than ``width`` columns: whole columns go first, in ``GIVE_UP``'s order, and
    the columns line up whatever the characters (``fit.table``)."""
    header = (*_HEADER[:7], "", *_header(c)[7:])  # MERGE over the word and the commit
    rows = [_cells(line, c) for line in c.specs]
    table = fit.table(_names(c), [header, *rows], width, GIVE_UP, trailing="commit")
    out = [f"report of run {c.run_id}: {c.status}", table[0]]
    for line, row in zip(c.specs, table[1:], strict=True):
        out.append(row)
        if note := _note(line):
            out.append(fit.line([(f"  ↳ {note}", None)], width, False))
    first, *rest = _totals(c)  # the totals line, kept to the width too
    out += _wrapped([f"total: {first}", *rest], width)
    return "\n".join(out) + "\n"


def _wrapped(parts: list[str], width: int) -> list[str]:
    """``parts`` joined by commas, on as many lines as ``width`` needs (each line after the
    first indented two columns); a part wider than a line is cut (``fit.line``)."""
    lines: list[str] = []
    for part in parts:
        joined = f"{lines[-1]}, {part}" if lines else part
        if lines and fit.width_of(joined) + 1 > width:  # the comma stays on the line
            lines[-1] += ","
            lines.append("  " + part)
        else:
            lines[-1:] = [joined]
    return [fit.line([(line, None)], width, False) for line in lines]


def _note(line: SpecLine) -> str:
    """Why a spec did not complete; nothing when that would only say its status again (a
    stop's ``interrupted``)."""
    if line.status == "completed" or line.error in (None, line.status):
        return ""
    return line.error or ""


def render_markdown(c: Card) -> str:
    """A GitHub-flavoured Markdown table, for a pull request or a chat message."""
    header = [*_header(c), "NOTE"]
    out = [
        f"### dag run `{c.run_id}`: {c.status}",
        "",
        "| " + " | ".join(h.capitalize() for h in header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
    ]
    for line in c.specs:
        cells = [*_joined_cells(line, c), _note(line)]
        spec = f"`{cells[0]}`"  # an id is letters, digits and ._- (``schema._ID``): as it is
        out.append("| " + " | ".join([spec, *map(_md_escape, cells[1:])]) + " |")
    out += ["", f"**{totals_line(c)}**"]
    return "\n".join(out) + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def _md_escape(text: str) -> str:
    """``text`` as it reads, inside one cell of a GFM table: HTML's ``&<>`` as entities
    (no tag of an error message is rendered), Markdown's punctuation and ``|`` (which ends
    a cell) after a backslash, a backslash too (``\\|`` would end the cell), and a line
    break as ``<br>``."""
    escaped = _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))
    return "<br>".join(escaped.splitlines())


def to_json_data(c: Card) -> dict[str, Any]:
    """``{format, run_id, status, started_at, finished_at, specs: [...], totals: {...}}``;
    durations in seconds (``duration_seconds``, ``agent_seconds``), times ISO 8601 UTC."""
    t = c.totals
    return {
        "format": FORMAT,
        "run_id": c.run_id,
        "status": c.status,
        "started_at": format_time(c.started_at),
        "finished_at": None if c.finished_at is None else format_time(c.finished_at),
        "specs": [
            {
                "id": s.id,
                "status": s.status,
                "stage": s.stage,
                "tasks_done": s.tasks_done,
                "tasks_total": s.tasks_total,
                "duration_seconds": s.duration,
                "agent_seconds": s.agent_time,
                "attempts": s.attempts,
                "merge": s.merge or None,
                "merge_commit": s.merge_commit,
                "error": s.error,
                **_usage_data(s.usage),
            }
            for s in c.specs
        ],
        "totals": {
            "specs": t.specs,
            "counts": t.counts,
            "merged": t.merged,
            "tasks_done": t.tasks_done,
            "tasks_total": t.tasks_total,
            "attempts": t.attempts,
            "duration_seconds": t.duration,
            "agent_seconds": t.agent_time,
            **_usage_data(t.usage),
        },
    }


def _usage_data(usage: AgentUsage | None) -> dict[str, Any]:
    """``tokens_in``, ``tokens_out``, ``cost_usd``: null where the agent reported none."""
    if usage is None:
        return {"tokens_in": None, "tokens_out": None, "cost_usd": None}
    return {
        "tokens_in": usage.tokens_in,
        "tokens_out": usage.tokens_out,
        "cost_usd": usage.cost_usd,
    }


def render_json(c: Card) -> str:
    return json.dumps(to_json_data(c), indent=2) + "\n"
