"""The stand-in autospec produces, on demand, what an unattended run must cope with (issue
17): an agent that goes silent, an agent that hits a usage limit, and Claude's cost and
token lines. The limit messages are read back with dagspec's own table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dagspec.limits import parse_limit
from tests.fake_autospec_fixture import FakeAutospec
from tests.test_fake_autospec import DESCRIPTION, autospec, project  # noqa: F401

pytestmark = pytest.mark.slow


def test_a_silent_agent_hangs_for_the_seconds_asked_then_goes_on(
    project: Path,  # noqa: F811
    fake_autospec: FakeAutospec,
) -> None:
    fake_autospec.setenv("HANG_AT", "plan")
    fake_autospec.setenv("HANG_SECONDS", "0.3")
    result = autospec("run", "-spti", "-y", DESCRIPTION, cwd=project)
    assert result.code == 0
    hang, release = fake_autospec.events("hang")[0], fake_autospec.events("release")[0]
    assert (hang["at"], release["at"]) == ("plan", "plan")
    assert release["ts"] - hang["ts"] >= 0.3


@pytest.mark.parametrize(
    ("agent", "wait"),
    [("claude", 120), ("codex", 120), ("gemini", 120)],
)
def test_a_limit_message_then_exit_1(
    project: Path,  # noqa: F811
    fake_autospec: FakeAutospec,
    agent: str,
    wait: int,
) -> None:
    fake_autospec.setenv("FAIL_AT", "plan")
    fake_autospec.setenv("FAIL_KIND", "limit")
    fake_autospec.setenv("LIMIT_AGENT", agent)
    fake_autospec.setenv("LIMIT_RESET", wait)
    before = datetime.now(UTC)
    result = autospec("run", "-spti", "-y", DESCRIPTION, cwd=project)
    assert result.code == 1
    assert result.err.startswith("Error: executing stage plan: plan stage failed: ")
    hits = [hit for line in result.out.splitlines() if (hit := parse_limit(line, now=before))]
    assert [hit.agent for hit in hits] == [agent]
    assert hits[0].reset_at is not None
    expected = before + timedelta(seconds=wait)
    assert abs((hits[0].reset_at - expected).total_seconds()) < 5


def test_claude_sessions_end_with_cost_and_tokens(
    project: Path,  # noqa: F811
    fake_autospec: FakeAutospec,
) -> None:
    fake_autospec.setenv("TOKENS", True)
    fake_autospec.setenv("COST", "0.5")
    fake_autospec.setenv("TOKENS_IN", 42)
    result = autospec("run", "-spti", "-y", DESCRIPTION, cwd=project)
    assert result.code == 0
    lines = result.out.splitlines()
    sessions = 3 + 3  # specify, plan, tasks, and one per implement phase
    assert lines.count("│ Cost: $0.5000") == sessions
    assert lines.count("│ Tokens: in=42 out=200") == sessions


def test_codex_sessions_print_no_cost(
    project: Path,  # noqa: F811
    fake_autospec: FakeAutospec,
) -> None:
    fake_autospec.setenv("TOKENS", True)
    result = autospec("run", "-spti", "-y", "--agent", "codex", DESCRIPTION, cwd=project)
    assert result.code == 0, result.err
    assert "Cost:" not in result.out and "Tokens:" not in result.out
