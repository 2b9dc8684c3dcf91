"""One ``git worktree add`` at a time in a repository, across processes.

Two ``git worktree add`` at once in one repository read each other's half-made
administrative directories and fail about 1 in 40 (git 2.39.5: ``failed to read
.git/worktrees/x46/commondir``, seen with 8 at once). A drive serialises its own
(``Bookkeeping.worktrees``); runs at once of one repository (from one checkout, or from
the main checkout and a linked worktree) take an ``flock`` on ``ADD_LOCK`` in the
repository's shared git directory, as its ledgers do (``dagspec.ledgers``), held only
around the add. The kernel frees it when its holder dies, even by SIGKILL. A wait says so
after a moment (an add takes milliseconds: a short wait says nothing), and a Ctrl-C (the
drive's cancellation, ``go_on``) ends it, nothing made. No git process: the shared git
directory is read from files (``ledgers.shared_dir``); the wait is ``lock_waits.take``'s.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from dagspec import lock_waits
from dagspec.errors import DagspecError, WaitStopped, too_many_open_files
from dagspec.ledgers import shared_dir

ADD_LOCK = "dagspec-worktree-add.lock"
MOMENT = 1.0  # seconds of waiting before the wait is said


def nothing() -> None:
    """A ``go_on`` that never stops the wait."""


@contextlib.contextmanager
def one_at_a_time(checkout: Path, go_on: Callable[[], None] = nothing) -> Iterator[None]:
    """Hold the repository's lock on adding a worktree. ``go_on`` is called while it
    waits: what it raises (``trio.Cancelled`` at a stop) ends the wait, and is raised."""
    path = shared_dir(checkout) / ADD_LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        advice = too_many_open_files(error, str(path))
        raise DagspecError(
            advice
            or f"cannot open {path} ({error.strerror or error}), the lock that lets the runs "
            f"of this repository add one worktree at a time: make it a file dagspec can write"
        ) from None
    try:
        caught: list[BaseException] = []

        def stopped() -> bool:
            try:
                go_on()
            except BaseException as exc:  # trio.Cancelled, a BaseException
                caught.append(exc)
                return True
            return False

        note = (
            f"note: waiting for another run of this repository, which holds {path} while it "
            "adds a worktree"
        )
        if not lock_waits.take(fd, note, stopped, quiet_for=MOMENT):
            if caught:
                raise caught[0]
            raise WaitStopped(f"stopped waiting for another run's lock on {path}")
        yield
    finally:
        os.close(fd)  # frees the lock
