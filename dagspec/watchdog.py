"""The stall watchdog (issue 17): is a running agent making progress?

A process being alive says nothing: an AI CLI can sit at 0% CPU with no output for hours.
Progress is what the agent leaves behind: its log growing, a file of its spec directory
changing (``tasks.yaml``, an artifact), a commit in its worktree. ``progress_stamp`` reads
all of those as file metadata (sizes and modification times, a few ``stat`` calls and no
git command), and ``Watchdog`` compares stamps: no change for the stall timeout, the spec
is stalled; for twice the timeout, the attempt is ended (the policy is
``dagspec.unattended``'s).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import trio

Stamp = tuple[tuple[str, int, int], ...]
"""``(path, mtime_ns, size)`` of each file that shows progress."""

MAX_CHECK = 10.0  # seconds: the longest pause between two looks, whatever the timeout


def progress_stamp(log: Path, worktree: Path, spec_dir: str | None) -> Stamp:
    """What the agent has left behind so far: the log; the files of ``specs/<spec_dir>/``
    (before the spec has a directory, ``specs/`` and its subdirectories, where specify
    makes one); the worktree's HEAD and its reflog (a commit appends to it) and index, in
    the git directory its ``.git`` file names. Missing files are left out."""
    specs = worktree / "specs"
    places = [log, *_git_files(worktree)]
    if spec_dir is not None:
        places += _entries(specs / spec_dir)
    else:
        places += [specs, *(p for p in _entries(specs) if p.is_dir())]
    stamp = []
    for place in places:
        try:
            info = place.stat()
        except OSError:
            continue
        stamp.append((str(place), info.st_mtime_ns, info.st_size))
    return tuple(stamp)


def _entries(directory: Path) -> list[Path]:
    try:
        return [Path(entry.path) for entry in os.scandir(directory)]
    except OSError:
        return []


def _git_files(worktree: Path) -> list[Path]:
    """The files of the worktree's own git directory that a commit or ``add`` changes: the
    ``.git`` file of a linked worktree says where it is (as for ``worktree.remove_stale_locks``)."""
    dot_git = worktree / ".git"
    try:
        pointer = dot_git.read_text(encoding="utf-8").strip() if dot_git.is_file() else ""
    except OSError:
        return []
    directory = worktree / pointer.removeprefix("gitdir: ") if pointer else dot_git
    return [directory / "HEAD", directory / "logs" / "HEAD", directory / "index"]


class Watched(Protocol):
    """What knows the spec's directory once the agent names it (``agent.Watcher``)."""

    @property
    def spec_dir(self) -> str | None: ...


def for_attempt(
    timeout: float | None,
    log: Path,
    worktree: Path,
    watched: Watched,
    news: Callable[[float | None], None],
) -> Watchdog | None:
    """The watchdog of one attempt, when the run has a stall ``timeout`` (seconds)."""
    if timeout is None:
        return None
    return Watchdog(timeout, lambda: progress_stamp(log, worktree, watched.spec_dir), news)


class Watchdog:
    """Watches one attempt: ``news(idle)`` once it made no progress for ``timeout``
    seconds, ``news(None)`` when a stalled one moves again, and after twice ``timeout``
    it cancels ``scope`` (ending the agent like a timeout) with ``ended`` set and ``idle``
    the seconds without progress. ``stamp`` is called on the event loop: a few ``stat``
    calls, and so trio's autojump clock can drive the policy tests.

    Accuracy: it looks every quarter of ``timeout`` (at most ``MAX_CHECK`` seconds), and
    dates a change it sees by the newest modification time among the files that changed
    (``wall``: the clock of those times, ``time.time``), not by the look that saw it; it
    then sleeps until exactly one ``timeout`` after that. So a stall is noticed within the
    file system's timestamp precision of the configured period, and only when progress
    shows as a file gone (no time to read) within one look. No polling besides the looks.
    """

    def __init__(
        self,
        timeout: float,
        stamp: Callable[[], Stamp],
        news: Callable[[float | None], None],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.timeout, self.stamp, self.news, self.wall = timeout, stamp, news, wall
        self.ended = False
        self.idle = 0.0

    async def watch(self, scope: trio.CancelScope) -> None:
        every = min(self.timeout / 4, MAX_CHECK)
        seen, since, stalled = self.stamp(), trio.current_time(), False
        looked = since
        while True:
            due = since + self.timeout * (2 if stalled else 1)  # the same sums as below
            await trio.sleep_until(min(looked + every, due))
            now, stamp = trio.current_time(), self.stamp()
            if stamp != seen:
                since = min(max(self._changed_at(seen, stamp, now), looked), now)
                seen, looked = stamp, now
                if stalled:
                    stalled = False
                    self.news(None)
                continue
            looked, self.idle = now, now - since
            # against the very deadlines slept until: ``now - since`` can fall a rounding
            # error short of the timeout at its deadline, and the loop would never sleep
            if now >= since + self.timeout * 2:
                self.ended = True
                scope.cancel()
                return
            if now >= since + self.timeout and not stalled:
                stalled = True
                self.news(self.idle)

    def _changed_at(self, seen: Stamp, stamp: Stamp, now: float) -> float:
        """When (on trio's clock, whose time is ``now``) the newest file of ``stamp`` that
        is not as it was in ``seen`` was modified; ``now`` when none is (a file gone)."""
        changed = set(stamp) - set(seen)
        if not changed:
            return now
        newest = max(mtime_ns for _, mtime_ns, _ in changed) / 1e9
        return now - (self.wall() - newest)
