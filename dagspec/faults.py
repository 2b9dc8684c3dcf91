"""Fault isolation (issue 11): what a fault ends, and how it is told.

A fault while preparing, running or collecting one spec is that spec's failure
(``spec_reason`` turns it into the one line the state records); a fault of the run itself
(its state cannot be saved) stops the run in order (``RunFault``); a closed or broken
stdout never stops anything (``Quiet``, ``say``); a signal never cuts a merge in half
(``signals_deferred``).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dagspec import state
from dagspec.errors import DagspecError, as_typed, too_many_open_files
from dagspec.lifecycle import Event, RunState


class RunFault(DagspecError):
    """The run itself cannot go on (its state cannot be saved): the drive stops as an
    interrupt and the command exits 1 with this message."""


def raise_for_run(fault: str | None) -> None:
    """Raise ``RunFault(fault)`` when the drive recorded a fault of the run itself."""
    if fault is not None:
        raise RunFault(fault)


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside ``exc``, however deep in exception groups (a nursery wraps
    what its tasks raise); ``[exc]`` when it is not a group."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def spec_reason(exc: BaseException, *, where: str = "a spec") -> str:
    """One line saying why a spec's attempt ended with ``exc``, and what to do: a
    ``DagspecError``'s own message; a system call's failure with its path and error name;
    anything else as a bug in dagspec, naming its crash log (``crash.spec_log``: one per
    distinct bug; ``where``, the spec and its run, is written in it). Never an exception's
    bare repr.

    >>> spec_reason(ExceptionGroup("x", [OSError(7, "Argument list too long")]))
    'Argument list too long (E2BIG): put that right, then `dag retry`'
    """
    first = leaves(exc)[0]
    if isinstance(first, DagspecError):
        text = str(first)
    elif isinstance(first, OSError):
        text = too_many_open_files(first) or _system_refused(first)
    else:
        text = (
            f"a bug in dagspec ({type(first).__name__}: {first}): please report it with "
            f"{_bug_evidence(exc, first, where)}; `dag retry` starts the spec again"
        )
    return " ".join(text.split()) or type(first).__name__


def _bug_evidence(exc: BaseException, bug: BaseException, where: str) -> str:
    """``its crash log, PATH``; when none can be written, why not."""
    from dagspec import crash  # only for a bug: crash imports platform

    try:
        return f"its crash log, {crash.spec_log(exc, bug, where)}"
    except OSError as log_error:
        return f"what it says (no crash log could be written: {log_error})"


def _system_refused(exc: OSError) -> str:
    """``<what the system said> at <path> (<ERRNO>)``, and what to do."""
    if exc.errno == errno.EFBIG:  # a log that grew for hours (ulimit -f), not a bad file
        what = exc.filename or "a file"
        return (
            f"{what} reached the file size limit (ulimit -f; EFBIG): raise the limit, or "
            "move the file away, then `dag retry`"
        )
    name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    where = f" at {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where} ({name}): put that right, then `dag retry`"


def silence_stdout() -> None:
    """Send whatever is still to be printed to /dev/null: the reader of stdout is gone
    (``dag run | head -1``), and the run must finish without it. Also spares Python's own
    flush at exit from a second broken pipe."""
    broken: Any = sys.stdout
    try:
        sys.stdout = Path(os.devnull).open("w", encoding="utf-8")  # noqa: SIM115 (for the process)
    except OSError:  # every file descriptor taken (EMFILE): a writer that needs none
        sys.stdout = _Discard()
    if broken is not None and broken is sys.__stdout__:  # the process's own file descriptor
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)  # sys.__stdout__ is descriptor 1
            os.close(devnull)


class _Discard(io.TextIOBase):
    """A text stream that drops what is written to it, holding no file descriptor."""

    def write(self, text: str) -> int:
        return len(text)


def say(text: str) -> None:
    """Print ``text`` to stdout, its `dag ...` hints in the form the user typed
    (``errors.as_typed``); when stdout is closed or broken, drop it and go quiet."""
    try:
        print(as_typed(text), end="", flush=True)
    except (OSError, ValueError):
        silence_stdout()


class Quiet:
    """A progress reporter (``progress.Lines`` or ``progress.Live``) that goes quiet for
    good once its output fails (a broken pipe, a closed terminal, a full disk under a
    redirect): output is not a lifeline."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.quiet = False

    def _guard(self, call: Callable[[], None]) -> None:
        if self.quiet:
            return
        try:
            call()
        except (OSError, ValueError):
            self.quiet = True
            silence_stdout()

    def __call__(self, state: RunState, event: Event) -> None:
        self._guard(lambda: self.inner(state, event))

    def tick(self) -> None:
        self._guard(self.inner.tick)

    def stopping(self, state: RunState, grace: float, agents: int, *, signs: bool = False) -> None:
        self._guard(lambda: self.inner.stopping(state, grace, agents, signs=signs))

    def close(self) -> None:
        self._guard(self.inner.close)


_SPARE: list[int] = []  # one descriptor kept back, so a save survives EMFILE (issue 11)


def save(run: RunState, path: Path) -> str | None:
    """``state.save``; None when saved, else why not (a full disk, a removed directory),
    as a ``dag: error:`` message that says what to do. When every file descriptor is taken
    (by agents' pipes and logs), the one kept back is given up for the save and taken back
    after it."""
    try:
        try:
            state.save(run, path)
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE) or not _SPARE:
                raise
            os.close(_SPARE.pop())
            state.save(run, path)
    except OSError as exc:
        return (
            f"cannot save the state of run {run.run_id} to {path} ({exc.strerror or exc}): "
            f"the run was stopped; make room or restore the directory, then "
            f"`dag resume {run.run_id}`"
        )
    if not _SPARE:
        with contextlib.suppress(OSError):
            _SPARE.append(os.open(os.devnull, os.O_RDONLY))
    return None


DEFERRED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def signals_deferred(on_signal: Callable[[int], None] | None = None) -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block is done, then act on them as an
    interrupt (``KeyboardInterrupt``: exit 130): a step that moves the user's checkout and
    records it (the merge, the removal of merged worktrees) is never cut in half. git runs
    in its own process group (``git.run``), so a terminal's Ctrl-C reaches only dagspec.
    ``on_signal`` hears how many came, at each (from a signal handler: it must not print
    through ``sys.stderr``, which the interrupted code may be writing to).
    Outside the main thread, where no handler can be set, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    record = _record(caught, on_signal)
    previous = {number: signal.signal(number, record) for number in DEFERRED}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if caught:
        raise KeyboardInterrupt


def _record(
    caught: list[int], on_signal: Callable[[int], None] | None
) -> Callable[[int, object], None]:
    def record(number: int, _frame: object) -> None:
        caught.append(number)
        if on_signal is not None:
            on_signal(len(caught))

    return record
