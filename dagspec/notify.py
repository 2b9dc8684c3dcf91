"""Telling the user what needs them (issue 17): ``--notify CMD`` / ``execution.notify``.

The command runs on exactly four events, never per stage or task:

- ``run-finished``: the run ended (completed, failed or interrupted);
- ``spec-failed``: a spec failed (after its restarts, if any);
- ``spec-stalled``: a running spec made no progress for the stall timeout;
- ``spec-waiting``: a spec hit a usage or rate limit and waits for its reset.

It gets the event in its environment (``DAG_EVENT``, ``DAG_RUN_ID``, ``DAG_SPEC_ID`` (empty
for the run), ``DAG_SUMMARY``, one line) and the same as a JSON object on its stdin
(``notice_json``). A notification never fails a run: ``notify`` returns a warning instead.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from dagspec import git_env, procgroup
from dagspec.errors import as_typed
from dagspec.fit import printable
from dagspec.lifecycle import RunState, RunStatus, SpecStatus
from dagspec.render import count_text, format_duration
from dagspec.state import format_time
from dagspec.words import counted

if TYPE_CHECKING:  # loaded for a failure only (``spec_attempt._limit_at_end``)
    from dagspec.limits import LimitHit

EVENTS = ("run-finished", "spec-failed", "spec-stalled", "spec-waiting")
NOTIFY_TIMEOUT = 30.0  # seconds; a notifier that hangs is ended and reported
MAX_SUMMARY = 1000  # characters of a notice's summary
BELL_AFTER = 60.0  # seconds: a run at least this long rings the terminal bell at its end


@attrs.frozen
class Notice:
    """One event worth a notification. ``spec_id`` is None for ``run-finished``."""

    event: str
    run_id: str
    spec_id: str | None
    summary: str
    status: str  # the run's status for run-finished, else the spec's: failed, stalled, waiting

    def __attrs_post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown notification event {self.event!r}")
        # One printable line of bounded size: an environment variable cannot hold a NUL,
        # and a reason quoting 20 MB of setup output would not fit the kernel's limit.
        line = printable(" ".join(self.summary.split()))
        if len(line) > MAX_SUMMARY:
            line = line[: MAX_SUMMARY - 1] + "…"
        object.__setattr__(self, "summary", line)


def notice_json(notice: Notice) -> str:
    """``{"event", "run_id", "spec_id", "status", "summary"}`` on one line."""
    return json.dumps(attrs.asdict(notice), ensure_ascii=False)


def notice_env(notice: Notice) -> dict[str, str]:
    return {
        "DAG_EVENT": notice.event,
        "DAG_RUN_ID": notice.run_id,
        "DAG_SPEC_ID": notice.spec_id or "",
        "DAG_STATUS": notice.status,
        "DAG_SUMMARY": notice.summary,
    }


def notify(
    command: str,
    notice: Notice,
    *,
    cwd: Path,
    log: Path,
    timeout: float = NOTIFY_TIMEOUT,
    started: Callable[[int], None] | None = None,
) -> str | None:
    """Run ``command`` (``/bin/sh -c``, in ``cwd``) for ``notice``; its output goes to ``log``.

    Returns None when it succeeded, else a one-line warning for the user (a failed or hung
    notifier is reported, never fatal). Blocks up to ``timeout`` seconds (then its process
    group is killed): the scheduler calls it in a thread.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"=== dagspec: notify {notice.event}: {notice_json(notice)}\n".encode())
        out.flush()
        try:
            process = subprocess.Popen(
                ["/bin/sh", "-c", command],
                cwd=cwd,
                env=git_env.clean_env(notice_env(notice)),
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            return f"the notify command could not start: {exc.strerror}"
        if started is not None:
            started(process.pid)  # its process group's id (a session of its own)
        try:
            process.communicate((notice_json(notice) + "\n").encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            procgroup.signal_group(process.pid, signal.SIGKILL)
            process.wait()
            return f"the notify command took over {format_duration(timeout)} and was ended"
    if process.returncode < 0:
        name = procgroup.signal_name(-process.returncode)
        return f"the notify command was killed by {name} (its output: {log})"
    if process.returncode != 0:
        return f"the notify command exited with {process.returncode} (its output: {log})"
    return None


# --- the notices of a run -------------------------------------------------------------------


def run_finished(run: RunState) -> Notice:
    """``run RUN completed in 1h02m: 5 completed``; a completed run whose work is not all
    on the base branch yet (a conflict, a result waiting on ``dag/<run>/_merged``) says so,
    as its exit code 1 does."""
    took = ""
    if run.finished_at is not None:
        took = f" in {format_duration((run.finished_at - run.started_at).total_seconds())}"
    summary = f"run {run.run_id} {run.status.value}{took}: {count_text(run)}"
    unmerged = [s for s in run.specs if s.status is SpecStatus.COMPLETED and not s.merged]
    if run.status is RunStatus.COMPLETED and run.options.merge and unmerged:
        summary += f"; {counted(len(unmerged), 'spec')} not merged into {run.base_branch} yet"
    return Notice("run-finished", run.run_id, None, summary, run.status.value)


def spec_failed(run: RunState, spec_id: str) -> Notice:
    spec = run.spec(spec_id)
    reason = (spec.error or "").strip().split("\n", 1)[0] or f"exit code {spec.exit_code}"
    reason = as_typed(reason)  # its `dag retry ...` as the user types dag, as the run's end
    return Notice("spec-failed", run.run_id, spec_id, f"{spec_id} failed: {reason}", "failed")


def spec_stalled(run: RunState, spec_id: str, idle: float) -> Notice:
    summary = f"{spec_id} made no progress for {format_duration(idle)}"
    return Notice("spec-stalled", run.run_id, spec_id, summary, "stalled")


def spec_waiting(run: RunState, spec_id: str, hit: LimitHit, until: datetime) -> Notice:
    summary = f"{spec_id} hit a {hit.agent} limit; waiting until {format_time(until)}"
    return Notice("spec-waiting", run.run_id, spec_id, summary, "waiting")


def wants_bell(run: RunState, *, terminal: bool) -> bool:
    """Ring the bell at the end of a run that took over a minute, on a terminal only."""
    if not terminal or run.finished_at is None:
        return False
    return (run.finished_at - run.started_at).total_seconds() > BELL_AFTER


# --- a run's notifier ---------------------------------------------------------------------


class _Event(Protocol):
    """What the notifier reads of a scheduler event (``scheduler.Event``, moving to
    ``lifecycle``): structural, so the move does not touch this module."""

    @property
    def spec_id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def detail(self) -> str: ...


Reporter = Callable[[RunState, Any], None]


class Notifier:
    """Sends a run's notices in the background, one at a time and in order, so a slow
    notifier never holds up the run; ``finish`` sends ``run-finished`` and waits for them,
    at most ``NOTIFY_TIMEOUT`` seconds in all (a Ctrl-C ends the wait at once). The spec
    notices still queued get the first half of that; what is not sent by then is given up,
    so ``run-finished`` always has the other half.

    A run without a notify command gets a notifier that does nothing.
    """

    def __init__(self, command: str | None, *, cwd: Path, log: Path) -> None:
        self.command, self.cwd, self.log = command, cwd, log
        self.warnings: list[str] = []
        self._pool = ThreadPoolExecutor(max_workers=1) if command else None
        self._sent: list[Future[None]] = []
        self._group: int | None = None  # the process group of the notifier running now
        self._spec_group: int | None = None  # the same, when it sends a spec's notice
        self._ended: set[int] = set()  # the groups this notifier ended: given up, said once
        self._cut: set[bool] = set()  # given up: spec notices (True), run-finished (False)

    def send(self, notice: Notice) -> None:
        if self._pool is not None:
            self._sent.append(self._pool.submit(self._send, notice))

    def _send(self, notice: Notice) -> None:
        assert self.command is not None
        spec = notice.event != "run-finished"
        if spec in self._cut:
            return  # given up already: counted in the warning that says so
        groups: list[int] = []

        def started(group: int) -> None:
            groups.append(group)
            self._group = group
            self._spec_group = group if spec else None
            if spec in self._cut:  # given up while it was starting
                self._end(group)

        warning = notify(self.command, notice, cwd=self.cwd, log=self.log, started=started)
        self._group = self._spec_group = None
        if warning is not None and not self._ended.intersection(groups):
            self.warnings.append(warning)

    def _end(self, group: int) -> None:
        self._ended.add(group)
        procgroup.signal_group(group, signal.SIGKILL)

    def wrap(self, report: Reporter) -> Reporter:
        """``report``, and a notice for each scheduler event worth one: ``failed``, and
        ``stalled`` and ``waiting`` (whose ``detail`` becomes the summary after the spec id,
        e.g. ``Event(id, "waiting", "claude limit; until 2026-11-24T15:00:00Z")``)."""

        def reporting(run: RunState, event: _Event) -> None:
            report(run, event)
            if event.kind == "failed":
                self.send(spec_failed(run, event.spec_id))
            elif event.kind in ("stalled", "waiting"):
                summary = f"{event.spec_id}: {event.detail}" if event.detail else event.spec_id
                self.send(
                    Notice(f"spec-{event.kind}", run.run_id, event.spec_id, summary, event.kind)
                )

        return reporting

    def finish(self, run: RunState) -> list[str]:
        """Send ``run-finished`` and wait for every notice, at most ``NOTIFY_TIMEOUT``
        seconds in all, of which the spec notices before it get half: what is not sent by
        then is given up (the notifier running is ended) and said in one warning. The
        warnings of failed notifiers."""
        spec_notices = list(self._sent)
        self.send(run_finished(run))
        if self._pool is None:
            return self.warnings
        budget, begun = NOTIFY_TIMEOUT, time.monotonic()
        try:
            _, late = wait(spec_notices, timeout=budget / 2)
            self._cut.add(True)  # before the group is read: one that starts now ends itself
            given_up = self._give_up(late, self._spec_group) if late else 0
            left = max(budget - (time.monotonic() - begun), 0.0)
            _, late = wait(self._sent[-1:], timeout=left)
            self._cut.add(False)
            given_up += self._give_up(late, self._group) if late else 0
        except KeyboardInterrupt:
            self._cut.update((True, False))
            self._give_up(self._sent, self._group)
            raise
        if given_up:
            self.warnings.append(
                f"gave up {counted(given_up, 'notice')} after "
                f"{format_duration(budget)}: the notify command is too slow"
            )
        self._pool.shutdown(wait=True)
        return self.warnings

    def _give_up(self, late: Iterable[Future[None]], running: int | None) -> int:
        """Drop the notices of ``late`` not started, end the one running (of process group
        ``running``, read before: one of ``late``'s); how many that is."""
        late = [f for f in late if not f.done()]
        dropped = sum(f.cancel() for f in late)
        if dropped < len(late) and running is not None:
            self._end(running)
        if self._sent[-1] in late:  # run-finished too: nothing more will start
            assert self._pool is not None
            self._pool.shutdown(wait=False, cancel_futures=True)
        return len(late)
