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
