"""Process groups of agents: who is still in one, and signalling it (Linux ``/proc``).

Each agent runs in its own session, so its process group holds it and every child it
started; signalling the group reaches them all.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal

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
        return [int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit()]
    except FileNotFoundError:
        return None


def _read(path: str) -> bytes | None:
    """The whole of a ``/proc`` file, None when it cannot be read (the process is gone, or
    not ours). Plain ``os`` calls: a scan reads two files of every process on the machine,
    once per agent's end (``groups_by_variable``), beside the next agent's start."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks)


def _live_group_of(pid: int) -> int | None:
    """The group of ``pid`` from ``/proc/<pid>/stat``; None for a zombie or a vanished pid."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # After the command name, which may hold spaces and parentheses: state, ppid, pgrp.
    match = _STAT.match(stat, stat.rfind(b")"))
    return None if match is None or match[1] == b"Z" else int(match[3])


def _environ_value(pid: int, prefix: bytes) -> str | None:
    """The value of the variable ``prefix`` (``NAME=``) names in ``pid``'s environment."""
    environ = _read(f"/proc/{pid}/environ")
    if environ is None:
        return None
    if environ.startswith(prefix):
        start = len(prefix)
    elif (at := environ.find(b"\0" + prefix)) >= 0:
        start = at + 1 + len(prefix)
    else:
        return None
    end = environ.find(b"\0", start)
    return environ[start : end if end >= 0 else None].decode(errors="replace")


def _environ_has(pid: int, marker: str) -> bool:
    environ = _read(f"/proc/{pid}/environ")
    return environ is not None and marker.encode() in environ.split(b"\0")
