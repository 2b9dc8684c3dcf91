"""What a command loads before it does its work (issue 16): every module costs each start.

A run loads what starts its first agent; what only a failure, a merge or a report needs is
loaded when it is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# What ``dag run`` imports to reach its first agent (``driving.execute`` and ``cli``'s).
RUN_MODULES = (
    "dagspec.cli",
    "dagspec.commands.run",
    "dagspec.driving",
    "dagspec.scheduler",
    "dagspec.spec_attempt",
    "dagspec.attempt",
    "dagspec.progress",
    "dagspec.notify",
)


@pytest.mark.parametrize(
    "later",
    [
        "dagspec.limits",  # a failed agent's usage limit: 16 regular expressions, time zones
        "zoneinfo",
        "dagspec.merge",  # the run's end
        "dagspec.merge_report",
        "dagspec.report",
    ],
)
def test_a_run_reaches_its_first_agent_without(later: str) -> None:
    code = f"import sys\nimport {', '.join(RUN_MODULES)}\nprint({later!r} in sys.modules)\n"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "False\n"
