"""The usage/rate-limit table: one test per pattern, on a real message of its agent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from dagspec.limits import MAX_BACKOFF, PATTERNS, QUOTA_BACKOFF, RATE_BACKOFF, parse_limit

NOW = datetime(2026, 7, 4, 13, 30, tzinfo=UTC)  # 08:30 in Chicago, 06:30 in Los Angeles

# Each pattern's expected reading of its own example at NOW (the machine's zone is UTC):
# a reset time, or None and the back-off.
EXPECTED: dict[str, datetime | float] = {
    "usage limit with epoch": datetime.fromtimestamp(1766502000, UTC),
    "usage limit, will reset at": datetime(2026, 7, 4, 14, 0, tzinfo=UTC),  # 9am CDT
    "hit your limit, resets on a date": datetime(2026, 7, 26, 23, 0, tzinfo=UTC),  # 4:30 IST
    "N-hour limit reached, resets on a date": datetime(2026, 7, 9, 10, 0, tzinfo=UTC),
    "limit, resets at an unreadable time": QUOTA_BACKOFF,
    "hit your limit, resets": datetime(2026, 7, 5, 7, 50, tzinfo=UTC),  # 12:50am PDT, next day
    "N-hour limit reached, resets": datetime(2026, 7, 4, 15, 0, tzinfo=UTC),
    "API rate_limit_error": RATE_BACKOFF,
    "usage limit, try again in": NOW + timedelta(days=5, hours=22, minutes=11),
    "usage limit, try again at": datetime(2026, 7, 5, 20, 19, tzinfo=UTC),
    "usage_limit_reached with resets_in_seconds": NOW + timedelta(seconds=602705),
    "usage limit without a time": QUOTA_BACKOFF,
    "429 retries exhausted": RATE_BACKOFF,
    "quota with retry delay": NOW + timedelta(seconds=40.5),
    "quota exceeded": QUOTA_BACKOFF,
    "resource exhausted": RATE_BACKOFF,
}


# The day a pattern's example was seen, where NOW is too far from the date it states.
SEEN = {"hit your limit, resets on a date": datetime(2026, 7, 24, 9, 0, tzinfo=UTC)}


@pytest.fixture(autouse=True)
def _machine_in_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_every_pattern_has_an_expected_reading() -> None:
    assert sorted(p.name for p in PATTERNS) == sorted(EXPECTED)


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: f"{p.agent}: {p.name}")
def test_each_pattern_reads_its_agents_real_message(pattern: object) -> None:
    from dagspec.limits import LimitPattern

    assert isinstance(pattern, LimitPattern)
    hit = parse_limit(pattern.example, now=SEEN.get(pattern.name, NOW))
    assert hit is not None
    assert (hit.agent, hit.pattern) == (pattern.agent, pattern.name)
    expected = EXPECTED[pattern.name]
    if isinstance(expected, datetime):
        assert hit.reset_at == expected
    else:
        assert (hit.reset_at, hit.backoff) == (None, expected)


@pytest.mark.parametrize(
    "line",
    [
        "[Stage 4/4] implement...",
        "T003: add per-user rate limiting to the API",
        "Implement usage limit checks (see docs/limits.md)",
        "Phase 2 complete (4/4 tasks completed)",
        "",
    ],
)
def test_ordinary_output_is_not_a_limit(line: str) -> None:
    assert parse_limit(line, now=NOW) is None


def test_ansi_free_text_with_a_curly_apostrophe_matches() -> None:
    hit = parse_limit("You’ve hit your limit · resets 4:50am (Europe/Rome)", now=NOW)
    assert hit is not None
    assert hit.reset_at == datetime(2026, 7, 5, 2, 50, tzinfo=UTC)  # 4:50 CEST, next day


def test_an_unknown_zone_falls_back_to_the_machines() -> None:
    hit = parse_limit("You've hit your limit · resets 3pm (Mars/Olympus)", now=NOW)
    assert hit is not None
    assert hit.reset_at == datetime(2026, 7, 4, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("You've hit your limit · resets 1:30pm (UTC)", datetime(2026, 7, 4, 13, 30, tzinfo=UTC)),
        ("You've hit your limit · resets 1pm (UTC)", datetime(2026, 7, 4, 13, 0, tzinfo=UTC)),
        ("You've hit your limit · resets 12:29pm (UTC)", datetime(2026, 7, 5, 12, 29, tzinfo=UTC)),
    ],
)
def test_a_clock_reset_just_passed_is_not_tomorrow_s(line: str, expected: datetime) -> None:
    """Read when the agent exits, a minute or more after it printed: a reset within the
    hour before now has happened (the wait is the margin), not one a day away."""
    hit = parse_limit(line, now=NOW)
    assert hit is not None and hit.reset_at == expected
    if expected <= NOW:  # it has reset: the wait is the margin, not a day
        assert hit.wait_seconds(NOW) == 30


def test_wait_is_until_the_reset_plus_a_margin_never_negative() -> None:
    hit = parse_limit("Claude AI usage limit reached|1783172400", now=NOW)  # 2026-07-04 13:40Z
    assert hit is not None
    assert hit.wait_seconds(NOW) == 600 + 30
    assert hit.wait_seconds(NOW + timedelta(hours=1)) == 30


def test_back_off_doubles_with_each_repeat_up_to_an_hour() -> None:
    hit = parse_limit("API Error: 429 rate_limit_error", now=NOW)
    assert hit is not None
    waits = [hit.wait_seconds(NOW, repeat=n) for n in range(8)]
    assert waits[:3] == [RATE_BACKOFF, 2 * RATE_BACKOFF, 4 * RATE_BACKOFF]
    assert waits[-1] == MAX_BACKOFF


@pytest.mark.parametrize(
    ("line", "margin"),
    [
        ("You exceeded your current quota. Please retry in 40.5s.", 1.0),
        ('"usage_limit_reached","resets_in_seconds": 600', 1.0),
        ("You've hit your usage limit. Try again in 2 hours 11 minutes.", 30.0),
        ("Claude AI usage limit reached|1783172400", 30.0),
    ],
)
def test_a_span_from_now_needs_only_its_own_precision_as_margin(line: str, margin: float) -> None:
    hit = parse_limit(line, now=NOW)
    assert hit is not None and hit.reset_at is not None
    assert hit.wait_seconds(NOW) == (hit.reset_at - NOW).total_seconds() + margin


@pytest.mark.parametrize(
    "line",
    [
        "Claude AI usage limit reached|99999999999",  # the year 5138: misread, or a typo
        "Claude AI usage limit reached|1766502000123",  # milliseconds: out of range
    ],
)
def test_a_reset_no_agent_would_state_falls_back_to_the_back_off(line: str) -> None:
    hit = parse_limit(line, now=NOW)
    assert hit is not None and hit.reset_at is None and hit.wait_seconds(NOW) == hit.backoff


@pytest.mark.parametrize(
    ("line", "now", "expected"),
    [
        # Claude's weekly limits state a date: the date is kept, not read as today
        ("You've hit your weekly limit · resets Jul 9, 5pm", NOW, datetime(2026, 7, 9, 17)),
        ("You've hit your weekly limit · resets Jul 9 at 5pm", NOW, datetime(2026, 7, 9, 17)),
        (
            "You've hit your weekly limit · resets July 9, 5:30pm (Europe/Paris)",
            NOW,
            datetime(2026, 7, 9, 15, 30),  # CEST is UTC+2
        ),
        ("Weekly limit reached ∙ resets Jul 5th, 9am", NOW, datetime(2026, 7, 5, 9)),
        (
            "Opus weekly limit reached · resets Sept 1, 12am",
            datetime(2026, 8, 28, tzinfo=UTC),
            datetime(2026, 9, 1, 0),
        ),
        # a date already past this year is next year's: "Jan 2" read on Dec 30
        (
            "You've hit your weekly limit · resets Jan 2, 5pm",
            datetime(2026, 12, 30, 9, tzinfo=UTC),
            datetime(2027, 1, 2, 17),
        ),
        (
            "You've hit your weekly limit · resets Dec 31 at 11pm (America/New_York)",
            datetime(2026, 12, 30, 9, tzinfo=UTC),
            datetime(2027, 1, 1, 4),  # EST is UTC-5
        ),
    ],
)
def test_a_reset_with_a_date_is_that_day(line: str, now: datetime, expected: datetime) -> None:
    hit = parse_limit(line, now=now)
    assert hit is not None
    assert hit.reset_at == expected.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "line",
    [
        "You've hit your weekly limit · resets Dec 5, 5pm",  # 5 months off: misread
        "You've hit your weekly limit · resets Jul 3, 5pm",  # yesterday: next year's
        "You've hit your weekly limit · resets Feb 30, 5pm",  # no such day
        "You've hit your weekly limit · resets Smarch 5, 5pm",  # no such month
        "You've hit your weekly limit · resets tomorrow",
    ],
)
def test_a_dated_reset_past_the_cap_or_unreadable_is_the_back_off(line: str) -> None:
    hit = parse_limit(line, now=NOW)
    assert hit is not None and hit.pattern.startswith(("hit your", "limit,"))
    assert (hit.reset_at, hit.wait_seconds(NOW)) == (None, QUOTA_BACKOFF)


def test_only_the_table_reads_resets() -> None:
    """The table is the one place: every reading goes through a pattern of it."""
    from dagspec import reset_times

    readers = {p.reset for p in PATTERNS if p.reset is not None}
    assert readers <= {v for v in vars(reset_times).values() if callable(v)}
    assert {r.__name__ for r in readers} >= {"dated_clock", "next_clock"}


def test_a_reason_shows_the_message_without_its_frame_or_epoch() -> None:
    hit = parse_limit("│ Claude AI usage limit reached|1796064819", now=NOW)
    assert hit is not None and hit.message == "Claude AI usage limit reached"
    hit = parse_limit("  You've hit your limit · resets 3pm (UTC)  ", now=NOW)
    assert hit is not None and hit.message == "You've hit your limit · resets 3pm (UTC)"
