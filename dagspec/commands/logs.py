"""``dag logs``: print one spec's output, or follow it while the spec runs.

The log's bytes are copied to stdout as they are (an agent's output need not be UTF-8).
Following re-reads the state file to know when the spec has finished; like ``status``,
it never takes the run's lock.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from dagspec.errors import EXIT_INTERRUPTED, EXIT_OK, DagspecError
from dagspec.lifecycle import RunState, RunStatus, SpecStatus
from dagspec.state import load, settled
from dagspec.workspace import RunPaths, check_run_id

POLL = 0.25  # seconds between two looks at the log and the state under --follow
CHUNK = 1 << 16


def logs(repo: Path, run_id: str, spec_id: str, *, follow: bool) -> int:
    """Print the spec's log; with ``follow``, keep printing until the spec stops running."""
    paths = RunPaths(repo, check_run_id(run_id))
    state = load(paths)
    _check_spec(state, spec_id)
    log = paths.log_file(spec_id)
    if not log.exists() and not (follow and is_live(settled(state), spec_id)):
        print(f"spec '{spec_id}' has no output yet (it is {state.spec(spec_id).status.value})")
        return EXIT_OK
    sys.stdout.flush()
    out = sys.stdout.buffer
    if not follow:
        copy_new(log, 0, out)
        return EXIT_OK
    try:
        follow_log(log, out, lambda: is_live(settled(load(paths)), spec_id), _pause)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK


def _check_spec(state: RunState, spec_id: str) -> None:
    ids = [spec.id for spec in state.specs]
    if spec_id not in ids:
        raise DagspecError(
            f"run '{state.run_id}' has no spec '{spec_id}': its specs are {', '.join(ids)}"
        )


def is_live(state: RunState, spec_id: str) -> bool:
    """Whether the spec may still write to its log: it runs, or waits in a driven run."""
    status = state.spec(spec_id).status
    waiting = status is SpecStatus.PENDING and state.status is RunStatus.RUNNING
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
