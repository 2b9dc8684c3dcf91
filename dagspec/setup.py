"""A new worktree made ready by the user's own recipe (issue 17): ``execution.copy`` puts
gitignored files of the main checkout into it (``.env``, ``.vscode/``, a symlinked
``node_modules``), then ``execution.setup`` runs a command there before the agent starts
(the copying: ``dagspec.user_copies``).

``user_setup`` is what a drive awaits, inside the attempt (``dagspec.spec_attempt``): the
spec's timeout and the stall watchdog cover it as they cover the agent (its output goes to
the spec's log, which is progress). The rest is synchronous, run in a thread. A failure
raises ``SetupError``, which fails the spec with the reason in its message.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO

import trio

from dagspec import git_env, git_worktree, procgroup
from dagspec.agent import end_group
from dagspec.attempt import Prepared
from dagspec.dagfile import Dag, Execution
from dagspec.errors import SetupError as SetupError
from dagspec.errors import naming
from dagspec.fit import printable
from dagspec.lifecycle import RunState
from dagspec.render import format_duration
from dagspec.user_copies import copy_paths
from dagspec.workspace import RunPaths
from dagspec.worktree import mark_ready

# seconds: a setup's own limit when neither the spec's timeout nor a stall timeout covers it
SETUP_TIMEOUT = 30 * 60.0
GRACE = 5.0  # seconds between SIGTERM and SIGKILL when the setup command is ended
TAIL_LINES = 5
TAIL_WIDTH = 200  # characters of each line of it
_MARKER = "dagspec-setup-done"


async def user_setup(
    run: RunState,
    dag: Dag,
    spec_id: str,
    ready: Prepared,
    grace: float,
    *,
    limit: float | None = SETUP_TIMEOUT,
) -> None:
    """``execution.copy`` then ``execution.setup`` in the spec's new worktree, each in a
    thread, holding no lock (an install can take minutes); output goes to the spec's log.
    ``limit``: the setup command's own time limit in seconds (None: none; the caller's
    timeout and watchdog cover it). Cancelled, the copy stops within a chunk, leaving no
    file half copied (``copies.copy_file``), and the setup command's process group is
    ended like an agent's (SIGTERM, SIGKILL after ``grace`` seconds), also when the thread
    starts it only after the cancellation. Raises ``SetupError`` when either fails."""
    execution = dag.execution
    repo = Path(run.repo)
    log = RunPaths(repo, run.run_id).log_file(spec_id)
    if execution.copy:  # waited for when cancelled: it stops at its next check
        check = trio.from_thread.check_cancelled
        copy = partial(copy_paths, repo, ready.path, execution.copy, log=log, check=check)
        await trio.to_thread.run_sync(copy)
    if not execution.setup:
        if execution.copy:
            mark_ready(ready.path)
        return
    env = setup_env(
        repo=repo, run_id=run.run_id, spec_id=spec_id, worktree=ready.path, branch=ready.branch
    )
    groups: list[int] = []
    lock, abandoned = threading.Lock(), threading.Event()

    def started(pgid: int) -> None:  # in the thread
        with lock:
            groups.append(pgid)
            if abandoned.is_set():  # cancelled before it started: end it at once
                procgroup.signal_group(pgid, signal.SIGKILL)

    command = partial(
        run_setup, execution.setup, worktree=ready.path, env=env, log=log, on_start=started
    )
    try:
        await trio.to_thread.run_sync(partial(command, timeout=limit), abandon_on_cancel=True)
    finally:
        with lock:
            abandoned.set()
            ended = list(groups)
        for pgid in ended:
            with trio.CancelScope(shield=True):
                await end_group(pgid, grace)
    mark_ready(ready.path)  # set up: what is changed from now on is the agent's


def plan_lines(execution: Execution, *, notify: str | None, repo: Path) -> list[str]:
    """What ``run --dry-run`` says of the worktree recipe and the notifier (``notify``:
    ``--notify``, which wins over ``execution.notify``); a copy path not in ``repo`` is
    left out (preflight warns of it: nothing of it will be put in a worktree)."""
    lines = []
    there = [c for c in execution.copy if os.path.lexists(repo / c.path)]
    copied = [c.path for c in there if not c.symlink]
    linked = [c.path for c in there if c.symlink]
    if copied:
        lines.append(
            f"copied into each worktree (gitignored, never committed): {', '.join(copied)}"
        )
    if linked:
        lines.append(f"linked into each worktree: {', '.join(linked)}")
    if execution.setup:
        lines.append(f"setup in each new worktree, before its agent: {execution.setup}")
    command = notify or execution.notify
    if command:
        lines.append(f"notify on run end, failed, stalled and waiting specs: {command}")
    return lines


# --- execution.setup --------------------------------------------------------------------------


def run_setup(
    command: str,
    *,
    worktree: Path,
    env: dict[str, str],
    log: Path,
    timeout: float | None = SETUP_TIMEOUT,
    on_start: Callable[[int], None] | None = None,
) -> bool:
    """Run ``command`` with ``/bin/sh -c`` in ``worktree``, once per worktree.

    ``env`` is added to the environment (``setup_env`` gives the variables a spec's setup
    sees). Output (stdout and stderr) is appended to ``log``. The command runs in its own
    process group, whose id goes to ``on_start`` (to end it on an interrupt); after
    ``timeout`` seconds (None: no limit) the group is ended (SIGTERM, then SIGKILL).

    Returns False when this worktree already ran this command successfully (a marker in the
    worktree's git directory, so a recreated worktree, or one whose setup failed, runs it
    again), True when it ran now. Raises ``SetupError`` ending with the command's last
    lines when it exits non-zero or times out.
    """
    marker = git_worktree.git_dir(worktree) / _MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == command:
        return False
    log.parent.mkdir(parents=True, exist_ok=True)
    with naming(log), log.open("ab") as out:
        out.write(f"=== dagspec: setup: {command}\n".encode())
        out.flush()
        start = out.tell()
        code = _run(command, worktree, git_env.clean_env(env), out, timeout, on_start)
    if code != 0:
        how = _exit_text(code) if code is not None else f"timed out after {_limit(timeout)}"
        raise SetupError(f"execution.setup {how}{_tail(log, start)}")
    marker.write_text(command, encoding="utf-8")
    return True


def setup_env(
    *, repo: Path, run_id: str, spec_id: str, worktree: Path, branch: str
) -> dict[str, str]:
    """The variables a spec's setup command sees."""
    return {
        "DAG_RUN_ID": run_id,
        "DAG_SPEC_ID": spec_id,
        "DAG_WORKTREE": str(worktree),
        "DAG_BRANCH": branch,
        "DAG_REPO": str(repo),
    }


def _run(
    command: str,
    worktree: Path,
    env: dict[str, str],
    out: IO[bytes],
    timeout: float | None,
    on_start: Callable[[int], None] | None,
) -> int | None:
    """The command's exit code (negative: the signal), None when it timed out."""
    process = subprocess.Popen(
        ["/bin/sh", "-c", command],
        cwd=worktree,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    if on_start is not None:
        on_start(process.pid)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        _end(process)
        return None
    finally:
        if process.returncode is None:  # interrupted while waiting: leave nothing behind
            _end(process)


def _end(process: subprocess.Popen[bytes]) -> None:
    procgroup.signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(GRACE)
    except subprocess.TimeoutExpired:
        procgroup.signal_group(process.pid, signal.SIGKILL)
        process.wait()
    procgroup.signal_group(process.pid, signal.SIGKILL)  # stragglers that left the leader


def _limit(timeout: float | None) -> str:
    return format_duration(timeout or 0.0)


def _exit_text(code: int) -> str:
    if code < 0:
        return f"was killed by {procgroup.signal_name(-code)}"
    return f"failed with exit code {code}"


def _tail(log: Path, start: int) -> str:
    """``: <last lines>`` of what the command wrote to ``log`` after offset ``start``: at
    most ``TAIL_LINES`` lines of ``TAIL_WIDTH`` characters from its last 64 KiB, control
    characters shown as ``?`` (the reason reaches terminals, the state file, notices)."""
    with log.open("rb") as file:
        file.seek(max(start, file.seek(0, 2) - 64 * 1024))
        text = file.read().decode("utf-8", "replace")
    lines = [line.rstrip() for line in text.splitlines() if line.strip()][-TAIL_LINES:]
    lines = [printable(line.expandtabs(4))[:TAIL_WIDTH] for line in lines]
    return (":\n" + "\n".join("    " + line for line in lines)) if lines else " (no output)"


def note_ended(log: Path, reason: str, where: str) -> str:
    """``reason`` an attempt was ended for (a timeout, a stall) followed by ``where``; when
    it was ended in its setup (``where`` not empty), its log says so too, after the setup's
    output."""
    if where:
        log.parent.mkdir(parents=True, exist_ok=True)
        with naming(log), log.open("a", encoding="utf-8") as file:
            file.write(f"\n=== dagspec: execution.setup ended: {reason}\n")
    return reason + where
