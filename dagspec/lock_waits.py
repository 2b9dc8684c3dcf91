"""Waiting for an ``flock`` another process holds: another run of the repository, or a git
a killed ``dag`` left behind. Every such wait says on stderr what it waits for and that
Ctrl-C stops it, and a Ctrl-C does stop it, wherever it waits:

- in the main thread with Python's own SIGINT handler: ``KeyboardInterrupt``;
- under ``faults.signals_deferred`` (a merge), whose handler only records the signal: the
  handler calls ``stop_waiting``, and the wait ends with ``WaitStopped``;
- in a worker thread (a worktree's preparation): its ``stopped`` is asked.

A blocking ``flock`` would sit through all three, so the blocking call is a thread's, on a
duplicate of the descriptor (the same lock); the waiter polls for it. Abandoned, that
thread lets go of the lock as soon as it has it, by closing the duplicate.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dagspec.errors import Interrupted, WaitStopped

POLL = 0.1  # seconds between two looks at whether a wait for a lock was stopped

_waiting: list[bool] = []  # [True] while ``hold`` waits in the main thread


def hold(fd: int, note: str, what: str, stopped: Callable[[], bool] | None = None) -> None:
    """Take the ``flock`` of ``fd`` (the file at ``what``'s lock); when another process
    holds it, say ``note`` and who holds it, and wait. Raises ``WaitStopped`` ("stopped
    waiting for ``what``") when ``stopped()`` says so, or ``stop_waiting`` was called
    (a signal handler's Ctrl-C); ``stopped`` None: only the latter, and a Ctrl-C in the
    main thread, which ends it as ``Interrupted``, saying nothing was done."""
    mine = stopped is None and threading.current_thread() is threading.main_thread()
    if mine:
        _waiting[:] = [True]
    try:
        ask = stopped if stopped is not None else (lambda: mine and _waiting == [])
        took = take(fd, note, ask)
    except KeyboardInterrupt as interrupt:  # Python's own handler: before anything was done
        if not mine or isinstance(interrupt, Interrupted):
            raise
        said = f"stopped waiting for {what} at a Ctrl-C: nothing was done"
        raise Interrupted(said, error=True) from None
    finally:
        if mine:
            _waiting.clear()
    if not took:
        raise WaitStopped(f"stopped waiting for {what}")


def stop_waiting() -> bool:
    """End the wait of ``hold`` in the main thread (``WaitStopped``), if one is waiting:
    whether one was. Safe in a signal handler (a Ctrl-C during a merge, whose signals are
    deferred: ``faults.signals_deferred``)."""
    if not _waiting:
        return False
    _waiting.clear()
    return True


def take(fd: int, note: str, stopped: Callable[[], bool], *, quiet_for: float = 0.0) -> bool:
    """Take the ``flock`` of ``fd``; when another process holds it, say ``note`` on stderr
    (with the holder's pid and name, when ``/proc/locks`` tells them, and that Ctrl-C
    stops the wait; only once ``quiet_for`` seconds of waiting have passed, when given: a
    short wait says nothing) and wait until it is free (True) or ``stopped()`` (False),
    asked every ``POLL`` seconds."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        pass
    unsaid = time.monotonic() + quiet_for if quiet_for else None

    def say() -> None:
        print(f"{note}{_held_by(fd)} (Ctrl-C stops the wait)", file=sys.stderr)

    if unsaid is None:
        say()
    try:
        duplicate = os.dup(fd)
    except OSError:  # no descriptor left: a wait that only the other's end ends
        if unsaid is not None:
            say()
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    got = threading.Event()

    def wait() -> None:
        try:
            fcntl.flock(duplicate, fcntl.LOCK_EX)
            got.set()
        finally:
            os.close(duplicate)  # held on by ``fd`` while that is open

    threading.Thread(target=wait, name=f"waiting for {note}", daemon=True).start()
    while not got.wait(POLL):
        if stopped():
            return False
        if unsaid is not None and time.monotonic() >= unsaid:
            say()
            unsaid = None
    return True


def _held_by(fd: int) -> str:
    """``: held by pid N (name)`` for the holder of the ``flock`` of ``fd``; nothing when
    it cannot be told (no ``/proc``; a lock just let go)."""
    from dagspec.driver_lock import flock_holders

    try:
        holders = flock_holders(os.fstat(fd).st_ino) or []
    except OSError:
        return ""
    shown = []
    for pid in holders[:3]:
        try:
            name = Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace")
            shown.append(f"pid {pid} ({name.strip()})")
        except OSError:
            shown.append(f"pid {pid}")
    return f"; held by {', '.join(shown)}" if shown else ""
