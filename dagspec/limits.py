"""Usage and rate limits: recognising an agent's "limit reached" message and when to retry.

Seven agents at once hit a provider's limit together; waiting for the reset saves the run
(issue 17). autospec passes its agent's output through, so a limit shows up as a line of
the spec's log. ``PATTERNS`` is the one table of the messages of the agents autospec drives
(Claude Code, Codex CLI, Gemini CLI), each with a real example from the agent's issue
tracker; ``parse_limit`` gives the first pattern a line matches as a ``LimitHit``.

Agents also print these words in ordinary work (code about rate limits, a quoted error), so
a hit means something only when the attempt then fails: the scheduler keeps the last hit of
an attempt and consults it when the agent exits non-zero.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs

from dagspec import reset_times
from dagspec.reset_times import RESET_MARGIN

RATE_BACKOFF = 60.0  # seconds: a per-minute rate limit without a stated reset
QUOTA_BACKOFF = 15 * 60.0  # seconds: a usage quota without a stated reset
MAX_BACKOFF = 3600.0  # seconds: back-off doubles on each repeat, up to this
FARTHEST = timedelta(days=8)  # a stated reset further away is misread: the back-off instead
# A reset stated as a span from now ("retry in 40.5s") is read on this machine's clock, so
# the margin is only the message's precision: its smallest unit, at most RESET_MARGIN.
# Words every pattern's message has (tested): the agent's door passes the lines that have
# one to ``parse_limit``, without decoding the megabytes an agent can print.


@attrs.frozen
class LimitHit:
    """An agent hit a limit. ``reset_at`` (UTC) when the message says when it resets (then
    ``margin`` seconds more are waited), else ``backoff`` seconds to wait."""

    agent: str
    pattern: str
    message: str
    reset_at: datetime | None = None
    backoff: float = QUOTA_BACKOFF
    margin: float = RESET_MARGIN

    def wait_seconds(self, now: datetime, *, repeat: int = 0) -> float:
        """Seconds to wait from ``now``: until the reset (plus a margin), else the back-off,
        doubled for each earlier hit of the same spec (``repeat``), at most ``MAX_BACKOFF``.
        """
        if self.reset_at is not None:
            return max((self.reset_at - now).total_seconds(), 0.0) + self.margin
        return min(self.backoff * 2.0**repeat, MAX_BACKOFF)


Reset = Callable[[re.Match[str], datetime], datetime | None]


@attrs.frozen
class LimitPattern:
    """One agent message: its regex, how to read the reset from a match, the back-off when
    it states none, and a real example (each is tested)."""

    agent: str
    name: str
    regex: re.Pattern[str]
    reset: Reset | None
    backoff: float
    example: str


def _p(
    agent: str, name: str, regex: str, reset: Reset | None, backoff: float, example: str
) -> LimitPattern:
    return LimitPattern(agent, name, re.compile(regex, re.IGNORECASE), reset, backoff, example)


_TZ = r"(?:\s*\((?P<tz>[A-Za-z_]+(?:/[A-Za-z_+-]+)*)\))?"
_CLOCK_TEXT = r"(?P<when>\d{1,2}(?::\d{2})?\s*[ap]m)"
# ``Dec 5, 5pm``, ``Sep 15 at 7pm``, ``December 5th, 5:30pm``: Claude's weekly limits
_DATE_TEXT = r"(?P<month>[A-Za-z]{3,9}\.?) (?P<day>\d{1,2})(?:st|nd|rd|th)?,?(?: at)? "
_HIT = r"You['’]ve hit your (?:\w+ )?limit\s*[·∙•-]\s*resets "
_REACHED = r"(?:\d+-hour|weekly|opus|session) limit reached\s*[·∙•-]\s*resets "

PATTERNS: tuple[LimitPattern, ...] = (
    _p(
        "claude",
        "usage limit with epoch",
        r"Claude AI usage limit reached\|(?P<epoch>\d{9,11})",
        reset_times.epoch,
        QUOTA_BACKOFF,
        "Claude AI usage limit reached|1766502000",
    ),
    _p(
        "claude",
        "usage limit, will reset at",
        r"Claude usage limit reached\. Your limit will reset at (?P<when>[\d:]+\s*[ap]m)" + _TZ,
        reset_times.next_clock,
        QUOTA_BACKOFF,
        "Claude usage limit reached. Your limit will reset at 9am (America/Chicago).",
    ),
    _p(
        "claude",
        "hit your limit, resets on a date",
        _HIT + _DATE_TEXT + _CLOCK_TEXT + _TZ,
        reset_times.dated_clock,
        QUOTA_BACKOFF,
        "You've hit your weekly limit · resets Jul 27 at 4:30am (Asia/Calcutta)",
    ),
    _p(
        "claude",
        "hit your limit, resets",
        _HIT + _CLOCK_TEXT + _TZ,
        reset_times.next_clock,
        QUOTA_BACKOFF,
        "You've hit your session limit · resets 12:50am (America/Los_Angeles)",
    ),
    _p(
        "claude",
        "N-hour limit reached, resets on a date",
        _REACHED + _DATE_TEXT + _CLOCK_TEXT + _TZ,
        reset_times.dated_clock,
        QUOTA_BACKOFF,
        "Weekly limit reached ∙ resets Jul 9, 10am",
    ),
    _p(
        "claude",
        "N-hour limit reached, resets",
        _REACHED + _CLOCK_TEXT + _TZ,
        reset_times.next_clock,
        QUOTA_BACKOFF,
        "5-hour limit reached ∙ resets 3pm",
    ),
    _p(  # a date or time this dagspec cannot read: never read as a time today
        "claude",
        "limit, resets at an unreadable time",
        r"(?:You['’]ve hit your (?:\w+ )?limit|(?:\d+-hour|weekly|opus|session) limit "
        r"reached)\s*[·∙•-]\s*resets\b",
        None,
        QUOTA_BACKOFF,
        "You've hit your weekly limit · resets 5 déc. à 17h",
    ),
    _p(
        "claude",
        "API rate_limit_error",
        r"\brate_limit_error\b|API Error: 429\b",
        None,
        RATE_BACKOFF,
        'API Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"This '
        "request would exceed your account's rate limit. Please try again later.\"}}",
    ),
    _p(
        "codex",
        "usage limit, try again in",
        r"You['’]ve hit your usage limit\..*try again in (?P<span>[\d\w ,]+)",
        reset_times.after_span,
        QUOTA_BACKOFF,
        "■ You've hit your usage limit. Upgrade to Pro (https://openai.com/chatgpt/pricing) "
        "or try again in 5 days 22 hours 11 minutes.",
    ),
    _p(
        "codex",
        "usage limit, try again at",
        r"You['’]ve hit your usage limit\..*try again at (?P<when>\w{3} \d+\w*, \d{4} "
        r"\d+:\d{2} [AP]M)",
        reset_times.date_time,
        QUOTA_BACKOFF,
        "You've hit your usage limit. Upgrade to Plus to continue using Codex "
        "(https://chatgpt.com/explore/plus), or try again at Jul 5th, 2026 8:19 PM.",
    ),
    _p(
        "codex",
        "usage_limit_reached with resets_in_seconds",
        r'"usage_limit_reached".*"resets_in_seconds":\s*(?P<span>\d+)',
        reset_times.in_seconds,
        QUOTA_BACKOFF,
        '{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached",'
        '"plan_type":"free","resets_at":1775317531,"resets_in_seconds":602705}}',
    ),
    _p(
        "codex",
        "usage limit without a time",
        r"You['’]ve hit your usage limit",
        None,
        QUOTA_BACKOFF,
        "You've hit your usage limit.",
    ),
    _p(
        "codex",
        "429 retries exhausted",
        r"exceeded retry limit, last status: 429\b",
        None,
        RATE_BACKOFF,
        "stream error: exceeded retry limit, last status: 429 Too Many Requests",
    ),
    _p(
        "gemini",
        "quota with retry delay",
        r"(?:quota|RESOURCE_EXHAUSTED|exhausted).*Please retry in (?P<span>\d+(?:\.\d+)?s)",
        reset_times.after_span,
        RATE_BACKOFF,
        "You exceeded your current quota, please check your plan and billing details. "
        "Please retry in 40.5s.",
    ),
    _p(
        "gemini",
        "quota exceeded",
        r"Quota exceeded for quota metric|You exceeded your current quota",
        None,
        QUOTA_BACKOFF,
        '"message": "Quota exceeded for quota metric \'Gemini 2.5 Pro Requests\' and limit '
        "'Gemini 2.5 Pro Requests per day per user per tier'",
    ),
    _p(
        "gemini",
        "resource exhausted",
        r"\bRESOURCE_EXHAUSTED\b|Resource (?:has been )?exhausted",
        None,
        RATE_BACKOFF,
        "✕ [API Error: Resource has been exhausted (e.g. check quota).]",
    ),
)


def parse_limit(line: str, *, now: datetime | None = None) -> LimitHit | None:
    """The limit ``line`` (one line of output, ANSI codes removed) reports, if any.

    ``now`` (aware; default: the current time) anchors relative resets ("in 2 hours",
    "resets 3pm"). A reset the message states but that cannot be read falls back to the
    pattern's back-off.

    >>> hit = parse_limit("You've hit your limit · resets 3pm (UTC)",
    ...                   now=datetime(2026, 1, 1, 14, 0, tzinfo=UTC))
    >>> hit.agent, hit.reset_at.isoformat()
    ('claude', '2026-01-01T15:00:00+00:00')
    """
    for pattern in PATTERNS:
        match = pattern.regex.search(line)
        if match is None:
            continue
        reset_at, margin, now = None, RESET_MARGIN, now or datetime.now(UTC)
        if pattern.reset is not None:
            with contextlib.suppress(OverflowError, ValueError, OSError):  # out of range
                reset_at = pattern.reset(match, now)
        if reset_at is not None and reset_at > now + FARTHEST:
            reset_at = None  # not a reset any agent states (weekly limits are the longest)
        if pattern.reset in (reset_times.after_span, reset_times.in_seconds):
            margin = reset_times.span_margin(match)
        hit = (pattern.agent, pattern.name, _shown(line), reset_at, pattern.backoff, margin)
        return LimitHit(*hit)
    return None


def _shown(line: str) -> str:
    """The message as a reason shows it: without a formatter's frame (``│ ``) and the epoch
    Claude appends for programs (``...reached|1796064819``; the reason says the reset)."""
    return _EPOCH_SUFFIX.sub("", line.strip().strip("│┃|").strip())


_EPOCH_SUFFIX = re.compile(r"\|\d{9,}$")


TAIL_LINES = 25  # the last lines of an attempt's log where a limit counts as its cause
_TAIL_BYTES = 16 * 1024


_ATTEMPT_HEADER = b"=== dagspec: attempt "  # agent.write_header's first words


def limit_at_end(
    log: Path, plain: Callable[[bytes], str], *, now: datetime | None = None
) -> LimitHit | None:
    """The last limit in the last ``TAIL_LINES`` lines of an attempt's log: a limit is why
    an attempt failed only when the agent ended on it. Agents quote these messages in
    ordinary work too ("implementing retry for 429 rate_limit_error"); one early in the
    log is chatter, and the attempt's failure is its own. Only the last attempt's lines
    count (after its ``=== dagspec: attempt`` header): an earlier attempt's limit is not
    why this one failed. ``plain`` strips a line's terminal codes (``autospec.plain``)."""
    try:
        with log.open("rb") as file:
            file.seek(max(file.seek(0, 2) - _TAIL_BYTES, 0))
            lines = file.read().splitlines()
    except OSError:
        return None
    starts = [i for i, line in enumerate(lines) if line.startswith(_ATTEMPT_HEADER)]
    tail = lines[starts[-1] + 1 if starts else 0 :][-TAIL_LINES:]
    hits = [hit for raw in tail if (hit := parse_limit(plain(raw), now=now)) is not None]
    return hits[-1] if hits else None
