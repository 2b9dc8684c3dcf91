"""Tokens and cost, where the agent reports them: summed from a spec's log.

autospec prints no usage of its own. Of the agents it drives, only Claude Code reports it:
each session ends with a ``result`` event (``total_cost_usd``, ``usage``) that autospec's
formatter, cclean, prints as ``│ Cost: $0.1046`` and ``│ Tokens: in=2 out=9 …`` (without
the ``│`` in its plain style; no Cost line when the cost is 0, as with a subscription).
Codex and OpenCode print neither, so their specs have no usage: it is left out, never
guessed. The log holds every attempt, so the sums are what the spec cost in all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import attrs

from dagspec.lifecycle import RunState
from dagspec.workspace import RunPaths

_COST = re.compile(r"^(?:│ )?Cost: \$(\d+(?:\.\d+)?)$")
_TOKENS = re.compile(r"^(?:│ )?Tokens: in=(\d+) out=(\d+)(?: |$)")


@attrs.frozen
class AgentUsage:
    """What the agent reported over all of a spec's sessions; cost in US dollars."""

    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None  # None: no session reported a cost


def read_usage(log: Path) -> AgentUsage | None:
    """The usage reported in ``log``; None when it reports none, does not exist or is not
    a regular file (a log a user pointed at a device is never read to its end). Read line
    by line, each line bounded (``bounded_lines``): an agent's log can be gigabytes, and so
    can one line of it."""
    try:
        if not log.is_file():
            return None
        with log.open("rb") as file:
            return _usage_in(bounded_lines(file))
    except OSError:
        return None


MAX_LINE = 64 * 1024  # bytes of a line kept; a usage line is under 200


def bounded_lines(file: BinaryIO, limit: int = MAX_LINE) -> Iterator[str]:
    """The lines of ``file``, each cut to ``limit`` bytes (the rest of a longer one is read
    past in chunks of that size, never held: a setup's progress bar, or ``yes``, writes
    one line of gigabytes), decoded as UTF-8 with errors replaced."""
    while line := file.readline(limit):
        if not line.endswith(b"\n"):
            while (more := file.readline(limit)) and not more.endswith(b"\n"):
                pass
        yield line.decode("utf-8", "replace")


def _usage_in(lines: Iterable[str]) -> AgentUsage | None:
    tokens_in = tokens_out = 0
    cost: float | None = None
    seen = False
    for line in lines:
        line = line.strip()
        if match := _TOKENS.match(line):
            tokens_in, tokens_out = tokens_in + int(match[1]), tokens_out + int(match[2])
            seen = True
        elif match := _COST.match(line):
            cost = (cost or 0.0) + float(match[1])
            seen = True
    return AgentUsage(tokens_in, tokens_out, cost) if seen else None


def usage_of(run: RunState) -> dict[str, AgentUsage]:
    """Each spec's reported usage, from its log; specs that report none are left out."""
    paths = RunPaths(Path(run.repo), run.run_id)
    found = {spec.id: read_usage(paths.log_file(spec.id)) for spec in run.specs}
    return {spec_id: usage for spec_id, usage in found.items() if usage is not None}
