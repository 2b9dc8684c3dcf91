"""A run's driver: the lock of the run's directory, who holds it, and whether a recorded
driver pid is really that driver (issue 11).

The lock is an ``flock`` on the run's directory ``<run>/``: the kernel releases it when its
holder dies, even by SIGKILL, and deleting a file cannot break it. ``/proc/locks`` names the
holder of each ``flock`` and the inode it locks (proc(5)), so a refusal names the driver even
when ``<run>/lock``, which holds its pid only for that, was deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from dagspec.errors import StateError
from dagspec.records import RunState
from dagspec.workspace import RunPaths, ignore_in_git, own_run_directory


def pid_alive(pid: int | None) -> bool:
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def driver_alive(run: RunState) -> bool:
    """Whether the recorded driver still drives ``run``. Its pid alone may have been reused
    by any process, and a state file can be copied with its run id edited, so the pid is
    believed only while that process holds the lock of this run's own directory (never a
    link to another run's: ``_own_run_dir``):
    ``/proc/locks`` lists each ``flock`` with its holder's pid and the inode locked
    (proc(5)). Without it, holding the directory open is asked of ``/proc/PID/fd``; without
    /proc at all, a live pid is believed (issue 11)."""
    if not pid_alive(run.driver_pid):
        return False
    paths = RunPaths(Path(run.repo), run.run_id)
    if str(paths.run_dir) in _HELD:
        return False  # this process holds the lock: no other driver can
    target = _own_run_dir(paths)
    if target is None:
        return False
    holders = flock_holders(target.st_ino)
    if holders is None:
        return _holds_open(run.driver_pid, target)
    return run.driver_pid in holders


def _own_run_dir(paths: RunPaths) -> os.stat_result | None:
    """The run's directory, links followed: a directory, or a link to one it was moved to
    that kept its name (``workspace.own_run_directory``), never a link to another run's (a
    state file copied with its directory linked to the original's); else None."""
    try:
        target = paths.run_dir.stat()
        real = paths.run_dir.resolve()
    except (OSError, RuntimeError):  # none, or a loop of links
        return None
    if not stat.S_ISDIR(target.st_mode):
        return None
    return target if own_run_directory(paths.run_dir, real) else None


def flock_holders(inode: int) -> list[int] | None:
    """The pids holding an exclusive ``flock`` on the file with ``inode``, from
    ``/proc/locks`` (proc(5)); None when this system has none."""
    try:
        locks = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    holders = []
    for line in locks.splitlines():
        fields = line.split()  # 1: FLOCK ADVISORY WRITE <pid> <maj:min:inode> <start> <end>
        # the inode alone: overlay file systems may show another device number there
        ours = len(fields) >= 6 and fields[5].rsplit(":", 1)[-1] == str(inode)
        if ours and fields[1:4] == ["FLOCK", "ADVISORY", "WRITE"] and fields[4].isdigit():
            holders.append(int(fields[4]))
    return holders


def _holds_open(pid: int | None, target: os.stat_result) -> bool:
    """Whether process ``pid`` has the file ``target`` open (True when it cannot be told)."""
    try:
        links = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return True
    for link in links:
        with contextlib.suppress(OSError):
            found = link.stat()
            if (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino):
                return True
    return False


@contextlib.contextmanager
def run_lock(paths: RunPaths) -> Iterator[None]:
    """Hold the run's lock while driving it (``run``, ``resume``, ``retry``, ``merge``).

    The lock is an ``flock`` on the run's directory ``<run>/``, so the kernel releases it
    when its holder dies, even by SIGKILL, and the next driver takes it over; deleting a file
    cannot break it (issue 11). ``<run>/lock`` holds the pid only to name the holder in the
    refusal.
    """
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    ignore_in_git(paths.run_dir.parent)  # before the run's first file (issue 11)
    fd = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    held = os.open(paths.run_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _driven_by(paths, fd, held) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD[str(paths.run_dir)] = held
        try:
            yield
        finally:
            _HELD.pop(str(paths.run_dir), None)
    finally:
        os.close(held)
        os.close(fd)


def _driven_by(paths: RunPaths, fd: int, held: int) -> StateError:
    """The refusal of a second driver: names the lock's holder, from ``/proc/locks``, else
    from ``<run>/lock`` (which may have been deleted), else says it cannot be told."""
    holders = flock_holders(os.fstat(held).st_ino) or []
    holder = next(iter(holders), None) or os.read(fd, 64).decode(errors="replace").strip()
    if not holder:
        return StateError(
            f"run '{paths.run_id}' is being driven by another process, whose pid cannot be "
            f"told (its lock file {paths.lock_file} was removed): wait for it to finish, "
            "or find and stop it, and try again"
        )
    return StateError(
        f"run '{paths.run_id}' is being driven by process {holder}: wait for it to "
        f"finish, or stop it (kill {holder}) and try again"
    )


_HELD: dict[str, int] = {}  # the run directories whose lock this process holds: their fds


def _same_directory(held: int, run_dir: Path) -> bool:
    """Whether the directory open as ``held`` is still the one at ``run_dir``."""
    try:
        now = run_dir.stat()
    except OSError:
        return False
    then = os.fstat(held)
    return (now.st_dev, now.st_ino) == (then.st_dev, then.st_ino)


def lost(run_dir: Path) -> bool:
    """Whether this process holds the lock of ``run_dir`` (``run_lock``) and the directory
    it locked was moved or deleted meanwhile: a second driver could lock a new one."""
    held = _HELD.get(str(run_dir))
    return held is not None and not _same_directory(held, run_dir)
