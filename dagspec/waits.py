"""Waiting specs, and ending a wait early (issue 17).

A spec ``waiting`` for a usage limit's reset holds no slot: the drive sleeps until its
``waiting_until`` (``Waits.sleep``). ``dag retry RUN SPEC`` of a waiting spec starts it
now. When no driver holds the run, ``retry`` drives it itself, as for a failed spec. When a
live driver holds it, the state file stays the driver's alone: ``retry`` leaves a request,
one empty file ``<run>/wake/<spec-id>``, then nudges the driver with SIGURG (``request``).
The driver takes the requests (``Waits.take``) when the signal comes and whenever a wait
begins, so a request made while it was starting up, or a signal lost, is still seen.

SIGURG because its default action is to be ignored: a process that is not (or not yet)
listening for it, such as a driver still starting or a stranger that took the pid, is not
harmed. It is sent only to the process that holds the run's lock, as Linux's
``/proc/locks`` shows it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import trio

from dagspec.workspace import RunPaths

WAKE_SIGNAL = signal.SIGURG


def wake_dir(paths: RunPaths) -> Path:
    """Where the requests to end a wait early are: one empty file per spec id."""
    return paths.run_dir / "wake"


class Waits:
    """The waits of one drive: a cancel scope per waiting spec, ended by a request."""

    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths
        self.scopes: dict[str, trio.CancelScope] = {}
        self.early: set[str] = set()  # woken by a request, not by the clock

    async def sleep(self, spec_id: str, until: datetime, now: datetime) -> bool:
        """Sleep until ``until`` (``now``: the current time), or until a request for this
        spec; True when a request ended it."""
        scope = trio.CancelScope()
        self.scopes[spec_id] = scope
        try:
            self.take()  # one made before this wait began
            with scope:
                await trio.sleep(max((until - now).total_seconds(), 0.0))
        finally:
            self.scopes.pop(spec_id, None)
        if spec_id in self.early:
            self.early.discard(spec_id)
            return True
        return False

    def take(self) -> None:
        """End the wait of each spec a request names, and remove the requests (those for a
        spec not waiting now too: a request is for the wait it was made in)."""
        for spec_id in requested(self.paths):
            with contextlib.suppress(OSError):
                (wake_dir(self.paths) / spec_id).unlink()
            if (scope := self.scopes.get(spec_id)) is not None:
                self.early.add(spec_id)
                scope.cancel()

    async def listen(self) -> None:
        """Take the requests each time ``retry`` signals (run in the drive's nursery)."""
        with trio.open_signal_receiver(WAKE_SIGNAL) as signals:
            async for _ in signals:
                self.take()


def requested(paths: RunPaths) -> list[str]:
    """The spec ids with a request to end their wait now."""
    try:
        return sorted(entry.name for entry in os.scandir(wake_dir(paths)) if entry.is_file())
    except OSError:
        return []


def request(paths: RunPaths, spec_ids: Iterable[str], driver: int) -> None:
    """Ask the live ``driver`` (the pid holding the run's lock) to start ``spec_ids`` now:
    a request file each, then the signal. Raises ``OSError`` when a file cannot be made."""
    directory = wake_dir(paths)
    directory.mkdir(exist_ok=True)
    for spec_id in spec_ids:
        (directory / spec_id).touch()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(driver, WAKE_SIGNAL)


def withdraw(paths: RunPaths, spec_ids: Iterable[str]) -> None:
    """Remove the requests for ``spec_ids`` (their driver ended before taking them)."""
    for spec_id in spec_ids:
        with contextlib.suppress(OSError):
            (wake_dir(paths) / spec_id).unlink()


def lock_holder(paths: RunPaths) -> int | None:
    """The pid holding the ``flock`` on the run's directory (``state.run_lock``), from
    ``/proc/locks`` (``FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> ...``); None when
    nobody holds it or this system has no ``/proc/locks``."""
    try:
        info = paths.run_dir.stat()
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[3] != "WRITE":
            continue
        _, _, inode = fields[5].rpartition(":")
        major, _, minor = fields[5].rpartition(":")[0].partition(":")
        with contextlib.suppress(ValueError):
            device = os.makedev(int(major, 16), int(minor, 16))
            if int(inode) == info.st_ino and device == info.st_dev and fields[4].isdigit():
                return int(fields[4])
    return None
