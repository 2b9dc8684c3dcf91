"""``dag logs``: print one spec's output, or follow it while the spec runs; or every spec's,
interleaved line by line with a ``spec | `` prefix.

The log's bytes are copied to stdout as they are (an agent's output need not be UTF-8).
Following re-reads the state file to know when the spec has finished; like ``status``,
it never takes the run's lock. Following a spec that has not started waits for it.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from dagspec.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, DagspecError, print_error
from dagspec.lifecycle import RunState, RunStatus, SpecStatus
from dagspec.state import driver_alive, load, settled
from dagspec.words import no_such_spec
from dagspec.workspace import RunPaths, check_run_id

POLL = 0.25  # seconds between two looks at the log and the state under --follow
CHUNK = 1 << 16


def logs(repo: Path, run_id: str, spec_id: str | None, *, follow: bool) -> int:
    """Print the spec's log (every spec's when ``spec_id`` is None); with ``follow``, keep
    printing until the spec (the run) stops running."""
    paths = RunPaths(repo, check_run_id(run_id))
    state = load(paths)
    if follow:
        try:
            state = _once_driven(paths, state)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    if spec_id is None:
        return _all_logs(paths, state, follow=follow)
    _check_spec(state, spec_id)
    log = paths.log_file(spec_id)
    if not log.exists() and not (follow and is_live(settled(state), spec_id)):
        print(f"spec '{spec_id}' has no output yet (it is {state.spec(spec_id).status.value})")
        return _after_following(paths, ran=False) if follow else EXIT_OK
    sys.stdout.flush()
    out = sys.stdout.buffer
    if follow and not log.exists():
        status = state.spec(spec_id).status.value
        print(f"note: waiting for spec '{spec_id}' to start (it is {status})", file=sys.stderr)
    if not follow:
        copy_new(log, 0, out)
        return EXIT_OK
    try:
        follow_log(log, out, lambda: is_live(settled(load(paths)), spec_id), _pause)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return _after_following(paths, ran=state.status is RunStatus.RUNNING)


def _once_driven(paths: RunPaths, state: RunState) -> RunState:
    """The run as its driver records it once it drives it: a ``dag resume`` or ``retry``
    that holds the run's lock but has not yet said so in the state (it asks autospec its
    version first) is waited for, said on stderr, so that following goes on with the
    attempt it starts rather than ending at "not running". ``state`` as it is when no
    process holds the lock, or the run is recorded running."""
    holder = _lock_holder(paths)
    if state.status is RunStatus.RUNNING or holder is None:
        return state
    print(
        f"note: waiting for pid {holder}, which holds run {state.run_id} (a resume or retry "
        "about to drive it?)",
        file=sys.stderr,
    )
    while holder is not None:
        _pause()
        state = load(paths)
        holder = None if state.status is RunStatus.RUNNING else _lock_holder(paths)
    return load(paths)


def _lock_holder(paths: RunPaths) -> int | None:
    """The pid holding the run's lock (``driver_lock.run_lock``: its directory's
    ``flock``), from ``/proc/locks``; None when none does, or it cannot be told."""
    from dagspec.driver_lock import flock_holders

    try:
        holders = flock_holders(paths.run_dir.stat().st_ino)
    except OSError:
        return None
    return next(iter(holders or []), None)


def _after_following(paths: RunPaths, *, ran: bool) -> int:
    """What following ends with: 0, or, when it ended because the run's driver is gone
    (killed, a reboot), that said on stderr with how to go on, and 1 as ``dag status``
    exits then. A run that was not running when following began (``ran`` False: stopped
    by Ctrl-C, failed, or finished) is said to be so, with how to go on: it printed its old
    lines and ended, exit 0, as if it had followed something."""
    recorded = load(paths)
    run_id = recorded.run_id
    if not ran and recorded.status is not RunStatus.RUNNING:
        return _not_running(recorded)
    if recorded.status is not RunStatus.RUNNING or driver_alive(recorded):
        return EXIT_OK
    print_error(
        f"the driver of run {run_id} is gone (killed, or the machine restarted): "
        f"`dag resume {run_id}` goes on with it"
    )
    return EXIT_FAILED


def _not_running(recorded: RunState) -> int:
    """Following a run that is not running: a completed one is a note, exit 0; an
    interrupted or failed one an error saying ``dag resume`` goes on with it, exit 1 as
    ``dag status`` exits then."""
    run_id, status = recorded.run_id, recorded.status.value
    if recorded.status is RunStatus.COMPLETED:
        print(
            f"note: run {run_id} is not running ({status}): nothing more will come", file=sys.stderr
        )
        return EXIT_OK
    print_error(
        f"run {run_id} is not running ({status}): nothing more will come until "
        f"`dag resume {run_id}` goes on with it"
    )
    return EXIT_FAILED


def _check_spec(state: RunState, spec_id: str) -> None:
    ids = [spec.id for spec in state.specs]
    if spec_id not in ids:
        raise DagspecError(no_such_spec(state.run_id, spec_id, ids))


def is_live(state: RunState, spec_id: str) -> bool:
    """Whether the spec may still write to its log: it runs, or waits in a driven run."""
    status = state.spec(spec_id).status
    later = (SpecStatus.PENDING, SpecStatus.WAITING)  # it starts again later in this drive
    waiting = status in later and state.status is RunStatus.RUNNING
    return status is SpecStatus.RUNNING or waiting


def follow_log(
    log: Path, out: BinaryIO, live: Callable[[], bool], pause: Callable[[], None]
) -> None:
    """Copy ``log`` to ``out`` as it grows, until ``live()`` says the writer has finished.

    ``live`` is asked *before* each copy, so whatever was written before the spec finished
    is copied by the last round. A log that shrank (a new attempt) is read from its start.
    """
    offset = 0
    while True:
        still_live = live()
        offset = copy_new(log, offset, out)
        if not still_live:
            return
        pause()


def copy_new(log: Path, offset: int, out: BinaryIO) -> int:
    """Copy the bytes of ``log`` past ``offset`` to ``out``; return the new offset."""
    try:
        file = log.open("rb")
    except FileNotFoundError:
        return offset
    with file:
        if file.seek(0, 2) < offset:
            offset = 0
        file.seek(offset)
        while chunk := file.read(CHUNK):
            out.write(chunk)
            offset += len(chunk)
    out.flush()
    return offset


def _pause() -> None:
    time.sleep(POLL)


def _all_logs(paths: RunPaths, state: RunState, *, follow: bool) -> int:
    sys.stdout.flush()
    ids = [spec.id for spec in state.specs]
    live = lambda: settled(load(paths)).status is RunStatus.RUNNING  # noqa: E731
    try:
        follow_logs(
            {spec_id: paths.log_file(spec_id) for spec_id in ids},
            sys.stdout.buffer,
            live if follow else lambda: False,
            _pause,
        )
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return _after_following(paths, ran=state.status is RunStatus.RUNNING) if follow else EXIT_OK


def follow_logs(
    logs: dict[str, Path], out: BinaryIO, live: Callable[[], bool], pause: Callable[[], None]
) -> None:
    """Copy every log's complete lines to ``out`` as they come, each as ``spec | line``,
    until ``live()`` says the run has finished; then the last, unterminated lines.

    ``live`` is asked before each round, as in ``follow_log``.
    """
    width = max(map(len, logs), default=0)
    prefix = {spec_id: f"{spec_id:<{width}} | ".encode() for spec_id in logs}
    offsets = dict.fromkeys(logs, 0)
    partial = dict.fromkeys(logs, b"")
    while True:
        still_live = live()
        for spec_id, log in logs.items():
            chunk = io.BytesIO()
            offsets[spec_id] = copy_new(log, offsets[spec_id], chunk)
            *lines, partial[spec_id] = (partial[spec_id] + chunk.getvalue()).split(b"\n")
            out.write(b"".join(prefix[spec_id] + line + b"\n" for line in lines))
        if not still_live:
            out.write(b"".join(prefix[i] + rest + b"\n" for i, rest in partial.items() if rest))
            out.flush()
            return
        out.flush()
        pause()
