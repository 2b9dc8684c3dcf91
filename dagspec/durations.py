"""Durations as the DAG file, the flags and the output write them: ``90s``, ``1h30m``."""

from __future__ import annotations

import re


def format_duration(seconds: float) -> str:
    """``45s``, ``12m05s``, ``1h02m``: short, and exact enough to compare at a glance."""
    total = max(int(seconds), 0)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{total % 3600 // 60:02d}m"


_DURATION = re.compile(r"(?=\d)(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")


def parse_duration(text: str) -> float | None:
    """``90s``, ``45m``, ``2h``, ``1h30m`` in seconds; None when not a duration."""
    match = _DURATION.match(text.strip())
    if match is None:
        return None
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


EXAMPLES = "90s, 45m, 2h or 1h30m"
FORM = "whole numbers, each with its unit h, m or s, in that order, with no spaces"
_ZERO = f"a duration of zero: give one above 0, like {EXAMPLES}"


def duration_problem(text: str) -> str | None:
    """Why ``text`` is no duration above 0, said after ``'TEXT' is``, with the forms that
    are; None when it is one. Every duration a user gives (``--timeout``,
    ``--stall-timeout``, the DAG file's, ``$DAGSPEC_SIGNING_WAIT``) is told the same."""
    given = text.strip()
    seconds = parse_duration(given)
    if seconds is not None:
        return None if seconds > 0 else _ZERO
    if given.isascii() and given.isdigit():
        if int(given) == 0:
            return _ZERO
        return f"a number without its unit: write it like {int(given)}s, 5m or 1h30m"
    meant = _meant(given)
    hint = f" (did you mean {meant}?)" if meant else ""
    return f"not a duration: write it like {EXAMPLES}: {FORM}{hint}"


def _meant(given: str) -> str | None:
    """The duration ``given`` was likely meant to be: its units in lowercase, its spaces
    dropped, days as hours; None when none is plain."""
    plain = "".join(given.split()).lower()
    if (days := re.fullmatch(r"(\d+)d", plain)) is not None:
        return f"{int(days[1]) * 24}h" if int(days[1]) else None
    if plain != given and parse_duration(plain):
        return plain
    return None
