"""Process groups of agents: who is still in one, and signalling it (Linux ``/proc``).

Each agent runs in its own session, so its process group holds it and every child it
started; signalling the group reaches them all.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

_STAT = re.compile(rb"\) (\S) (-?\d+) (-?\d+)")


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15; ``signal 40`` for a number Python has no name for (the real-time
    signals but the first and the last), where ``signal.Signals`` raises ``ValueError``.

    >>> signal_name(15), signal_name(40)
    ('SIGTERM', 'signal 40')
    """
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def signal_group(pgid: int, signum: int) -> None:
    """Send ``signum`` to every process of group ``pgid``; nothing if the group is gone, and
    never to dagspec's own group (an agent always has a group of its own)."""
    if pgid <= 1 or pgid == os.getpgrp():
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def members(pgid: int, *, marker: str | None = None) -> list[int]:
    """The live (not zombie) processes of group ``pgid``.

    With ``marker`` (``NAME=value``), only those whose environment holds it: after a driver
    was killed, a group id recorded in the state may since have been reused by a stranger.
    Without ``/proc``, a group that exists counts as its leader alone.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return []  # gone, or someone else's: never ours to signal
    pids = _pids()
    if pids is None:
        return [pgid]
    found = [pid for pid in pids if _live_group_of(pid) == pgid]
    if marker is not None:
        found = [pid for pid in found if _environ_has(pid, marker)]
    return found


def groups_by_variable(name: str) -> dict[str, set[int]]:
    """For each value of environment variable ``name`` among live processes, their groups:
    finds an agent that outlived a killed driver even if its pid was never recorded. One
    pass over ``/proc``."""
    found: dict[str, set[int]] = {}
    prefix = f"{name}=".encode()
    for pid in _pids() or []:
        group = _live_group_of(pid)
        value = _environ_value(pid, prefix) if group is not None else None
        if group is not None and value is not None:
            found.setdefault(value, set()).add(group)
    return found


def _pids() -> list[int] | None:
    try:
        return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    except FileNotFoundError:
        return None


def _live_group_of(pid: int) -> int | None:
    """The group of ``pid`` from ``/proc/<pid>/stat``; None for a zombie or a vanished pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # After the command name, which may hold spaces and parentheses: state, ppid, pgrp.
    match = _STAT.match(stat, stat.rfind(b")"))
    return None if match is None or match[1] == b"Z" else int(match[3])


def _environ_value(pid: int, prefix: bytes) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    entry = next((e for e in environ.split(b"\0") if e.startswith(prefix)), None)
    return None if entry is None else entry[len(prefix) :].decode(errors="replace")


def _environ_has(pid: int, marker: str) -> bool:
    try:
        return marker.encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
