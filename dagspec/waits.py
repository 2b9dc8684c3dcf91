"""Waiting specs, and ending a wait early (issue 17).

A spec ``waiting`` for a usage limit's reset holds no slot: the drive sleeps until its
``waiting_until`` (``Waits.sleep``). ``dag retry RUN SPEC`` of a waiting spec starts it
now. When no driver holds the run, ``retry`` drives it itself, as for a failed spec. When a
live driver holds it, the state file stays the driver's alone: ``retry`` leaves a request,
a file ``<run>/wake/<spec-id>`` holding ``<driver pid> <retry pid>``, then nudges the driver
with SIGURG (``request``). The driver takes the requests (``Waits.take``) when the signal
comes and whenever a wait begins, so a request made while it was starting up, or a signal
lost, is still seen; ``retry`` waits for its answer (``answer``).

The driver answers only a request it acted on, by moving the file into ``wake/started/``;
one it cannot act on because it is stopping goes into ``wake/stopping/``; any other stays
for ``retry`` to withdraw. A request for another driver (one that ended before taking it)
or whose ``retry`` is gone counts for nothing: the driver removes it (``Waits.clear``).

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

from dagspec.driver_lock import pid_alive
from dagspec.workspace import RunPaths

WAKE_SIGNAL = signal.SIGURG
STARTED, STOPPING = "started", "stopping"  # the driver's answers: the directories in wake/


def wake_dir(paths: RunPaths) -> Path:
    """Where the requests to end a wait early are: one file per spec id."""
    return paths.run_dir / "wake"


class Waits:
    """The waits of one drive: a cancel scope per waiting spec, ended by a request."""

    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths
        self.scopes: dict[str, trio.CancelScope] = {}
        self.early: set[str] = set()  # woken by a request, not by the clock
        self.stopping = False  # the drive is stopping: no wait is ended early any more

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
        """End the wait of each spec a live request names, answering it ``started``; when
        stopping, answer each ``stopping`` instead. A request for a spec whose wait has not
        begun stays (its wait takes it); a stale one is removed."""
        for spec_id in self.clear():
            if self.stopping:
                _answer(self.paths, spec_id, STOPPING)
            elif (scope := self.scopes.get(spec_id)) and _answer(self.paths, spec_id, STARTED):
                self.early.add(spec_id)
                scope.cancel()

    def stop(self) -> None:
        """The drive stops: answer what is asked now, and what is asked from now on."""
        self.stopping = True
        self.take()

    def clear(self) -> list[str]:
        """Remove the stale requests (another driver's, or of a ``retry`` that is gone);
        return the spec ids of the live ones, addressed to this process."""
        live = []
        for spec_id in requested(self.paths):
            path = wake_dir(self.paths) / spec_id
            try:
                driver, retry = map(int, path.read_text(encoding="ascii").split())
            except (OSError, ValueError, UnicodeDecodeError):
                driver = retry = 0
            if driver == os.getpid() and pid_alive(retry):
                live.append(spec_id)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        return live

    async def listen(self) -> None:
        """Take the requests each time ``retry`` signals (run in the drive's nursery); the
        stale ones an earlier drive left are removed first."""
        with trio.open_signal_receiver(WAKE_SIGNAL) as signals:
            self.take()
            async for _ in signals:
                self.take()


def _answer(paths: RunPaths, spec_id: str, answer: str) -> bool:
    """Move the request for ``spec_id`` into ``wake/<answer>/``; False when it is gone
    (``retry`` withdrew it)."""
    directory = wake_dir(paths) / answer
    try:
        directory.mkdir(exist_ok=True)
        (wake_dir(paths) / spec_id).rename(directory / spec_id)
    except OSError:
        return False
    return True


def requested(paths: RunPaths) -> list[str]:
    """The spec ids with a request to end their wait now."""
    try:
        entries = os.scandir(wake_dir(paths))
        return sorted(e.name for e in entries if e.is_file() and not e.name.startswith("."))
    except OSError:
        return []


def request(paths: RunPaths, spec_ids: Iterable[str], driver: int) -> None:
    """Ask the live ``driver`` (the pid holding the run's lock) to start ``spec_ids`` now:
    a request file each, naming the driver and this process, then the signal. Raises
    ``OSError`` when a file cannot be made."""
    directory = wake_dir(paths)
    directory.mkdir(exist_ok=True)
    for spec_id in spec_ids:
        answered(paths, spec_id, remove=True)  # one a killed `retry` left
        temporary = directory / f".{spec_id}.{os.getpid()}"
        temporary.write_text(f"{driver} {os.getpid()}\n", encoding="ascii")
        temporary.rename(directory / spec_id)  # whole, or not at all (a dotted name is skipped)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(driver, WAKE_SIGNAL)


def answered(paths: RunPaths, spec_id: str, *, remove: bool = False) -> str | None:
    """The driver's answer to the request for ``spec_id`` (``STARTED``, ``STOPPING``), or
    None when it has not answered; ``remove``: take the answer away too."""
    for answer in (STARTED, STOPPING):
        path = wake_dir(paths) / answer / spec_id
        if path.exists():
            if remove:
                with contextlib.suppress(OSError):
                    path.unlink()
            return answer
    return None


def withdraw(paths: RunPaths, spec_ids: Iterable[str]) -> list[str]:
    """Remove the requests for ``spec_ids`` that the driver has not taken; return those
    spec ids."""
    withdrawn = []
    for spec_id in spec_ids:
        with contextlib.suppress(OSError):
            (wake_dir(paths) / spec_id).unlink()
            withdrawn.append(spec_id)
    return withdrawn


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
