"""Copying untracked files of the main checkout into a spec's worktree (``.autospec/``,
``.claude/``, ``execution.copy``): regular files and symbolic links are copied, never over
what the worktree has; anything else is skipped; a fault is one line (issue 11).

A special file (a FIFO, a socket, a device node) is a live thing of the main checkout (a
daemon's socket, a pipe another program reads), not configuration: copying a FIFO would
block or fail, copying a device node would copy the device's contents (all of a disk, or
no end of ``/dev/zero``). It is skipped, and the spec's log says so. A symbolic link is
copied as a link, whatever it points to (a loop included). A file or directory that cannot
be read stops the copy as :class:`CopyError`: the agent in the worktree would miss it.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from dagspec.errors import DagspecError, too_many_open_files


class CopyError(DagspecError):
    """A file of the main checkout could not be copied into a worktree; one line naming
    the path and git-free reason (``strerror``) and what to do."""


_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def special_kind(path: str | Path) -> str | None:
    """What ``path`` is when it is neither a regular file, a directory nor a symbolic
    link (``"a socket"``), else None. Raises ``OSError`` when it cannot be looked at."""
    mode = os.lstat(path).st_mode
    return (
        None
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)
        else (_KINDS.get(stat.S_IFMT(mode), "a special file"))
    )


CHUNK = 4 * 1024 * 1024
"""Bytes of a file copied between two calls of a copy's ``check``."""


def copy_file(
    source: Path, target: Path, *, skipped: list[str], check: Callable[[], None] = lambda: None
) -> bool:
    """Copy one file or link (links as links; a file with its mode and times, as
    ``shutil.copy2``) unless ``target`` exists or ``source`` is special (then ``"PATH:
    KIND"`` is added to ``skipped``); whether it was copied. ``check`` is called before each
    ``CHUNK`` of a file: what it raises (``trio.Cancelled`` when the drive stops) ends the
    copy. A file not copied whole, for that or a fault, is removed again: what the worktree
    has is never overwritten, so a torn copy would stay for every later attempt. Raises
    :class:`CopyError`."""
    try:
        if os.path.lexists(target):
            return False
        kind = special_kind(source)
        if kind is not None:
            skipped.append(f"{source}: {kind}")
            return False
        if stat.S_ISLNK(os.lstat(source).st_mode):
            shutil.copy2(source, target, follow_symlinks=False)
        else:
            _copy_whole(source, target, check)
    except OSError as exc:
        raise _error(str(source), exc) from None
    return True


def _copy_whole(source: Path, target: Path, check: Callable[[], None]) -> None:
    """Copy a regular file, ``check()`` before each chunk; on any exception, remove it."""
    with source.open("rb") as reading, target.open("xb") as writing:
        try:
            while True:
                check()
                if not (chunk := reading.read(CHUNK)):
                    break
                writing.write(chunk)
            writing.flush()
            shutil.copystat(source, target)
        except BaseException:
            target.unlink(missing_ok=True)
            raise


def copy_tree(
    source: Path,
    target: Path,
    *,
    skipped: list[str],
    ignore: Callable[[str, list[str]], list[str]] | None = None,
    check: Callable[[], None] = lambda: None,
) -> list[Path]:
    """Merge the tree ``source`` into ``target`` (``shutil.copytree``), copying each file
    with :func:`copy_file` (and its ``check``); every file newly made. Raises
    :class:`CopyError` naming the first path that could not be copied (and how many
    others)."""
    made: list[Path] = []

    def one(src: str, dst: str) -> None:
        if copy_file(Path(src), Path(dst), skipped=skipped, check=check):
            made.append(Path(dst))

    def links_and_ignored(directory: str, names: list[str]) -> set[str]:
        """copytree makes symbolic links itself, not by ``one``: one already in the worktree
        is passed over (else "File exists"), the others are counted as made."""
        passed = set(ignore(directory, names) if ignore else ())
        into = target / Path(directory).relative_to(source)
        for name in set(names) - passed:
            if (Path(directory) / name).is_symlink():
                if os.path.lexists(into / name):
                    passed.add(name)
                else:
                    made.append(into / name)
        return passed

    try:
        shutil.copytree(
            source,
            target,
            symlinks=True,
            dirs_exist_ok=True,
            ignore=links_and_ignored,
            copy_function=one,
        )
    except CopyError:
        raise
    except shutil.Error as exc:  # a list of (source, target, reason), one per path
        failed = [entry for entry in exc.args[0] if isinstance(entry, tuple)]
        if not failed:
            raise CopyError(f"cannot copy {source} into {target}: {exc}") from None
        first, more = failed[0], len(failed) - 1
        extra = f" (and {more} more)" if more else ""
        match = _ERRNO.match(str(first[2]))
        reason = match["reason"] if match else str(first[2])
        code = int(match["errno"]) if match else None
        if too_many := too_many_open_files(OSError(code, reason), first[0]):
            raise CopyError(too_many) from None
        raise CopyError(
            f"cannot copy {first[0]}{extra}: {reason}: {_hint(code in _DENIED)}"
        ) from None
    except OSError as exc:
        raise _error(exc.filename or str(source), exc) from None
    return made


_ERRNO = re.compile(r"\[Errno (?P<errno>\d+)\] (?P<reason>[^:]+)")
"""``str(OSError)``, as ``shutil.copytree`` lists it: ``[Errno 13] Permission denied: 'x'``."""


def _error(path: str, exc: OSError) -> CopyError:
    if too_many := too_many_open_files(exc, path):  # the run's limit, not this file's
        return CopyError(too_many)
    reason = " ".join((exc.strerror or str(exc)).split())
    return CopyError(f"cannot copy {path}: {reason}: {_hint(exc.errno in _DENIED)}")


_DENIED = (errno.EACCES, errno.EPERM)


def _hint(denied: bool) -> str:
    return "make it readable, or move it elsewhere" if denied else "fix that, then retry the spec"


def note_skipped(log: Path, skipped: list[str], what: str) -> None:
    """Say in the spec's ``log`` which special files ``what`` (``.autospec/``,
    ``execution.copy``) passed over, one line each, as dagspec's other notes there."""
    if not skipped:
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as file:
        for item in skipped:
            file.write(f"=== dagspec: {what}: skipped {item} (only files and links are copied)\n")
