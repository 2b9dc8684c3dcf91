"""Finding processes by a variable of their environment and by their process group, in
``/proc``, with real processes (``dagspec.procgroup``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from dagspec import procgroup

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# The variable is first, in the middle or last of the environment; a longer name ending
# in it, and a value holding "=", must not confuse the reading. Each value ends with this
# process's pid: the suite may run twice at once on one machine, and a scan sees both.
MINE = f"-{os.getpid()}"
ENVIRONMENTS = [
    {"DAGSPEC_TEST_MARK": f"first{MINE}", "A": "1"},
    {"A": "1", "XDAGSPEC_TEST_MARK": "decoy", "DAGSPEC_TEST_MARK": f"middle=x{MINE}", "B": "2"},
    {"A": "1", "DAGSPEC_TEST_MARK": f"last{MINE}"},
    {"XDAGSPEC_TEST_MARK": f"decoy only{MINE}"},
]


def _mine() -> dict[str, set[int]]:
    """What a scan finds of this test's processes."""
    found = procgroup.groups_by_variable("DAGSPEC_TEST_MARK")
    return {value: groups for value, groups in found.items() if value.endswith(MINE)}


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """One process per environment of ``ENVIRONMENTS``, each in a session of its own,
    waiting on its stdin (no clock involved): ended when the test ends.

    Each is running once it has echoed a line: ``Popen`` can return while the exec is
    still under way (a vforked child lets its parent go on when it drops the old memory,
    before the kernel sets where the new environment lies), and ``/proc/<pid>/environ``
    then reads empty."""
    started = [
        subprocess.Popen(
            ["cat"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        for env in ENVIRONMENTS
    ]
    for process in started:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"ready\n")
        process.stdin.flush()
        assert process.stdout.readline() == b"ready\n"
    yield started
    for process in started:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        process.wait()
        process.stdout.close()


def test_groups_by_variable_reads_the_value_wherever_it_stands(
    sleepers: list[subprocess.Popen[bytes]],
) -> None:
    assert _mine() == {
        f"first{MINE}": {sleepers[0].pid},
        f"middle=x{MINE}": {sleepers[1].pid},
        f"last{MINE}": {sleepers[2].pid},
    }


def test_members_finds_a_group_by_its_marker_only(
    sleepers: list[subprocess.Popen[bytes]],
) -> None:
    pid = sleepers[1].pid
    assert procgroup.members(pid) == [pid]
    assert procgroup.members(pid, marker=f"DAGSPEC_TEST_MARK=middle=x{MINE}") == [pid]
    assert procgroup.members(pid, marker="DAGSPEC_TEST_MARK=middle=x") == []
    assert procgroup.members(sleepers[3].pid, marker=f"DAGSPEC_TEST_MARK=decoy only{MINE}") == []


def test_a_group_that_is_gone_has_no_members(sleepers: list[subprocess.Popen[bytes]]) -> None:
    process = sleepers[0]
    assert process.stdin is not None
    process.stdin.close()
    process.wait()
    assert procgroup.members(process.pid) == []
    assert f"first{MINE}" not in _mine()
