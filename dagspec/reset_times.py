"""Reading the reset time a usage-limit message states (``dagspec.limits``, whose one table
``PATTERNS`` says which reader reads which message): a clock time (``resets 3pm``), a date
and a time (Claude's weekly ``resets Dec 5, 5pm``), a span from now, an epoch. Each reader
takes the pattern's match and ``now`` (aware) and gives the reset in UTC, or None when the
message cannot be read (then the pattern's back-off is waited).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

RESET_MARGIN = 30.0  # seconds after a stated reset, for clocks that differ a little
JUST_PASSED = timedelta(hours=1)  # a clock reset this recent is the one just passed

_CLOCK = re.compile(r"(\d{1,2})(?::(\d{2}))?\s*([ap]m)", re.IGNORECASE)
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*(day|hour|minute|min|second|sec|s\b|m\b|h\b|d\b)")
_SPAN_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _zone(name: str | None) -> tzinfo | None:
    """The named IANA zone; None (the machine's local time) when unnamed or unknown."""
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def next_clock(match: re.Match[str], now: datetime) -> datetime | None:
    """``resets 3pm`` / ``12:50am (Europe/Paris)``: the next such time after ``now``, or
    one up to ``JUST_PASSED`` before it (the message was printed a little before the agent
    exited and it was read: the limit has reset, not tomorrow's)."""
    clock = _CLOCK.search(match["when"])
    if clock is None:
        return None
    hour = int(clock[1]) % 12 + (12 if clock[3].lower() == "pm" else 0)
    local = now.astimezone(_zone(match["tz"]))
    reset = local.replace(hour=hour, minute=int(clock[2] or 0), second=0, microsecond=0)
    if reset <= local - JUST_PASSED:
        reset += timedelta(days=1)
    return reset.astimezone(UTC)


_MONTH_NAMES: tuple[str, ...] = ("january", "february", "march", "april", "may", "june")
_MONTH_NAMES += ("july", "august", "september", "october", "november", "december")


def _month(word: str) -> int | None:
    """``Dec``, ``Dec.``, ``Sept``, ``December`` -> 12; None for a word no month starts."""
    word = word.lower().rstrip(".")
    for number, name in enumerate(_MONTH_NAMES, 1):
        if len(word) >= 3 and name.startswith(word):
            return number
    return None


def dated_clock(match: re.Match[str], now: datetime) -> datetime | None:
    """``resets Dec 5, 5pm`` / ``Jul 27 at 4:30am (Asia/Calcutta)``: that day and time, in
    the year that puts it after ``now`` (a date already past is next year's: ``Jan 2`` read
    on Dec 30). An unknown month or day is unreadable (None: the back-off)."""
    month, clock = _month(match["month"]), _CLOCK.search(match["when"])
    if month is None or clock is None:
        return None
    hour = int(clock[1]) % 12 + (12 if clock[3].lower() == "pm" else 0)
    zone = _zone(match["tz"])
    year = now.astimezone(zone).year
    for candidate in (year, year + 1):
        local = datetime(candidate, month, int(match["day"]), hour, int(clock[2] or 0))
        reset = local.replace(tzinfo=zone) if zone is not None else local.astimezone()
        if reset > now:
            return reset.astimezone(UTC)
    return None


def epoch(match: re.Match[str], now: datetime) -> datetime | None:
    return datetime.fromtimestamp(int(match["epoch"]), UTC)


def after_span(match: re.Match[str], now: datetime) -> datetime | None:
    """``try again in 5 days 22 hours 11 minutes``, ``retry in 40.5s``, ``"resets_in_seconds":
    602705``."""
    seconds = sum(
        float(amount) * _SPAN_SECONDS[unit[0]] for amount, unit in _SPAN.findall(match["span"])
    )
    return now + timedelta(seconds=seconds) if seconds else None


def in_seconds(match: re.Match[str], now: datetime) -> datetime | None:
    return now + timedelta(seconds=int(match["span"]))


def span_margin(match: re.Match[str]) -> float:
    """The precision of a span (``in 5 days 22 hours 11 minutes``: a minute), at most
    ``RESET_MARGIN``; a second for one in plain seconds."""
    units = [_SPAN_SECONDS[unit[0]] for _, unit in _SPAN.findall(match["span"])]
    return min(min(units, default=1), RESET_MARGIN)


def date_time(match: re.Match[str], now: datetime) -> datetime | None:
    """``try again at Jul 5th, 2026 8:19 PM``, in the machine's local time."""
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", match["when"].strip().rstrip("."))
    try:
        local = datetime.strptime(text, "%b %d, %Y %I:%M %p")
    except ValueError:
        return None
    return local.astimezone().astimezone(UTC)
