"""The one door for agent processes: start one, stream its output, end its process group.

``run_agent`` is what a drive calls for each attempt (``dagspec.spec_attempt``), its
``ports.AgentDoor``; policy tests pass a fake with the same signature. The rest is what the
door needs: ending a process group SIGTERM-then-SIGKILL, ending the agents a killed driver
left behind, and following an agent's progress (``Watcher``: its banners, and its tasks.yaml
read off the event loop).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path

import trio

from dagspec import autospec, ports, procgroup
from dagspec.durations import format_duration
from dagspec.errors import DagspecError, naming
from dagspec.executable import start_failure as start_failure
from dagspec.lifecycle import RunState
from dagspec.ports import GRACE as GRACE
from dagspec.workspace import RunPaths

_DRAIN = 2.0  # seconds to read what is left in the pipe once the agent's group is gone
_MAX_LINE = 64 * 1024  # the most of one output line kept for parsing (the log gets it all)
MAX_TASKS_FILE = 8 * 1024 * 1024  # bytes of tasks.yaml read for progress; larger is skipped
# The lines the Watcher parses: autospec's banners and errors (a usage limit is read from the
# end of the log once the agent has exited: ``limits.limit_at_end``).
WATCHED = autospec.INTERESTING


async def run_agent(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    on_start: Callable[[ports.Running], None],
    on_line: Callable[[bytes], None],
    grace: float = GRACE,
    on_exit: Callable[[], None] = ports.nothing,
) -> int:
    """Run one agent in its own session; stream its output to ``log``; return its exit code.

    stdout and stderr go to ``log`` as bytes, in the order written, holding nothing in memory
    but one chunk and the start of one line; ``on_line`` gets each complete line that may be
    a banner or an error (``WATCHED``). stdin is /dev/null: an agent can never read the
    terminal. Cancelled, it terminates the whole process group (``terminate_group``) and
    waits for it. Once the agent exits, what is left of its group is ended too, so nothing
    outlives it. A negative result is death by that signal. ``on_start`` gets the process
    as soon as it runs (after a cancellation, its ``returncode`` says how it ended), and
    ``on_exit`` is called as soon as it has exited, before what is left of its group is ended
    and its output drained (tens of milliseconds when threads are busy: issue 16).
    Raises ``DagspecError`` saying why when the agent cannot be started
    (``executable.start_failure``: a script's missing ``#!`` interpreter, not "No such
    file"), ``OSError`` for a fault after it started.
    """
    reading = trio.CancelScope(shield=True)
    started = False
    try:
        with _one_exception():
            async with trio.open_nursery() as nursery:
                process: trio.Process = await nursery.start(
                    partial(
                        trio.run_process,
                        list(argv),
                        cwd=cwd,
                        env=dict(env),
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        check=False,
                        deliver_cancel=partial(terminate_group, grace=grace),
                    )
                )
                started = True
                on_start(process)
                marker = env.get("AUTOSPEC_STATE_DIR")
                ending = partial(_end_the_rest, process, reading, grace, marker, on_exit)
                nursery.start_soon(ending)
                assert process.stdout is not None
                with reading:
                    await _copy_output(process.stdout, log, on_line)
    except OSError as exc:
        if started:
            raise
        raise DagspecError(start_failure(argv[0], exc, path=env.get("PATH"), cwd=cwd)) from None
    assert process.returncode is not None
    return process.returncode


@contextlib.contextmanager
def _one_exception() -> Iterator[None]:
    """Unwrap a group holding one exception, so callers of ``run_agent`` see that exception
    (e.g. the ``OSError`` of an executable that cannot be started), not a nursery's group."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def _copy_output(
    stream: trio.abc.ReceiveStream, log: Path, on_line: Callable[[bytes], None]
) -> None:
    carry = b""
    with naming(log), log.open("ab") as sink:  # a write names no file (ENOSPC, EFBIG)
        async for chunk in stream:
            sink.write(chunk)
            sink.flush()  # `dag logs -f` follows the file
            data = carry + chunk
            end = data.rfind(b"\n") + 1
            for match in WATCHED.finditer(data, 0, end):
                on_line(match[0])
            carry = data[end:][:_MAX_LINE]
    if WATCHED.match(carry):
        on_line(carry)


async def _end_the_rest(
    process: trio.Process,
    reading: trio.CancelScope,
    grace: float,
    state_dir: str | None,
    on_exit: Callable[[], None],
) -> None:
    """Once the agent has exited, end what is left of its group, and any process that left
    the group (``setsid``) but carries the agent's ``AUTOSPEC_STATE_DIR``; then stop reading
    soon. Nothing an agent started outlives it, and a child that shares the agent's stdout
    would keep the reader waiting for an end of file that never comes.
    """
    with trio.CancelScope(shield=True):
        await process.wait()
        on_exit()
        await end_group(process.pid, grace)
        if state_dir is not None:
            await end_marked({Path(state_dir): None}, grace)
    reading.deadline = trio.current_time() + _DRAIN


async def terminate_group(process: trio.Process, *, grace: float = GRACE) -> None:
    """SIGTERM the agent's whole process group, then SIGKILL it after ``grace`` seconds.

    This is ``trio.run_process``'s ``deliver_cancel``: trio runs it shielded and stops it
    as soon as the agent itself has exited; ``_end_the_rest`` then ends the rest.
    """
    procgroup.signal_group(process.pid, signal.SIGTERM)
    await trio.sleep(grace)
    procgroup.signal_group(process.pid, signal.SIGKILL)


async def end_group(pgid: int, grace: float, *, marker: str | None = None) -> None:
    """SIGTERM what lives in group ``pgid`` (with ``marker`` in its environment), wait up to
    ``grace`` seconds for it to go, then SIGKILL."""
    if not procgroup.members(pgid, marker=marker):
        return
    procgroup.signal_group(pgid, signal.SIGTERM)
    with trio.move_on_after(grace):
        while procgroup.members(pgid):  # noqa: ASYNC110 (a process group has no event)
            await trio.sleep(0.02)
    procgroup.signal_group(pgid, signal.SIGKILL)


async def end_survivors(run: RunState, paths: RunPaths, grace: float) -> None:
    """End the agents an earlier, killed driver of ``run`` left running, in parallel: an
    agent is known by its spec's ``AUTOSPEC_STATE_DIR`` in its environment, whether or not
    the driver lived long enough to record its process group."""
    where = paths.autospec_state_dir
    await end_marked({where(s.id): s.agent_pid for s in run.specs}, grace)


async def end_marked(recorded: Mapping[Path, int | None], grace: float) -> None:
    """End, in parallel, the processes that carry each ``AUTOSPEC_STATE_DIR`` of
    ``recorded`` in their environment, and the process group recorded for it, if any."""
    found = await trio.to_thread.run_sync(procgroup.groups_by_variable, "AUTOSPEC_STATE_DIR")
    async with trio.open_nursery() as nursery:
        for state_dir, pgid in recorded.items():
            groups = set(found.get(str(state_dir), ())) | ({pgid} if pgid else set())
            for group in groups:
                marker = f"AUTOSPEC_STATE_DIR={state_dir}"
                nursery.start_soon(partial(end_group, group, grace, marker=marker))


Observe = Callable[..., None]
"""Called with the facts of ``lifecycle.observe`` (``stage=``, ``spec_dir=``, ``tasks=``)."""


class Watcher:
    """Follows one agent: its banners (stage, spec directory, errors) and its tasks.yaml,
    reporting each fact to ``observe``; ``last_error`` keeps its last ``Error:`` line, and
    ``keep`` the last whole tasks.yaml read (``attempt.restore_tasks`` puts it back)."""

    def __init__(self, path: Path, spec_dir: str | None, observe: Observe, keep: Path) -> None:
        self.keep = keep
        self.path = path
        self.spec_dir = spec_dir
        self.observe = observe
        self.last_error: str | None = None
        self._seen: tuple[int, int] | None = None

    def line(self, raw: bytes) -> None:
        """One output line that may be a banner or a limit (``run_agent``'s ``on_line``)."""
        text = autospec.plain(raw)
        banner = autospec.parse_banner(text)
        if isinstance(banner, autospec.StageSeen):
            self.observe(stage=banner.stage)
        elif isinstance(banner, autospec.SpecDirSeen) and banner.name != self.spec_dir:
            self.spec_dir = banner.name
            self.observe(spec_dir=f"specs/{banner.name}")
        elif isinstance(banner, autospec.ErrorSeen):
            self.last_error = banner.text

    async def poll_tasks(self, interval: float) -> None:
        """Every ``interval`` seconds, re-read tasks.yaml (in a thread) if it changed."""
        while True:
            await trio.sleep(interval)
            await self.look()

    async def look(self) -> None:
        """Read tasks.yaml (in a thread) if it changed, and report its counts. Once more
        after the agent ended (``spec_attempt``): a spec that made its list and failed
        within one poll kept no tasks, though README counts those of every spec that made
        its list."""
        if self.spec_dir is None:
            return
        tasks = self.path / "specs" / self.spec_dir / "tasks.yaml"
        found = await trio.to_thread.run_sync(
            read_tasks,
            tasks,
            self._seen,
            self.keep,
            abandon_on_cancel=True,  # a read: never waited for
        )
        if found is not None:
            stats, self._seen = found
            self.observe(tasks=(stats.done, stats.total))


def read_tasks(
    tasks: Path, seen: tuple[int, int] | None, keep: Path | None = None
) -> tuple[autospec.TaskStats, tuple[int, int]] | None:
    """(in a thread) The counts of ``tasks.yaml`` and the file's ``(mtime_ns, size)``, when
    it changed since ``seen`` and reads whole; None otherwise (missing, unchanged, torn by
    a rewrite in progress, or over ``MAX_TASKS_FILE`` bytes). A whole file is copied to
    ``keep`` (atomically)."""
    try:
        info = tasks.stat()
    except OSError:
        return None
    stamp = (info.st_mtime_ns, info.st_size)
    if stamp == seen or info.st_size > MAX_TASKS_FILE:
        return None
    try:
        text = tasks.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    stats = autospec.parse_tasks(text)
    if stats is None:
        return None
    if keep is not None:
        _write_atomically(keep, text)
    return stats, stamp


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with naming(temporary):
        temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def final_tasks(worktree: Path, spec_dir: str | None) -> autospec.TaskStats | None:
    """(in a thread) The counts of ``specs/<spec_dir>/tasks.yaml`` in ``worktree`` once the
    agent is gone: the file is whole, taken as it is."""
    if spec_dir is None:
        return None
    tasks = worktree / "specs" / spec_dir / "tasks.yaml"
    try:
        if tasks.stat().st_size > MAX_TASKS_FILE:
            return None
        text = tasks.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return autospec.parse_tasks(text, strict=False)


def write_header(log: Path, attempt: int, call: autospec.Invocation, now: datetime) -> None:
    """Each attempt's output starts with a line saying which attempt and what it ran."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with naming(log), log.open("a", encoding="utf-8") as file:
        file.write(f"=== dagspec: attempt {attempt}, {now:%Y-%m-%dT%H:%M:%SZ}: {call.shell()}\n")


def write_ending(log: Path, attempt: int, how: str) -> None:
    """Each attempt's output ends with a line saying how it ended, the pair of its header:
    ``=== dagspec: end of attempt 2: timed out after 30m00s``. Not in the header's words:
    ``limits.limit_at_end`` finds the last attempt by them. A log that cannot take it (a
    full disk) goes without: the attempt's end is recorded in the state all the same."""
    with contextlib.suppress(OSError), log.open("a", encoding="utf-8") as file:
        file.write(f"\n=== dagspec: end of attempt {attempt}: {how}\n")


def exit_reason(
    code: int, stage: str | None, last_error: str | None, *, worktree: Path | None = None
) -> str:
    """Why an attempt failed, from its exit code, the stage it was in, and the last
    ``Error:`` line it printed: ``autospec exited with 1 during plan: <error>``; first of
    all, when its ``worktree`` is gone, that it was deleted under it."""
    how = f"was killed by {procgroup.signal_name(-code)}" if code < 0 else f"exited with {code}"
    text = f"autospec {how}" + (f" during {stage}" if stage else "")
    if worktree is not None and not worktree.is_dir():
        return f"its worktree {worktree} was deleted while autospec ran ({text})"
    return text + (f": {last_error}" if last_error else "")


def timeout_reason(limit: float) -> str:
    """Why an attempt that ran past its limit (seconds) failed: ``timed out after 30m00s``."""
    return f"timed out after {format_duration(limit)}"
