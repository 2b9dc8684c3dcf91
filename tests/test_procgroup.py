"""Finding processes by a variable of their environment and by their process group, in
``/proc``, with real processes (``dagspec.procgroup``)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from dagspec import procgroup

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# The variable is first, in the middle or last of the environment; a longer name ending
# in it, and a value holding "=", must not confuse the reading.
ENVIRONMENTS = [
    {"DAGSPEC_TEST_MARK": "first", "A": "1"},
    {"A": "1", "XDAGSPEC_TEST_MARK": "decoy", "DAGSPEC_TEST_MARK": "middle=x", "B": "2"},
    {"A": "1", "DAGSPEC_TEST_MARK": "last"},
    {"XDAGSPEC_TEST_MARK": "decoy only"},
]


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """One process per environment of ``ENVIRONMENTS``, each in a session of its own,
    waiting on its stdin (no clock involved): ended when the test ends."""
    started = [
        subprocess.Popen(
            ["cat"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        for env in ENVIRONMENTS
    ]
    yield started
    for process in started:
        assert process.stdin is not None
        process.stdin.close()
        process.wait()


def test_groups_by_variable_reads_the_value_wherever_it_stands(
    sleepers: list[subprocess.Popen[bytes]],
) -> None:
    found = procgroup.groups_by_variable("DAGSPEC_TEST_MARK")
    assert found == {
        "first": {sleepers[0].pid},
        "middle=x": {sleepers[1].pid},
        "last": {sleepers[2].pid},
    }


def test_members_finds_a_group_by_its_marker_only(
    sleepers: list[subprocess.Popen[bytes]],
) -> None:
    pid = sleepers[1].pid
    assert procgroup.members(pid) == [pid]
    assert procgroup.members(pid, marker="DAGSPEC_TEST_MARK=middle=x") == [pid]
    assert procgroup.members(pid, marker="DAGSPEC_TEST_MARK=middle") == []
    assert procgroup.members(sleepers[3].pid, marker="DAGSPEC_TEST_MARK=decoy only") == []


def test_a_group_that_is_gone_has_no_members(sleepers: list[subprocess.Popen[bytes]]) -> None:
    process = sleepers[0]
    assert process.stdin is not None
    process.stdin.close()
    process.wait()
    assert procgroup.members(process.pid) == []
    assert "first" not in procgroup.groups_by_variable("DAGSPEC_TEST_MARK")
